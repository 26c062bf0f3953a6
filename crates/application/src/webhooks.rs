//! Outbound webhook endpoints, as their owners manage them: merchants register endpoints for the
//! events they are a party to, admins for the platform (every event). An endpoint's signing secret
//! is shown when it is created or rolled, and a rolled secret keeps signing for an overlap so
//! that receivers can switch without missing a delivery. Deliveries can be listed, redelivered
//! one by one or by time range, and a test event sent. The relay that delivers is
//! `webhook_relay`.

use domain::events::DomainEvent;
use domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use domain::user::Role;
use domain::webhook::{EndpointChanges, EndpointOwner, EndpointUrl, EventSelection, WebhookDelivery, WebhookEndpoint, WebhookError};
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{DeliveryFilter, EndpointFilter, EventOutbox, StoreError, UnitOfWork, WebhookRepository};
use crate::ports::system::IdGenerator;
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// The longest overlap a rolled secret may keep signing.
pub const SECRET_OVERLAP_MAX: Duration = Duration::days(7);
/// The longest time range one redelivery may cover.
pub const REDELIVERY_RANGE_MAX: Duration = Duration::days(30);

/// A webhook endpoint a merchant (or admin, for the platform) registers.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where deliveries are POSTed: absolute `https` (plain `http` only where allowed).
    pub url: String,
    /// Event types, or `*` alone for all.
    pub events: Vec<String>,
    /// What the endpoint is for.
    pub description: String,
}

/// An owner's changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    /// A new URL.
    pub url: Option<String>,
    /// A new list of event types (`*` alone for all).
    pub events: Option<Vec<String>>,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable deliveries.
    pub enabled: Option<bool>,
}

/// Why managing webhook endpoints fails.
#[derive(Debug, thiserror::Error)]
pub enum WebhookUseError {
    /// The caller may not do this to this resource.
    #[error("only merchants and admins have webhook endpoints")]
    Forbidden,
    /// The endpoint does not exist, or is not the caller's.
    #[error("the webhook endpoint does not exist")]
    NotFound,
    /// The delivery does not exist, or is not of the caller's endpoint.
    #[error("the delivery does not exist")]
    DeliveryNotFound,
    /// The URL, event types or description are not acceptable.
    #[error(transparent)]
    Invalid(#[from] WebhookError),
    /// A secret roll's overlap is negative or too long.
    #[error("the overlap must be between 0 and {max}")]
    Overlap {
        /// The limit, [`SECRET_OVERLAP_MAX`].
        max: Duration,
    },
    /// A redelivery range is empty or too long.
    #[error("the range must end after it starts and span at most {max}")]
    Range {
        /// The limit, [`REDELIVERY_RANGE_MAX`].
        max: Duration,
    },
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(WebhookUseError);

/// The endpoints a caller owns: a merchant's own, or the platform's for an admin.
fn owner_of(caller: &Caller) -> Result<EndpointOwner, WebhookUseError> {
    match caller.role {
        Role::Merchant => Ok(EndpointOwner::Merchant(caller.user_id)),
        Role::Admin => Ok(EndpointOwner::Platform),
        Role::Customer => Err(WebhookUseError::Forbidden),
    }
}

/// Whether `caller` may see and manage `endpoint`: its merchant, or any admin.
fn may_manage(caller: &Caller, endpoint: &WebhookEndpoint) -> bool {
    caller.is_admin() || endpoint.owner == EndpointOwner::Merchant(caller.user_id)
}

async fn lock_managed<Tx: WebhookRepository + Send>(
    tx: &mut Tx,
    caller: &Caller,
    id: WebhookEndpointId,
) -> Result<WebhookEndpoint, WebhookUseError> {
    tx.lock_webhook_endpoint(id)
        .await?
        .filter(|endpoint| may_manage(caller, endpoint))
        .ok_or(WebhookUseError::NotFound)
}

impl<U: UnitOfWork> App<U> {
    /// An endpoint URL as given: well formed, and to an address webhooks may reach.
    fn endpoint_url(&self, text: &str) -> Result<EndpointUrl, WebhookUseError> {
        let url = EndpointUrl::parse(text, self.settings.webhooks.allow_insecure_urls)?;
        match self.webhooks.refusal(url.as_str()) {
            Some(reason) => Err(WebhookError::Url(reason).into()),
            None => Ok(url),
        }
    }

    /// A new signing secret, from the token issuer's source of randomness.
    fn new_signing_secret(&self) -> String {
        format!("whsec_{}", self.tokens.new_refresh_secret().secret)
    }

    /// Registers an endpoint; the answer carries its signing secret, shown this once.
    pub async fn create_webhook_endpoint(&self, caller: &Caller, new: NewEndpoint) -> Result<WebhookEndpoint, WebhookUseError> {
        let owner = owner_of(caller)?;
        let url = self.endpoint_url(&new.url)?;
        let events = EventSelection::from_list(&new.events)?;
        let (id, secret, now) = (self.next_id(), self.new_signing_secret(), self.clock.now());
        let endpoint = WebhookEndpoint::register(id, owner, url, events, &new.description, secret, now)?;
        let endpoint_ref = &endpoint;
        transact(&self.store, |tx| work(tx.insert_webhook_endpoint(endpoint_ref))).await?;
        tracing::info!(endpoint_id = %endpoint.id, owner = ?endpoint.owner, "webhook endpoint registered");
        Ok(endpoint)
    }

    /// A merchant's endpoints, or every endpoint for an admin; newest first.
    pub async fn webhook_endpoints(&self, caller: &Caller, page: &PageRequest) -> Result<Page<WebhookEndpoint>, WebhookUseError> {
        let filter = match owner_of(caller)? {
            EndpointOwner::Platform => EndpointFilter::All,
            merchant => EndpointFilter::Owner(merchant),
        };
        Ok(transact(&self.store, |tx| work(tx.list_webhook_endpoints(filter, page))).await?)
    }

    /// One endpoint of the caller's (any, for an admin).
    ///
    /// # Errors
    /// [`WebhookUseError::NotFound`] if it does not exist or is someone else's.
    pub async fn webhook_endpoint(&self, caller: &Caller, id: WebhookEndpointId) -> Result<WebhookEndpoint, WebhookUseError> {
        owner_of(caller)?;
        transact(&self.store, |tx| work(tx.find_webhook_endpoint(id)))
            .await?
            .filter(|endpoint| may_manage(caller, endpoint))
            .ok_or(WebhookUseError::NotFound)
    }

    /// Applies an owner's changes to an endpoint. Enabling it again clears its failure streak.
    ///
    /// # Errors
    /// [`WebhookUseError::NotFound`] for someone else's endpoint; [`WebhookUseError::Invalid`] for an
    /// unacceptable change.
    pub async fn update_webhook_endpoint(
        &self,
        caller: &Caller,
        id: WebhookEndpointId,
        update: EndpointUpdate,
    ) -> Result<WebhookEndpoint, WebhookUseError> {
        owner_of(caller)?;
        let changes = EndpointChanges {
            url: update.url.as_deref().map(|url| self.endpoint_url(url)).transpose()?,
            events: update.events.as_deref().map(EventSelection::from_list).transpose()?,
            description: update.description,
            enabled: update.enabled,
        };
        let (changes, now) = (&changes, self.clock.now());
        transact(&self.store, |tx| {
            work(async move {
                let endpoint = lock_managed(tx, caller, id).await?.change(changes.clone(), now)?;
                tx.update_webhook_endpoint(&endpoint).await?;
                Ok::<_, WebhookUseError>(endpoint)
            })
        })
        .await
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete_webhook_endpoint(&self, caller: &Caller, id: WebhookEndpointId) -> Result<(), WebhookUseError> {
        owner_of(caller)?;
        transact(&self.store, |tx| {
            work(async move {
                lock_managed(tx, caller, id).await?;
                tx.delete_webhook_endpoint(id).await?;
                Ok::<_, WebhookUseError>(())
            })
        })
        .await
    }

    /// Replaces the signing secret; the old one keeps signing for `overlap`. The answer carries the
    /// new secret, shown this once.
    pub async fn roll_webhook_secret(
        &self,
        caller: &Caller,
        id: WebhookEndpointId,
        overlap: Duration,
    ) -> Result<WebhookEndpoint, WebhookUseError> {
        owner_of(caller)?;
        if overlap.is_negative() || overlap > SECRET_OVERLAP_MAX {
            return Err(WebhookUseError::Overlap { max: SECRET_OVERLAP_MAX });
        }
        let (secret, now) = (&self.new_signing_secret(), self.clock.now());
        transact(&self.store, |tx| {
            work(async move {
                let endpoint = lock_managed(tx, caller, id).await?.roll_secret(secret.clone(), overlap, now);
                tx.update_webhook_endpoint(&endpoint).await?;
                Ok::<_, WebhookUseError>(endpoint)
            })
        })
        .await
    }

    /// Queues a test event for the endpoint alone.
    pub async fn test_webhook_endpoint(&self, caller: &Caller, id: WebhookEndpointId) -> Result<(), WebhookUseError> {
        owner_of(caller)?;
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        transact(&self.store, |tx| work(queue_test_event(tx, ids, caller, id, now))).await
    }

    /// The endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: WebhookEndpointId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>, WebhookUseError> {
        self.webhook_endpoint(caller, id).await?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_webhook_deliveries(id, filter, page))).await?)
    }

    /// Queues one delivery again, whatever became of it.
    pub async fn redeliver_webhook(&self, caller: &Caller, id: WebhookDeliveryId) -> Result<WebhookDelivery, WebhookUseError> {
        owner_of(caller)?;
        let now = self.clock.now();
        transact(&self.store, |tx| {
            work(async move {
                let delivery = tx.lock_webhook_delivery(id).await?.ok_or(WebhookUseError::DeliveryNotFound)?;
                let endpoint = tx.find_webhook_endpoint(delivery.endpoint_id).await?;
                if !endpoint.is_some_and(|endpoint| may_manage(caller, &endpoint)) {
                    return Err(WebhookUseError::DeliveryNotFound);
                }
                let delivery = delivery.redeliver(now);
                tx.update_webhook_deliveries(std::slice::from_ref(&delivery)).await?;
                Ok(delivery)
            })
        })
        .await
    }

    /// Queues again every delivery of the endpoint whose event occurred in `[from, to)`.
    pub async fn redeliver_webhooks(
        &self,
        caller: &Caller,
        id: WebhookEndpointId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<u64, WebhookUseError> {
        owner_of(caller)?;
        if to <= from || to - from > REDELIVERY_RANGE_MAX {
            return Err(WebhookUseError::Range { max: REDELIVERY_RANGE_MAX });
        }
        let now = self.clock.now();
        transact(&self.store, |tx| {
            work(async move {
                lock_managed(tx, caller, id).await?;
                Ok::<_, WebhookUseError>(tx.requeue_webhook_deliveries(id, from, to, now).await?)
            })
        })
        .await
    }
}

async fn queue_test_event<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    caller: &Caller,
    id: WebhookEndpointId,
    now: OffsetDateTime,
) -> Result<(), WebhookUseError>
where
    Tx: WebhookRepository + EventOutbox + Send,
{
    let endpoint = tx
        .find_webhook_endpoint(id)
        .await?
        .filter(|endpoint| may_manage(caller, endpoint))
        .ok_or(WebhookUseError::NotFound)?;
    publish(tx, ids, DomainEvent::WebhookEndpointTested { endpoint_id: endpoint.id }, now).await?;
    Ok(())
}
