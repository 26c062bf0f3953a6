//! Buyers' refund requests: asked by the buyer, approved (refunded, once) or declined by the
//! merchant whose share it concerns or an admin, withdrawn by the buyer.

use application::pagination::PageRequest;
use application::refund_requests::{AskRefund, RefundRequestQuery, RefundRequestUseError};
use application::refunds::{RefundCommand, RefundError};
use domain::order::OrderStatus;
use domain::payment::RefundStatus;
use domain::refund_request::{RefundRequestError, RefundRequestStatus};
use domain::user::Role;

use crate::orders::{card_cart, wallet_cart};
use crate::support::{Harness, usd};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn ask(amount: Option<i64>, reason: &str) -> AskRefund {
    AskRefund {
        merchant_id: None,
        amount: amount.map(usd),
        reason: reason.to_owned(),
    }
}

#[tokio::test]
async fn the_merchant_approves_a_request_and_it_is_refunded_once() -> Outcome {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(5_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 2)]), None).await?.order;

    let asked = h
        .app
        .request_refund(&buyer, order.id(), ask(Some(600), "one arrived broken"), None)
        .await?;
    assert_eq!(
        (asked.status(), asked.merchant_id(), asked.amount()),
        (RefundRequestStatus::Open, ann.user_id, Some(usd(600)))
    );
    assert_eq!(
        (h.balance(&buyer).await, h.balance(&ann).await),
        (3_000, 2_000),
        "asking moves nothing"
    );

    let refunds = h.app.approve_refund_request(&ann, asked.id(), None).await?;
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0].amount(), refunds[0].status()), (usd(600), RefundStatus::Succeeded));
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (3_600, 1_400));
    let approved = h.app.refund_request(&buyer, asked.id()).await?;
    assert_eq!(
        (approved.status(), approved.record().refund_id, approved.record().decided_by),
        (RefundRequestStatus::Approved, Some(refunds[0].id()), Some(ann.user_id))
    );
    let details = h.app.order_details(&buyer, order.id()).await?;
    assert_eq!(
        (details.order.status(), details.order.refunded()),
        (OrderStatus::PartiallyRefunded, usd(600))
    );

    // Approved once, whoever tries again.
    let again = h.app.approve_refund_request(&h.admin().await, asked.id(), None).await;
    assert!(
        matches!(again, Err(RefundError::Request(RefundRequestError::Transition { .. }))),
        "{again:?}"
    );
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (3_600, 1_400));
    let types = h.event_types().await;
    assert!(
        types.contains(&"refund_request.opened") && types.contains(&"refund_request.approved"),
        "{types:?}"
    );
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_approved_card_request_is_refunded_through_the_gateway() -> Outcome {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await?;
    crate::payments::pay(&h, &checkout.payment.clone().unwrap_or_else(|| panic!("no payment"))).await;

    let asked = h
        .app
        .request_refund(&buyer, checkout.order.id(), ask(None, "never arrived"), None)
        .await?;
    let refunds = h.app.approve_refund_request(&h.admin().await, asked.id(), None).await?;
    assert_eq!(
        (refunds[0].amount(), refunds[0].status()),
        (usd(1_400), RefundStatus::Succeeded),
        "all that was left"
    );
    let details = h.app.order_details(&buyer, checkout.order.id()).await?;
    assert_eq!(details.order.status(), OrderStatus::Refunded);
    assert_eq!(
        h.app.refund_request(&ann, asked.id()).await?.status(),
        RefundRequestStatus::Approved
    );
    assert_eq!(h.balance(&ann).await, 0);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn only_the_buyer_asks_and_only_for_what_is_left_of_a_share_of_a_paid_order() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(5_000).await;
    let stranger = h.funded_customer(100).await;
    let (mug, pen) = (h.product(&ann, 1_000, 5).await, h.product(&bob, 300, 5).await);
    let order = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 1), (pen.product.id, 1)]), None)
        .await?
        .order;
    let refused = |result: Result<_, RefundRequestUseError>| result.err().map(|e| e.to_string());

    let other = h.app.request_refund(&stranger, order.id(), ask(None, "mine?"), None).await;
    assert!(matches!(other, Err(RefundRequestUseError::OrderNotFound)), "{other:?}");
    let merchant = h.app.request_refund(&ann, order.id(), ask(None, "mine?"), None).await;
    assert!(matches!(merchant, Err(RefundRequestUseError::OrderNotFound)), "{merchant:?}");
    let whose = h.app.request_refund(&buyer, order.id(), ask(None, "broken"), None).await;
    assert!(
        matches!(whose, Err(RefundRequestUseError::MerchantRequired)),
        "{:?}",
        refused(whose)
    );
    let for_bob = |amount: Option<i64>, reason: &str| AskRefund {
        merchant_id: Some(bob.user_id),
        ..ask(amount, reason)
    };
    let too_much = h.app.request_refund(&buyer, order.id(), for_bob(Some(301), "broken"), None).await;
    assert!(
        matches!(too_much, Err(RefundRequestUseError::ExceedsRefundable { refundable }) if refundable == usd(300)),
        "{too_much:?}"
    );
    let zero = h.app.request_refund(&buyer, order.id(), for_bob(Some(0), "broken"), None).await;
    assert!(
        matches!(zero, Err(RefundRequestUseError::Request(RefundRequestError::Amount))),
        "{zero:?}"
    );
    let silent = h.app.request_refund(&buyer, order.id(), for_bob(None, "   "), None).await;
    assert!(
        matches!(silent, Err(RefundRequestUseError::Request(RefundRequestError::Reason))),
        "{silent:?}"
    );
    let nobody = AskRefund {
        merchant_id: Some(stranger.user_id),
        ..ask(None, "broken")
    };
    let nobody = h.app.request_refund(&buyer, order.id(), nobody, None).await;
    assert!(matches!(nobody, Err(RefundRequestUseError::NotAMerchant)), "{nobody:?}");

    let first = h.app.request_refund(&buyer, order.id(), for_bob(None, "broken"), None).await?;
    let second = h
        .app
        .request_refund(&buyer, order.id(), for_bob(Some(100), "still broken"), None)
        .await;
    assert!(matches!(second, Err(RefundRequestUseError::AlreadyOpen)), "{second:?}");
    h.app.request_refund(&buyer, order.id(), ask_ann(&ann), None).await?;
    h.app.withdraw_refund_request(&buyer, first.id()).await?;
    let after = h
        .app
        .request_refund(&buyer, order.id(), for_bob(Some(100), "still broken"), None)
        .await?;
    assert_eq!(after.status(), RefundRequestStatus::Open, "one open at a time, not one in all");

    let unpaid = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 1)]), None).await?.order;
    let pending = h.app.request_refund(&buyer, unpaid.id(), ask(None, "changed my mind"), None).await;
    assert!(
        matches!(pending, Err(RefundRequestUseError::NotRefundable(OrderStatus::PaymentPending))),
        "{pending:?}"
    );
    assert_eq!(
        (h.balance(&buyer).await, h.balance(&ann).await, h.balance(&bob).await),
        (3_700, 1_000, 300)
    );
    Ok(())
}

fn ask_ann(ann: &application::auth::Caller) -> AskRefund {
    AskRefund {
        merchant_id: Some(ann.user_id),
        ..ask(None, "scratched")
    }
}

#[tokio::test]
async fn only_the_merchant_of_the_share_or_an_admin_decides_and_a_decline_says_why() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(5_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?.order;
    let asked = h.app.request_refund(&buyer, order.id(), ask(None, "too small"), None).await?;

    let by_buyer = h.app.approve_refund_request(&buyer, asked.id(), None).await;
    assert!(matches!(by_buyer, Err(RefundError::Forbidden)), "{by_buyer:?}");
    let by_bob = h.app.approve_refund_request(&bob, asked.id(), None).await;
    assert!(
        matches!(by_bob, Err(RefundError::RequestNotFound)),
        "another merchant does not see it: {by_bob:?}"
    );
    let declined_by_buyer = h.app.decline_refund_request(&buyer, asked.id(), "no").await;
    assert!(
        matches!(declined_by_buyer, Err(RefundRequestUseError::NotDecider)),
        "{declined_by_buyer:?}"
    );
    let withdrawn_by_ann = h.app.withdraw_refund_request(&ann, asked.id()).await;
    assert!(
        matches!(withdrawn_by_ann, Err(RefundRequestUseError::NotBuyer)),
        "{withdrawn_by_ann:?}"
    );
    let silent = h.app.decline_refund_request(&ann, asked.id(), " ").await;
    assert!(
        matches!(silent, Err(RefundRequestUseError::Request(RefundRequestError::Note))),
        "{silent:?}"
    );

    let declined = h.app.decline_refund_request(&ann, asked.id(), "sizes are on the page").await?;
    assert_eq!(
        (declined.status(), declined.record().note.as_deref()),
        (RefundRequestStatus::Declined, Some("sizes are on the page"))
    );
    let late = h.app.approve_refund_request(&ann, asked.id(), None).await;
    assert!(matches!(late, Err(RefundError::Request(_))), "{late:?}");
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (4_000, 1_000), "nothing moved");

    // Each sees their own: the buyer theirs, the merchant their share's, the admin all.
    let page = PageRequest::first(10);
    let query = RefundRequestQuery::default();
    assert_eq!(h.app.refund_requests(&buyer, query, &page).await?.items.len(), 1);
    assert_eq!(h.app.refund_requests(&ann, query, &page).await?.items.len(), 1);
    assert!(h.app.refund_requests(&bob, query, &page).await?.items.is_empty());
    let open = RefundRequestQuery {
        status: Some(RefundRequestStatus::Open),
        ..query
    };
    assert!(h.app.refund_requests(&h.admin().await, open, &page).await?.items.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_request_for_a_share_refunded_meanwhile_cannot_be_approved_and_stays_open() -> Outcome {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(5_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?.order;
    let asked = h.app.request_refund(&buyer, order.id(), ask(Some(500), "late"), None).await?;
    let command = RefundCommand {
        amount: Some(usd(800)),
        merchant_id: None,
        reason: "goodwill".into(),
    };
    h.app.refund_order(&ann, order.id(), command, None).await?;
    let approve = h.app.approve_refund_request(&ann, asked.id(), None).await;
    assert!(
        matches!(approve, Err(RefundError::ExceedsRefundable { refundable }) if refundable == usd(200)),
        "{approve:?}"
    );
    assert_eq!(h.app.refund_request(&buyer, asked.id()).await?.status(), RefundRequestStatus::Open);
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (4_800, 200));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_request_whose_card_refund_the_provider_refuses_says_so_and_the_buyer_may_ask_again() -> Outcome {
    use application::ports::gateway::GatewayError;
    let mut gateway = crate::support::working_gateway();
    gateway.checkpoint();
    gateway.expect_provider().return_const(crate::support::provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(application::ports::gateway::CheckoutSession {
            session_id: format!("cs_{}", request.payment_id),
            checkout_url: "https://pay.example".into(),
        })
    });
    gateway
        .expect_refund()
        .returning(|_| Err(GatewayError::InvalidRequest("charge_disputed".into())));
    let h = Harness::with_gateway(gateway);
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 1)]), None).await?;
    crate::payments::pay(&h, &checkout.payment.clone().unwrap_or_else(|| panic!("no payment"))).await;
    let asked = h.app.request_refund(&buyer, checkout.order.id(), ask(None, "broken"), None).await?;

    let refused = h.app.approve_refund_request(&ann, asked.id(), None).await;
    assert!(matches!(refused, Err(RefundError::Gateway(_))), "{refused:?}");
    let request = h.app.refund_request(&buyer, asked.id()).await?;
    assert_eq!(request.status(), RefundRequestStatus::RefundFailed, "not left approved");
    let refund_id = request.record().refund_id.unwrap_or_else(|| panic!("the refund is named"));
    let details = h.app.order_details(&buyer, checkout.order.id()).await?;
    assert_eq!(
        details.refunds.iter().find(|r| r.id() == refund_id).map(|r| r.status()),
        Some(RefundStatus::Failed)
    );
    assert_eq!(h.balance(&ann).await, 700, "the merchant has the money back");
    assert!(h.event_types().await.contains(&"refund_request.refund_failed"));
    let again = h
        .app
        .request_refund(&buyer, checkout.order.id(), ask(None, "still broken"), None)
        .await?;
    assert_eq!(again.status(), RefundRequestStatus::Open);
    h.assert_ledger_ok().await;
    Ok(())
}
