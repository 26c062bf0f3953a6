//! Group commit: wallet checkouts of the same cart, and transfers to the same recipient, share
//! one transaction, each in its own savepoint, and are committed together. A test holds a group
//! open by being its first member (a transaction begun with `begin_grouped` that has run its first
//! statement), lets others join behind it, then lets them run; that they shared one commit shows
//! in the commit markers.

use std::sync::Arc;
use std::time::Duration;

use adapter_postgres::testing::TestDatabase;
use adapter_postgres::{PgStore, PgTx};
use application::auth::Caller;
use application::checkout::{Checkout, CheckoutError};
use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
use application::ports::store::{Contention, ProductRepository, StoreError, Transaction, UnitOfWork, UserRepository};
use application::transfers::{Recipient, TransferError, TransferRequest};
use domain::catalog::Stock;
use domain::ids::ProductId;
use domain::order::PaymentMethod;
use domain::user::Role;
use domain::wallet::Transfer;
use tokio::task::JoinHandle;

use crate::support::{Harness, cart, eventually, stored_user, usd};

/// What most tests here start from: a database, its store, a merchant and their mug (5.00, ten
/// in stock), whose stock row is the rows a group contends on.
struct Shop {
    h: Harness,
    store: PgStore,
    merchant: Caller,
    mug: ProductId,
}

impl Shop {
    async fn open() -> Shop {
        let h = Harness::new().await;
        let store = h.database.store();
        let merchant = h.user(Role::Merchant).await;
        let mug = h.product(&merchant, 500, 10).await.product.id;
        Shop { h, store, merchant, mug }
    }
}

/// A transaction that opens the group on `product` and holds its connection until it ends.
async fn first_member(store: &PgStore, product: ProductId) -> PgTx {
    let mut tx = store.begin_grouped(&Contention::stock(&[product])).await.expect("begin");
    tx.lock_stock(&[product]).await.expect("the group's first statement");
    tx
}

/// Waits until `members` transactions have joined the open groups.
async fn joined(store: &PgStore, members: usize) {
    eventually(&format!("{members} members joined"), || async {
        store.group_members_joined() == members
    })
    .await;
}

fn checkout_later(h: &Harness, buyer: Caller, product: ProductId, key: Option<&str>) -> JoinHandle<Result<Checkout, CheckoutError>> {
    let app = Arc::clone(&h.app);
    let keyed = key.map(|key| keyed(buyer, key));
    tokio::spawn(async move { app.checkout(&buyer, cart(&[(product, 1)], PaymentMethod::Wallet), keyed).await })
}

fn render(checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: checkout.order.id().to_string().into_bytes(),
        location: None,
    }
}

fn scope(buyer: Caller, key: &str) -> IdempotencyScope {
    IdempotencyScope {
        principal: Some(buyer.user_id),
        key: IdempotencyKey::parse(key).expect("key"),
    }
}

fn keyed(buyer: Caller, key: &str) -> Idempotent<Checkout> {
    Idempotent {
        scope: scope(buyer, key),
        fingerprint: format!("checkout-{key}"),
        render,
    }
}

/// What the tasks returned, in the order they were spawned.
async fn answers<T, const N: usize>(tasks: Vec<JoinHandle<T>>) -> [T; N] {
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let count = answers.len();
    answers.try_into().unwrap_or_else(|_| panic!("{N} tasks expected, {count} spawned"))
}

/// Commits that wrote something so far: each inserts one commit marker, a group one for all its
/// members (rows a member writes carry its savepoint's transaction id, so `xmin` cannot tell).
async fn commits(h: &Harness) -> i64 {
    let client = h.database.raw_client().await;
    client
        .query_one("SELECT count(*) FROM commit_markers", &[])
        .await
        .expect("count")
        .get(0)
}

async fn order_count(h: &Harness) -> i64 {
    let client = h.database.raw_client().await;
    client.query_one("SELECT count(*) FROM orders", &[]).await.expect("count").get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commits_its_members_together_and_a_failing_one_alone_has_no_effect() {
    let Shop { h, store, merchant, mug } = Shop::open().await;
    let first = h.funded_customer(1_000).await;
    let poor = h.funded_customer(100).await;
    let second = h.funded_customer(1_000).await;

    let opener = first_member(&store, mug).await;
    let mut tasks = Vec::new();
    for (joined_before, buyer) in [first, poor, second].into_iter().enumerate() {
        tasks.push(checkout_later(&h, buyer, mug, None));
        joined(&store, joined_before + 2).await;
    }
    let before = commits(&h).await;
    opener.commit().await.expect("the opener's empty work");

    let [Ok(paid_first), Err(refused), Ok(paid_second)] = answers(tasks).await else {
        panic!("the buyers with funds pay and the other is refused");
    };
    assert!(matches!(refused, CheckoutError::InsufficientFunds { .. }), "{refused:?}");
    assert_ne!(paid_first.order.id(), paid_second.order.id());
    assert_eq!(commits(&h).await - before, 1, "both orders were committed together");
    assert_eq!(order_count(&h).await, 2, "the refused checkout left no order");
    assert_eq!(h.stock(mug).await, (8, 0));
    assert_eq!(
        (h.balance(&first).await, h.balance(&poor).await, h.balance(&second).await),
        (500, 100, 500)
    );
    assert_eq!(h.balance(&merchant).await, 1_000);
    h.assert_ledger_ok().await;
}

fn transfer_later(h: &Harness, sender: Caller, to: Recipient, minor: i64) -> JoinHandle<Result<Transfer, TransferError>> {
    let app = Arc::clone(&h.app);
    let request = TransferRequest {
        to,
        amount: usd(minor),
        note: String::new(),
    };
    tokio::spawn(async move { app.transfer(&sender, request, None).await })
}

/// Many senders paying one recipient queue for its wallet: their transfers join one group, by id
/// or by email alike, and one that cannot be paid fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_to_one_recipient_commit_together_and_a_refused_one_alone_has_no_effect() {
    let h = Harness::new().await;
    let store = h.database.store();
    let shop = h.user(Role::Merchant).await;
    let email = {
        let mut tx = store.begin().await.expect("begin");
        let shop = tx.find_user(shop.user_id).await.expect("find").expect("the shop");
        tx.commit().await.expect("commit");
        shop.email
    };
    let (first, poor, second) = (
        h.funded_customer(1_000).await,
        h.funded_customer(100).await,
        h.funded_customer(1_000).await,
    );

    let mut opener = store.begin_grouped(&Contention::recipient_id(shop.user_id)).await.expect("begin");
    opener.find_user(shop.user_id).await.expect("the group's first statement");
    let mut tasks = Vec::new();
    for (joined_before, sender) in [first, poor, second].into_iter().enumerate() {
        tasks.push(transfer_later(&h, sender, Recipient::Id(shop.user_id), 300));
        joined(&store, joined_before + 2).await;
    }
    // Named by email, the same recipient is another key: a group of its own, which does not wait
    // for this one.
    let by_email = transfer_later(&h, second, Recipient::Email(email.as_str().to_owned()), 200);
    tokio::time::timeout(Duration::from_secs(30), by_email)
        .await
        .expect("the transfer by email should not wait for the group by id")
        .expect("task")
        .expect("the transfer by email");
    let before = commits(&h).await;
    opener.commit().await.expect("the opener's empty work");

    let [Ok(paid_first), Err(refused), Ok(paid_second)] = answers(tasks).await else {
        panic!("the senders with funds pay and the other is refused");
    };
    assert!(matches!(refused, TransferError::InsufficientFunds { .. }), "{refused:?}");
    assert_ne!(paid_first.id, paid_second.id);
    assert_eq!(commits(&h).await - before, 1, "the transfers by id were committed together");
    assert_eq!(
        (h.balance(&first).await, h.balance(&poor).await, h.balance(&second).await),
        (700, 100, 500)
    );
    assert_eq!(h.balance(&shop).await, 800);
    h.assert_ledger_ok().await;
}

/// A member other than the group's opener never waits for a lock: the group holds its members'
/// rows out of lock order, and waiting could close a deadlock. Here the buyer's wallet is locked
/// outside the group, and locks may be waited for without limit; the checkout leaves the group at
/// once, which commits without it, and runs alone, waiting for the wallet as any transaction
/// does. (Waiting inside the group, it would have held the group as long as the wallet was held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_member_that_would_wait_for_a_lock_runs_again_alone() {
    let h = Harness::with_settings(|settings| settings.lock_timeout = Duration::ZERO).await;
    let store = h.database.store();
    let merchant = h.user(Role::Merchant).await;
    let mug = h.product(&merchant, 500, 10).await.product.id;
    let buyer = h.funded_customer(1_000).await;
    let outside = h.database.raw_client().await;
    outside.batch_execute("BEGIN").await.expect("begin");
    outside
        .execute(
            "SELECT 1 FROM wallets WHERE owner_user_id = $1 FOR UPDATE",
            &[&buyer.user_id.as_uuid()],
        )
        .await
        .expect("the buyer's wallet, locked outside the group");

    let opener = first_member(&store, mug).await;
    let checkout = checkout_later(&h, buyer, mug, None);
    joined(&store, 2).await;
    let before = commits(&h).await;
    tokio::time::timeout(Duration::from_secs(30), opener.commit())
        .await
        .expect("the group should not wait for the wallet locked outside it")
        .expect("the group commits without the checkout");
    assert_eq!(commits(&h).await - before, 1);
    assert!(!checkout.is_finished(), "the checkout waits, alone, for the buyer's wallet");
    outside.batch_execute("ROLLBACK").await.expect("rollback");

    let paid = checkout.await.expect("task").expect("the checkout, run again alone");
    assert_eq!(paid.order.total().amount_minor(), 500);
    assert_eq!(h.balance(&buyer).await, 500);
    assert_eq!(commits(&h).await - before, 2);
}

/// Waiting for a group's connection is bounded as a wait for a row lock is, by the rows not
/// moving for `lock_timeout`; not by the time the group's first member spends waiting for a
/// connection from the pool, which the pool's own timeout bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_behind_a_first_member_waiting_for_the_pool_wait_with_it() {
    let database = TestDatabase::create_with(|settings| {
        settings.pool_max_size = 1;
        settings.lock_timeout = Duration::from_millis(200);
    })
    .await;
    let store = database.store();
    let product = ProductId::from_uuid(uuid::Uuid::now_v7());
    let member = |store: PgStore| async move {
        let mut tx = store.begin_grouped(&Contention::stock(&[product])).await?;
        tx.find_user(domain::ids::UserId::from_uuid(uuid::Uuid::now_v7())).await?;
        tx.commit().await
    };
    // The pool's only connection is taken.
    let mut busy = store.begin().await.expect("begin");
    busy.backend_pid().await.expect("a statement");
    let first = tokio::spawn(member(store.clone()));
    joined(&store, 1).await;
    let second = tokio::spawn(member(store.clone()));
    joined(&store, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    busy.rollback().await.expect("rollback");

    first
        .await
        .expect("task")
        .expect("the first member, once the pool had a connection");
    second.await.expect("task").expect("the member behind it, which waited as long");
}

/// A member whose statement the server refuses (which aborts a PostgreSQL transaction) is rolled
/// back to its savepoint; the members before and after it commit.
#[tokio::test]
async fn a_statement_the_server_refuses_fails_only_its_member() {
    let Shop {
        h: _database,
        store,
        merchant: _,
        mug,
    } = Shop::open().await;
    let before = stored_user(Role::Customer);
    let after = stored_user(Role::Customer);

    let mut opener = first_member(&store, mug).await;
    opener.insert_user(&before).await.expect("insert");
    let (store_clone, twin) = (store.clone(), before.clone());
    let duplicate = tokio::spawn(async move {
        let mut tx = store_clone.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
        let refused = tx.insert_user(&twin).await;
        tx.rollback().await.expect("back to its savepoint");
        refused
    });
    joined(&store, 2).await;
    let (store_clone, user) = (store.clone(), after.clone());
    let last = tokio::spawn(async move {
        let mut tx = store_clone.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
        tx.insert_user(&user).await?;
        tx.commit().await
    });
    joined(&store, 3).await;
    opener.commit().await.expect("committed with the group");

    let refused = duplicate.await.expect("task");
    assert!(matches!(refused, Err(StoreError::Duplicate(_))), "{refused:?}");
    last.await.expect("task").expect("the member after the refused one commits");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.find_user(before.id).await.expect("find").is_some());
    assert!(tx.find_user(after.id).await.expect("find").is_some());
    tx.rollback().await.expect("rollback");
}

/// Waits until `members` transactions are queued for their group's connection.
async fn waiting(store: &PgStore, members: usize) {
    eventually(&format!("{members} members waiting"), || async {
        store.group_members_waiting() == members
    })
    .await;
}

/// A member hands the rows on without a round trip between members: the opening of the member
/// waiting next (its savepoint and the cart's lock) travels in the pipeline of its release. Here
/// the opener's release carries the first buyer's opening, and the first buyer's the second's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_members_opening_travels_with_the_release_of_the_member_before() {
    let Shop { h, store, merchant, mug } = Shop::open().await;
    let buyers = [
        h.funded_customer(1_000).await,
        h.funded_customer(1_000).await,
        h.funded_customer(1_000).await,
    ];

    let opener = first_member(&store, mug).await;
    let mut tasks = Vec::new();
    for (waiting_before, buyer) in buyers.into_iter().enumerate() {
        tasks.push(checkout_later(&h, buyer, mug, None));
        waiting(&store, waiting_before + 1).await;
    }
    let (before, sent_before) = (commits(&h).await, store.group_openings_sent_ahead());
    opener.commit().await.expect("the opener's empty work");

    let [first, second, third] = answers(tasks).await;
    for paid in [first, second, third] {
        paid.expect("every buyer pays");
    }
    // The last member commits the group and has nobody to send ahead for.
    assert_eq!(
        store.group_openings_sent_ahead() - sent_before,
        3,
        "the opener's release and two buyers' carried the next opening"
    );
    assert_eq!(commits(&h).await - before, 1, "one commit for the group");
    assert_eq!(h.stock(mug).await, (7, 0));
    assert_eq!(h.balance(&merchant).await, 1_500);
    h.assert_ledger_ok().await;
}

/// When the writes of the member whose release carries the next member's opening fail, the next
/// member's statements fail with them (the transaction is aborted until the failing member goes
/// back to its savepoint): the next member is handed the connection without answers, sends its
/// opening again, and pays as if nothing had happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_opening_failed_with_the_writes_before_it_sends_it_again() {
    let Shop { h, store, mug, .. } = Shop::open().await;
    let buyer = h.funded_customer(1_000).await;

    let mut opener = first_member(&store, mug).await;
    // A write the server refuses when it runs, in the pipeline of the opener's release: a stock
    // row that does not exist must change exactly one row.
    let missing = Stock::new(ProductId::from_uuid(uuid::Uuid::now_v7()), 1).expect("stock");
    opener.update_stock(&[missing]).await.expect("deferred");
    let task = checkout_later(&h, buyer, mug, None);
    waiting(&store, 1).await;
    let (before, sent_before) = (commits(&h).await, store.group_openings_sent_ahead());
    let refused = opener.commit().await;
    assert!(refused.is_err(), "the opener's write was refused: {refused:?}");

    let [paid] = answers(vec![task]).await;
    paid.expect("the buyer behind the refused write pays");
    assert_eq!(
        store.group_openings_sent_ahead(),
        sent_before,
        "its opening was sent again, not handed over"
    );
    assert_eq!(commits(&h).await - before, 1);
    assert_eq!(h.stock(mug).await, (9, 0));
    assert_eq!(h.balance(&buyer).await, 500);
    h.assert_ledger_ok().await;
}

/// The member whose opening travels with a release may go away while that pipeline runs (its
/// caller gave up): its savepoint, its cart's lock and all, is then open on the group's connection
/// with nobody to end it. The member that sent it rolls it back before handing the connection on,
/// and the group commits without it. The buyer's checkout is keyed, so its opening writes (the
/// key's claim): had the savepoint been left, the claim would commit and hold the key for good. To
/// hold the pipeline open, the opener's own write waits for a stock row a plain transaction holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_went_away_while_its_opening_was_sent_ahead_leaves_nothing() {
    let Shop { h, store, merchant, mug } = Shop::open().await;
    let pen = h.product(&merchant, 100, 10).await.product.id;
    let buyer = h.funded_customer(1_000).await;

    let mut holder = h.database.raw_client().await;
    let holding = holder.transaction().await.expect("begin");
    holding
        .execute("SELECT 1 FROM stock WHERE product_id = $1 FOR UPDATE", &[&pen.as_uuid()])
        .await
        .expect("the pen's stock row, held");

    let mut opener = first_member(&store, mug).await;
    opener.update_stock(&[Stock::new(pen, 7).expect("stock")]).await.expect("deferred");
    let gone = checkout_later(&h, buyer, mug, Some("gone-half-way"));
    waiting(&store, 1).await;
    let (before, sent_before) = (commits(&h).await, store.group_openings_sent_ahead());
    let released = tokio::spawn(opener.commit());

    // The opener's write waits for the pen's row; its pipeline carries the buyer's opening.
    let client = h.database.raw_client().await;
    eventually("the opener's write waits for the held row", || async {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        waiting == 1
    })
    .await;
    gone.abort();
    assert!(gone.await.expect_err("the buyer went away").is_cancelled());
    holding.rollback().await.expect("the pen's row, let go");

    released.await.expect("task").expect("the opener's work commits");
    assert_eq!(
        store.group_openings_sent_ahead(),
        sent_before,
        "the opening was sent, but nobody took it"
    );
    assert_eq!(commits(&h).await - before, 1, "the group committed once, without the buyer");
    assert_eq!(h.stock(pen).await, (7, 0), "the opener's write");
    assert_eq!(h.stock(mug).await, (10, 0), "nothing of the buyer's checkout");
    assert_eq!(order_count(&h).await, 0);
    assert_eq!(h.balance(&buyer).await, 1_000);

    // The key was not claimed, and the rows are free again: the buyer's retry pays as usual.
    checkout_later(&h, buyer, mug, Some("gone-half-way"))
        .await
        .expect("task")
        .expect("the retry pays");
    assert_eq!(h.stock(mug).await, (9, 0));
    h.assert_ledger_ok().await;
}

/// A member whose first statement is a write (a keyed checkout's claim, say) sends it in the
/// pipeline of its savepoint; the group's opener sends its first write only once `BEGIN` is
/// answered. Both kinds commit with the group, and a refused first write fails its member alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_whose_first_statement_is_a_write_commit_with_the_group() {
    let Shop { h, store, mug, .. } = Shop::open().await;
    let (opening, joining, taken) = (
        stored_user(Role::Customer),
        stored_user(Role::Customer),
        stored_user(Role::Customer),
    );
    let existing = {
        let mut tx = store.begin().await.expect("begin");
        tx.insert_user(&taken).await.expect("a user whose id is taken");
        tx.commit().await.expect("commit");
        taken.clone()
    };

    let mut opener = store.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
    opener.insert_user(&opening).await.expect("the group's first statement, a write");
    let mut tasks = Vec::new();
    for (joined_before, user) in [joining.clone(), existing].into_iter().enumerate() {
        let member_store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = member_store.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
            match tx.insert_user(&user).await {
                Ok(_) => tx.commit().await,
                Err(error) => {
                    tx.rollback().await.expect("back to its savepoint");
                    Err(error)
                }
            }
        }));
        joined(&store, joined_before + 2).await;
    }
    let before = commits(&h).await;
    opener.commit().await.expect("the opener's write, committed with the group");

    let [joined_member, refused] = answers(tasks).await;
    joined_member.expect("the member's write commits with the group");
    assert!(matches!(refused, Err(StoreError::Duplicate(_))), "{refused:?}");
    assert_eq!(commits(&h).await - before, 1, "one commit for the group");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.find_user(opening.id).await.expect("find").is_some());
    assert!(tx.find_user(joining.id).await.expect("find").is_some());
    tx.rollback().await.expect("rollback");
}

/// A double submit: two checkouts under one key land in one group. The second must not answer
/// from the first's key record before that record is committed (its client would be told the
/// request is still running, and a read of the key would find nothing): it runs again alone,
/// waits for the group's commit, and then finds the first's response to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sent_twice_into_one_group_is_answered_only_once_committed() {
    let Shop { h, store, mug, .. } = Shop::open().await;
    let buyer = h.funded_customer(1_000).await;

    let opener = first_member(&store, mug).await;
    let first = checkout_later(&h, buyer, mug, Some("twice"));
    joined(&store, 2).await;
    let app = Arc::clone(&h.app);
    let second = tokio::spawn(async move {
        let answer = app
            .checkout(&buyer, cart(&[(mug, 1)], PaymentMethod::Wallet), Some(keyed(buyer, "twice")))
            .await;
        // What the key says the moment the second request has its answer.
        let status = app.idempotency_status(&scope(buyer, "twice"), "checkout-twice").await;
        (answer, status)
    });
    joined(&store, 3).await;
    // A member behind both keeps the group from committing until the test lets it.
    let store_clone = store.clone();
    let (seated_tx, seated) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        let mut tx = store_clone.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
        tx.lock_stock(&[mug]).await.expect("the holder's statement");
        let _ = seated_tx.send(());
        let _ = go_rx.await;
        tx.commit().await
    });
    joined(&store, 4).await;
    // The opener's commit waits for its group's, so it is left to run.
    let opened = tokio::spawn(opener.commit());
    seated.await.expect("the holder took its seat after both checkouts");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = go.send(());
    holder.await.expect("task").expect("the holder commits with the group");
    opened.await.expect("task").expect("the opener's empty work");

    let paid = first.await.expect("task").expect("the first checkout");
    let (answer, status) = second.await.expect("task");
    assert!(
        matches!(answer, Err(CheckoutError::Idempotency(IdempotencyError::Completed))),
        "{answer:?}"
    );
    match status {
        Ok(KeyStatus::Replay(response)) => assert_eq!(response, render(&paid)),
        other => panic!("the second request answered before the first's response was committed: {other:?}"),
    }
    assert_eq!(order_count(&h).await, 1, "bought once");
    assert_eq!(h.balance(&buyer).await, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_checkouts_that_were_grouped_replay_their_own_orders() {
    let Shop { h, store, merchant, mug } = Shop::open().await;
    let mut buyers = Vec::new();
    for _ in 0..4 {
        buyers.push(h.funded_customer(1_000).await);
    }

    let opener = first_member(&store, mug).await;
    let mut tasks = Vec::new();
    for (n, buyer) in buyers.iter().enumerate() {
        tasks.push(checkout_later(&h, *buyer, mug, Some(&format!("order-{n}"))));
        joined(&store, n + 2).await;
    }
    let before = commits(&h).await;
    opener.commit().await.expect("the opener's empty work");
    let mut orders = Vec::new();
    for task in tasks {
        orders.push(task.await.expect("task").expect("paid").order.id());
    }
    assert_eq!(commits(&h).await - before, 1, "the four were committed together");

    for (n, (buyer, order)) in buyers.iter().zip(&orders).enumerate() {
        let key = format!("order-{n}");
        let status = h.app.idempotency_status(&scope(*buyer, &key), &format!("checkout-{key}")).await;
        match status.expect("status") {
            KeyStatus::Replay(response) => assert_eq!(response.body, order.to_string().into_bytes(), "buyer {n}"),
            KeyStatus::Free => panic!("buyer {n}'s key was completed with its order"),
        }
        let again = h
            .app
            .checkout(buyer, cart(&[(mug, 1)], PaymentMethod::Wallet), Some(keyed(*buyer, &key)))
            .await;
        assert!(
            matches!(again, Err(CheckoutError::Idempotency(_))),
            "the use case does not run twice under a key: {again:?}"
        );
    }
    assert_eq!(order_count(&h).await, 4);
    assert_eq!(h.stock(mug).await, (6, 0));
    assert_eq!(h.balance(&merchant).await, 2_000);
    h.assert_ledger_ok().await;
}

/// The group's connection dies while a member runs, after another has applied its work: nothing
/// of the group commits, and the checkout that had applied runs again alone and is paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_group_loses_nothing_and_the_members_run_again() {
    let Shop { h, store, merchant, mug } = Shop::open().await;
    let buyer = h.funded_customer(1_000).await;

    let opener = first_member(&store, mug).await;
    let checkout = checkout_later(&h, buyer, mug, Some("lost-group"));
    joined(&store, 2).await;
    let (pid_sender, pid) = tokio::sync::oneshot::channel();
    let (go_sender, go) = tokio::sync::oneshot::channel::<()>();
    let store_clone = store.clone();
    let last = tokio::spawn(async move {
        let mut tx = store_clone.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
        // Runs once the checkout has applied its work and handed the connection on.
        tx.lock_stock(&[mug]).await.expect("lock");
        pid_sender.send(tx.backend_pid().await.expect("pid")).expect("send");
        go.await.expect("go");
        let read = tx.lock_stock(&[mug]).await.map(drop);
        let commit = tx.commit().await;
        (read, commit)
    });
    joined(&store, 3).await;
    let before = commits(&h).await;
    let opened = tokio::spawn(opener.commit());

    let pid = pid.await.expect("pid");
    let client = h.database.raw_client().await;
    client.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("terminate");
    go_sender.send(()).expect("go");

    let (read, commit) = last.await.expect("task");
    assert!(
        matches!(read, Err(StoreError::Conflict)),
        "the member on the lost connection may run again: {read:?}"
    );
    assert!(commit.is_err(), "{commit:?}");
    let opened = opened.await.expect("task");
    assert!(matches!(opened, Err(StoreError::Conflict)), "the group did not commit: {opened:?}");
    checkout.await.expect("task").expect("paid when run again alone");
    assert_eq!(
        commits(&h).await - before,
        1,
        "the group did not commit; the checkout run again alone did"
    );
    assert_eq!(order_count(&h).await, 1, "paid once");
    assert_eq!(h.stock(mug).await, (9, 0));
    assert_eq!(h.balance(&buyer).await, 500);
    assert_eq!(h.balance(&merchant).await, 500);
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn one_member_per_group_runs_each_transaction_alone_and_zero_is_refused() {
    let h = Harness::new().await;
    assert!(h.database.store().with_group_commit_members(0).is_err());
    let store = h.database.store().with_group_commit_members(1).expect("one member");
    let merchant = h.user(Role::Merchant).await;
    let mug = h.product(&merchant, 500, 10).await.product.id;
    let mut tx = store.begin_grouped(&Contention::stock(&[mug])).await.expect("begin");
    tx.lock_stock(&[mug]).await.expect("lock");
    assert_eq!(store.group_members_joined(), 0, "no group was formed");
    tx.commit().await.expect("commit");
}
