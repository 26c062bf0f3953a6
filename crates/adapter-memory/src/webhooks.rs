//! Outbound webhook endpoints and deliveries in memory. One transaction runs at a time, so a
//! claimed endpoint is simply one whose hold has not run out.

use application::pagination::{Page, PageRequest};
use application::ports::store::{DeliveryBacklog, DeliveryFilter, EndpointFilter, StoreResult, WebhookRepository};
use domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use domain::webhook::{DeliveryStatus, WebhookDelivery, WebhookEndpoint};
use time::OffsetDateTime;

use crate::tx::{MemoryTx, missing, page_by_position};

impl WebhookRepository for MemoryTx {
    async fn insert_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        self.faults.operation("insert_webhook_endpoint")?;
        self.work.webhook_endpoints.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    async fn update_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        self.faults.operation("update_webhook_endpoint")?;
        let row = self
            .work
            .webhook_endpoints
            .get_mut(&endpoint.id)
            .ok_or_else(|| missing("webhook endpoint"))?;
        *row = endpoint.clone();
        Ok(())
    }

    async fn delete_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<()> {
        self.faults.operation("delete_webhook_endpoint")?;
        self.work.webhook_endpoints.remove(&id);
        self.work.webhook_holds.remove(&id);
        let gone: Vec<WebhookDeliveryId> = self
            .work
            .webhook_deliveries
            .values()
            .filter(|delivery| delivery.endpoint_id == id)
            .map(|delivery| delivery.id)
            .collect();
        for delivery in gone {
            self.work.webhook_deliveries.remove(&delivery);
        }
        Ok(())
    }

    async fn find_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        self.faults.operation("find_webhook_endpoint")?;
        Ok(self.work.webhook_endpoints.get(&id).cloned())
    }

    async fn lock_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        self.faults.operation("lock_webhook_endpoint")?;
        Ok(self.work.webhook_endpoints.get(&id).cloned())
    }

    async fn list_webhook_endpoints(&mut self, filter: EndpointFilter, page: &PageRequest) -> StoreResult<Page<WebhookEndpoint>> {
        self.faults.operation("list_webhook_endpoints")?;
        let rows: Vec<WebhookEndpoint> = self
            .work
            .webhook_endpoints
            .values()
            .filter(|endpoint| match filter {
                EndpointFilter::All => true,
                EndpointFilter::Owner(owner) => endpoint.owner == owner,
            })
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |endpoint| {
            (endpoint.created_at, endpoint.id.as_uuid())
        }))
    }

    async fn enabled_webhook_endpoints(&mut self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.faults.operation("enabled_webhook_endpoints")?;
        Ok(self
            .work
            .webhook_endpoints
            .values()
            .filter(|endpoint| endpoint.enabled)
            .cloned()
            .collect())
    }

    async fn insert_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        self.faults.operation("insert_webhook_deliveries")?;
        for delivery in deliveries {
            let pair = (delivery.event_id, delivery.endpoint_id);
            if !self.work.webhook_deliveries.values().any(|d| (d.event_id, d.endpoint_id) == pair) {
                self.work.webhook_deliveries.insert(delivery.id, delivery.clone());
            }
        }
        Ok(())
    }

    async fn update_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        self.faults.operation("update_webhook_deliveries")?;
        for delivery in deliveries {
            let row = self
                .work
                .webhook_deliveries
                .get_mut(&delivery.id)
                .ok_or_else(|| missing("webhook delivery"))?;
            *row = delivery.clone();
        }
        Ok(())
    }

    async fn lock_webhook_delivery(&mut self, id: WebhookDeliveryId) -> StoreResult<Option<WebhookDelivery>> {
        self.faults.operation("lock_webhook_delivery")?;
        Ok(self.work.webhook_deliveries.get(&id).cloned())
    }

    async fn claim_webhook_endpoints(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        self.faults.operation("claim_webhook_endpoints")?;
        let due = |endpoint: &WebhookEndpoint| {
            self.work
                .webhook_deliveries
                .values()
                .any(|d| d.endpoint_id == endpoint.id && d.status == DeliveryStatus::Pending && d.next_attempt_at <= now)
        };
        let free = |endpoint: &WebhookEndpoint| self.work.webhook_holds.get(&endpoint.id).is_none_or(|held| *held <= now);
        let mut claimed: Vec<WebhookEndpoint> = self
            .work
            .webhook_endpoints
            .values()
            .filter(|endpoint| endpoint.enabled && free(endpoint) && due(endpoint))
            .cloned()
            .collect();
        claimed.sort_by_key(|endpoint| endpoint.id);
        claimed.truncate(limit);
        for endpoint in &claimed {
            self.work.webhook_holds.insert(endpoint.id, until);
        }
        Ok(claimed)
    }

    async fn hold_webhook_endpoint(&mut self, id: WebhookEndpointId, until: Option<OffsetDateTime>) -> StoreResult<()> {
        self.faults.operation("hold_webhook_endpoint")?;
        match until {
            Some(until) => self.work.webhook_holds.insert(id, until),
            None => self.work.webhook_holds.remove(&id),
        };
        Ok(())
    }

    async fn due_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.faults.operation("due_webhook_deliveries")?;
        let mut due: Vec<WebhookDelivery> = self
            .work
            .webhook_deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint && d.status == DeliveryStatus::Pending && d.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|d| (d.queued_at, d.id));
        due.truncate(limit);
        Ok(due)
    }

    async fn list_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        self.faults.operation("list_webhook_deliveries")?;
        let rows: Vec<WebhookDelivery> = self
            .work
            .webhook_deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint)
            .filter(|d| filter.status.is_none_or(|status| d.status == status))
            .filter(|d| filter.event_type.as_ref().is_none_or(|kind| &d.event_type == kind))
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |d| (d.created_at, d.id.as_uuid())))
    }

    async fn requeue_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.faults.operation("requeue_webhook_deliveries")?;
        let in_range: Vec<WebhookDeliveryId> = self
            .work
            .webhook_deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint)
            .filter(|d| {
                let occurred = self.event_time(d.event_id);
                occurred.is_some_and(|occurred| from <= occurred && occurred < to)
            })
            .map(|d| d.id)
            .collect();
        for id in &in_range {
            if let Some(delivery) = self.work.webhook_deliveries.get_mut(id) {
                *delivery = delivery.clone().redeliver(at);
            }
        }
        Ok(in_range.len() as u64)
    }

    async fn prune_settled_webhook_deliveries(&mut self, before: OffsetDateTime, limit: usize) -> StoreResult<u64> {
        self.faults.operation("prune_settled_webhook_deliveries")?;
        let old: Vec<WebhookDeliveryId> = self
            .work
            .webhook_deliveries
            .values()
            .filter(|d| d.status != DeliveryStatus::Pending && d.updated_at < before)
            .map(|d| d.id)
            .take(limit)
            .collect();
        for id in &old {
            self.work.webhook_deliveries.remove(id);
        }
        Ok(old.len() as u64)
    }

    async fn webhook_delivery_backlog(&mut self) -> StoreResult<DeliveryBacklog> {
        self.faults.operation("webhook_delivery_backlog")?;
        let mut backlog = DeliveryBacklog::default();
        for delivery in self
            .work
            .webhook_deliveries
            .values()
            .filter(|d| d.status == DeliveryStatus::Pending)
        {
            if delivery.last_attempt.is_some() {
                backlog.retrying += 1;
            } else {
                backlog.queued += 1;
            }
        }
        Ok(backlog)
    }
}
