//! Group commit: concurrent transactions on the same hot rows share one PostgreSQL transaction.
//!
//! In a flash sale every purchase queues for one stock row, and each holder of the row pays for
//! its own `COMMIT` (a WAL flush) and hands the row lock on through PostgreSQL's lock manager
//! before the next can start; so does every transfer to one popular recipient, for that wallet's
//! row. A transaction begun with `UnitOfWork::begin_grouped` names the rows it will contend on
//! (its cart's stock, its recipient's wallet); while another one on the same rows is running, it
//! joins that one's *group* instead of opening a transaction of its own:
//!
//! - The group has one connection and one transaction, opened by the first member. Members take
//!   the connection (the group's `Seat`) one at a time, in the order they asked for it, so they
//!   run one after another exactly as they would have queued for the row lock, and each sees what
//!   the members before it wrote. A seat dropped goes to the next member waiting, as a mutex
//!   guard would.
//! - A member hands the rows on without a round trip in between: the first statements of the next
//!   member waiting (its savepoint and what it sends first, such as the cart's lock) travel in the
//!   pipeline of this member's writes and `RELEASE SAVEPOINT`, and their answers wait for that
//!   member with the seat. PostgreSQL runs the pipeline in order, so the next member starts
//!   where this one ended. If this member's writes fail, the next member's statements fail with
//!   them (the transaction is aborted until this member goes back to its savepoint), and it is
//!   handed the seat without answers, to send its opening again. If the next member went away
//!   meanwhile, this member rolls its savepoint back before handing the seat on; if it cannot, the
//!   group does not commit.
//! - Each member runs inside its own savepoint (`SAVEPOINT member` travels with its first
//!   statement). Its commit sends its writes with `RELEASE SAVEPOINT`; its rollback, or any error
//!   the server raised while it ran, goes back to the savepoint. So a member that fails (the buyer
//!   cannot pay, the stock ran out, a write was refused) is without effect, and the members
//!   before and after it are untouched: a group never mixes outcomes.
//! - The last member to finish commits the group, once, with one commit marker (see `tx` on a
//!   commit whose answer is lost), in a task of its own so that no caller going away can cut it
//!   short. Every member that released its savepoint waits for that commit and answers with its
//!   outcome: committed; not committed, as `StoreError::Conflict`, which `transact` retries as a
//!   transaction of its own (the server refused the commit, the connection was lost before it, a
//!   member was dropped half-way); or, when even the commit marker cannot tell, `OutcomeUnknown`.
//! - A group takes new members until it has `PgStore::with_group_commit_members` of them (16);
//!   the next transaction on the cart then starts a new group, whose first statement waits in
//!   PostgreSQL for the rows this one holds. That bounds how long a member waits for the members
//!   behind it.
//!
//! Every member's own rows (its order, postings, idempotency record, events) are its own, written
//! by its own statements: the group changes when they commit, not what they are.
//!
//! Only the member that began the group's transaction waits for row locks. Lock order holds within
//! each member, but a group keeps every member's rows locked until it commits, so across members
//! it takes rows out of order (a buyer's or sender's wallet after the merchant's or recipient's
//! it already holds). Were it to wait for one, the transaction holding it could be waiting for the
//! group (another group, whose hot recipient is this group's sender): a deadlock, which PostgreSQL
//! breaks only after `deadlock_timeout` (a second). Random transfers among a few users made such
//! cycles constant (bench/NOTES.md). So every later member runs with a lock timeout of 1 ms
//! (`NO_LOCK_WAIT`), and a lock it cannot have at once sends it back to its savepoint to run again
//! alone (`Conflict`), as a plain transaction that waits in lock order. A group then never waits
//! while it holds rows, and cannot be part of a deadlock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use application::ports::store::{Contention, StoreError, StoreResult};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager as _};
use futures::future::{self, BoxFuture, Either};
use tokio::sync::{oneshot, watch};

use crate::sql::Write;
use crate::store::PgStore;
use crate::tx::{Connection, commit_with_marker, member_error};

/// The savepoint every member runs in. One name serves: a member's savepoint is released or
/// rolled back before the next member starts.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT member";
pub(crate) const RELEASE: &str = "RELEASE SAVEPOINT member";
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT member";
/// Sent in every member's savepoint but the opener's: a later member does not wait for a lock
/// (see the module docs). `SET LOCAL` inside a savepoint lasts until the savepoint is rolled back,
/// or after its release until the transaction ends; each member sends it again. (1 ms is
/// PostgreSQL's least; zero would mean no limit.)
pub(crate) const NO_LOCK_WAIT: &str = "SET LOCAL lock_timeout = 1";

/// The rows a group contends on (a cart's stock, a transfer's recipient).
pub(crate) type GroupKey = Contention;

/// The groups of one store that still take members, by key.
pub(crate) struct Groups {
    members_max: usize,
    open: Mutex<HashMap<GroupKey, Arc<Group>>>,
    /// Members whose opening the member before them sent, for tests.
    sent_ahead: AtomicUsize,
}

impl Groups {
    pub(crate) fn new(members_max: usize) -> Groups {
        Groups {
            members_max,
            open: Mutex::new(HashMap::new()),
            sent_ahead: AtomicUsize::new(0),
        }
    }

    /// Whether transactions are grouped at all (a group of one is a plain transaction).
    pub(crate) fn enabled(&self) -> bool {
        self.members_max > 1
    }

    /// Joins the group on `key` that takes members, or starts one.
    pub(crate) fn join(&self, store: &PgStore, key: &GroupKey) -> Ticket {
        let mut open = locked(&self.open);
        let group = match open.get(key) {
            Some(group) => Arc::clone(group),
            None => {
                let group = Arc::new(Group::new(key.clone()));
                open.insert(key.clone(), Arc::clone(&group));
                group
            }
        };
        let mut counts = locked(&group.counts);
        counts.joined += 1;
        if counts.joined >= self.members_max {
            // Full: the next transaction on these rows starts a group of its own.
            open.remove(key);
        }
        drop(counts);
        Ticket {
            store: store.clone(),
            group,
            finished: false,
        }
    }

    /// Groups that take members now, and their members so far, for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn joined(&self) -> usize {
        locked(&self.open).values().map(|group| locked(&group.counts).joined).sum()
    }

    /// Members of the groups that take members waiting for their group's connection, for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn waiting(&self) -> usize {
        let open = locked(&self.open);
        open.values()
            .map(|group| {
                locked(&group.seats)
                    .waiting
                    .iter()
                    .filter(|waiter| !waiter.handed.is_closed())
                    .count()
            })
            .sum()
    }

    /// Members whose opening the member before them sent, so far, for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn sent_ahead(&self) -> usize {
        AtomicUsize::load(&self.sent_ahead, Ordering::Relaxed)
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Group {
    key: GroupKey,
    /// The shared transaction, held by one member at a time (a `Seat`), and the members waiting
    /// for it, in the order they asked.
    seats: Mutex<Seats>,
    /// Changed only with the store's `open` map locked as well (it is locked first).
    counts: Mutex<Counts>,
    /// Bumped when the group's transaction opens and whenever a member finishes.
    progress: watch::Sender<Progress>,
    outcome: watch::Sender<Option<Outcome>>,
}

/// How far a group has got, for the members waiting for its connection (`Ticket::take_seat`).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Whether a member has taken the group's connection from the pool.
    opened: bool,
    /// Members that have finished.
    finished: usize,
}

#[derive(Debug, Default)]
struct Counts {
    joined: usize,
    finished: usize,
    /// Members that released their savepoint: what the group's commit is for.
    applied: usize,
}

/// The group's connection and transaction.
pub(crate) struct Shared {
    /// Taken from the pool, with `BEGIN`, by the first member; `None` before that.
    pub(crate) connection: Option<Connection>,
    /// Why the group can no longer commit (a lost connection, a member dropped half-way).
    pub(crate) broken: Option<String>,
}

/// How the group's transaction ended.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// Nothing of the group was committed: every member may run again.
    NotCommitted(String),
    Unknown(String),
}

impl Outcome {
    /// How a commit of the group's transaction ended, for its members.
    fn of(commit: &StoreResult<()>) -> Outcome {
        match commit {
            Ok(()) => Outcome::Committed,
            Err(StoreError::OutcomeUnknown(reason)) => Outcome::Unknown(reason.clone()),
            Err(error) => Outcome::NotCommitted(error.to_string()),
        }
    }
}

impl Group {
    fn new(key: GroupKey) -> Group {
        Group {
            key,
            seats: Mutex::new(Seats {
                parked: Some(Shared {
                    connection: None,
                    broken: None,
                }),
                waiting: VecDeque::new(),
            }),
            counts: Mutex::new(Counts::default()),
            progress: watch::Sender::new(Progress::default()),
            outcome: watch::Sender::new(None),
        }
    }

    /// The seat at once if nobody holds it or waits for it; else a place in the queue. `opening`
    /// is what the member would send first, which the member ahead of it may send for it.
    fn ask(self: &Arc<Self>, opening: Option<Opening>) -> Result<Seat, oneshot::Receiver<Seat>> {
        let mut seats = locked(&self.seats);
        if seats.waiting.is_empty()
            && let Some(shared) = seats.parked.take()
        {
            return Ok(Seat::new(self, shared, false));
        }
        let (handed, receiver) = oneshot::channel();
        seats.waiting.push_back(Waiter { handed, opening });
        Err(receiver)
    }

    /// Hands the transaction to the first member still waiting, or parks it.
    fn hand_on(self: &Arc<Self>, mut shared: Shared) {
        let mut seats = locked(&self.seats);
        while let Some(waiter) = seats.waiting.pop_front() {
            match waiter.handed.send(Seat::new(self, shared, false)) {
                Ok(()) => return,
                // It stopped waiting (its caller went away, or it gave up).
                Err(mut seat) => shared = seat.disarm(),
            }
        }
        seats.parked = Some(shared);
    }

    /// The opening of the next member still waiting, to send ahead of it: the holder of the seat
    /// then hands the seat to that member with `hand_to_opened`.
    fn next_opening(&self) -> Option<Opening> {
        let mut seats = locked(&self.seats);
        while seats.waiting.front().is_some_and(|waiter| waiter.handed.is_closed()) {
            seats.waiting.pop_front();
        }
        seats.waiting.front_mut().and_then(|waiter| waiter.opening.take())
    }

    /// Hands the transaction to the member whose opening was sent ahead (the first waiting: only
    /// the holder of the seat takes waiters off the queue). Gives it back if that member is gone.
    fn hand_to_opened(self: &Arc<Self>, shared: Shared) -> Option<Shared> {
        let mut seats = locked(&self.seats);
        let Some(waiter) = seats.waiting.pop_front() else {
            return Some(shared);
        };
        waiter
            .handed
            .send(Seat::new(self, shared, true))
            .err()
            .map(|mut seat| seat.disarm())
    }
}

/// A member's first statements, with its savepoint, as a pipeline to send on the group's
/// connection; they store their answers where the member will find them.
pub(crate) type Opening = Box<dyn for<'c> FnOnce(&'c AsyncPgConnection) -> BoxFuture<'c, ()> + Send>;

/// The group's transaction and the members waiting for it.
struct Seats {
    /// The transaction while no member holds it.
    parked: Option<Shared>,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    handed: oneshot::Sender<Seat>,
    /// Taken when the member ahead sends it.
    opening: Option<Opening>,
}

/// The group's transaction, held by one member. Dropped, it goes to the next member waiting, as a
/// mutex guard would; dropped before its member could use it when that member's opening was sent
/// ahead, the savepoint left open means the group cannot commit.
pub(crate) struct Seat {
    group: Arc<Group>,
    shared: Option<Shared>,
    /// The member's opening was sent ahead, in the pipeline of the member before.
    opened: bool,
}

impl Seat {
    fn new(group: &Arc<Group>, shared: Shared, opened: bool) -> Seat {
        Seat {
            group: Arc::clone(group),
            shared: Some(shared),
            opened,
        }
    }

    fn shared(&mut self) -> &mut Shared {
        self.shared.get_or_insert_with(|| Shared {
            connection: None,
            broken: Some("a group's seat was used after it was handed on".into()),
        })
    }

    /// The transaction, which this seat no longer hands on when dropped.
    fn disarm(&mut self) -> Shared {
        self.shared.take().unwrap_or(Shared {
            connection: None,
            broken: Some("a group's seat was handed on twice".into()),
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(mut shared) = self.shared.take() {
            if self.opened && shared.broken.is_none() {
                // A member's savepoint may be open, and nobody will end it.
                tracing::warn!("a group member whose opening was sent ahead went away; its group will not commit");
                shared.broken = Some("a member whose opening was sent ahead went away".into());
            }
            self.group.hand_on(shared);
        }
    }
}

/// A member's place in its group, from joining to finishing. Dropped unfinished (its wait for
/// the seat timed out, or its caller went away), it counts as a member without effect.
pub(crate) struct Ticket {
    store: PgStore,
    group: Arc<Group>,
    finished: bool,
}

impl Ticket {
    /// Waits for the group's connection. As a statement waiting for a row lock would, it gives up
    /// with `Timeout` when the rows have not moved for `timeout` (zero: no limit): when no member
    /// of the open group has finished for that long. Before the group's transaction opens, its
    /// first member is waiting for a connection from the pool, which the pool's own timeout
    /// bounds, and so does the wait of the members behind it: a transaction alone would have
    /// waited for the pool just as long.
    pub(crate) async fn take_seat(self, timeout: std::time::Duration, opening: Option<Opening>) -> StoreResult<Member> {
        let mut seat = match self.group.ask(opening) {
            Ok(seat) => return Ok(Member::seated(seat, self)),
            Err(receiver) => receiver,
        };
        let mut progress = self.group.progress.subscribe();
        loop {
            let opened = progress.borrow_and_update().opened;
            let stalled = async {
                if opened && !timeout.is_zero() {
                    tokio::time::sleep(timeout).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let moved = progress.changed();
            let (stalled, moved) = (std::pin::pin!(stalled), std::pin::pin!(moved));
            match future::select(&mut seat, future::select(moved, stalled)).await {
                Either::Left((Ok(seat), _)) => return Ok(Member::seated(seat, self)),
                Either::Left((Err(_), _)) => {
                    return Err(StoreError::Unexpected(
                        "a group's seat was dropped while a member waited for it".into(),
                    ));
                }
                // A member finished, or the transaction opened: wait on, from now.
                Either::Right((Either::Left(_), _)) => {}
                // Giving up: a seat handed to this member after all goes to the next one.
                Either::Right((Either::Right(((), _)), _)) => return Err(StoreError::Timeout),
            }
        }
    }

    /// Counts the member finished; the last one settles the group.
    fn finish(&mut self, applied: bool) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let groups = self.store.groups();
        let mut open = locked(&groups.open);
        let mut counts = locked(&self.group.counts);
        counts.finished += 1;
        if applied {
            counts.applied += 1;
        }
        let finished = counts.finished;
        self.group.progress.send_modify(|progress| progress.finished = finished);
        if counts.finished < counts.joined {
            return;
        }
        if open.get(&self.group.key).is_some_and(|group| Arc::ptr_eq(group, &self.group)) {
            open.remove(&self.group.key);
        }
        let (applied, joined) = (counts.applied, counts.joined);
        drop(counts);
        drop(open);
        settle(Arc::clone(&self.group), applied, joined, self.store.clone());
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// A member holding the group's connection: its statements run there, inside its savepoint.
pub(crate) struct Member {
    /// `None` once the member has handed the connection on.
    seat: Option<Seat>,
    ticket: Ticket,
    /// Whether this member began the group's transaction: the only one that waits for locks.
    opener: bool,
    /// Whether the member before sent this member's opening (see `Ticket::take_seat`).
    opened_ahead: bool,
}

impl Member {
    fn seated(mut seat: Seat, ticket: Ticket) -> Member {
        // From here on the member ends its savepoint itself, or its drop breaks the group.
        let opened_ahead = std::mem::take(&mut seat.opened);
        Member {
            seat: Some(seat),
            ticket,
            opener: false,
            opened_ahead,
        }
    }

    /// Whether the member before sent this member's opening, whose answers are then where the
    /// opening stored them.
    pub(crate) fn opened_ahead(&self) -> bool {
        self.opened_ahead
    }

    /// The opening of the next member waiting, to send in the pipeline of this member's release
    /// (`applied` then hands the seat to that member).
    pub(crate) fn next_opening(&self) -> Option<Opening> {
        self.ticket.group.next_opening()
    }

    /// The statements to send before the member's first one: `BEGIN` too for the group's first
    /// member, which takes the connection from the pool. Refuses a group that cannot commit.
    pub(crate) async fn opening(&mut self) -> StoreResult<&'static [&'static str]> {
        let store = self.ticket.store.clone();
        let seat = self.seat()?;
        if let Some(reason) = &seat.broken {
            // Nothing of the group will commit; this member runs again on its own.
            tracing::debug!(%reason, "a group member found its group failed");
            return Err(StoreError::Conflict);
        }
        if seat.connection.is_some() {
            return Ok(&[SAVEPOINT, NO_LOCK_WAIT]);
        }
        let mut connection = store.connection().await?;
        crate::tx::enter_transaction(&mut connection)?;
        seat.connection = Some(connection);
        self.ticket.group.progress.send_modify(|progress| progress.opened = true);
        self.opener = true;
        Ok(&["BEGIN", SAVEPOINT])
    }

    /// Whether this member began the group's transaction (see `NO_LOCK_WAIT`).
    pub(crate) fn is_opener(&self) -> bool {
        self.opener
    }

    fn seat(&mut self) -> StoreResult<&mut Shared> {
        self.seat
            .as_mut()
            .map(Seat::shared)
            .ok_or_else(|| StoreError::Unexpected("a group member used the connection after handing it on".into()))
    }

    /// The group's connection, for this member's statements.
    pub(crate) fn shared_connection(&self) -> StoreResult<&AsyncPgConnection> {
        match self
            .seat
            .as_ref()
            .and_then(|seat| seat.shared.as_ref())
            .and_then(|shared| shared.connection.as_deref())
        {
            Some(connection) => Ok(connection),
            None => Err(StoreError::Unavailable("the group's connection was lost".into())),
        }
    }

    /// Marks the group unable to commit: its transaction is in a state this process does not
    /// know (a statement of a member was cut short, or the connection was lost).
    pub(crate) fn break_group(&mut self, reason: &str) {
        if let Some(seat) = self.seat.as_mut().map(Seat::shared)
            && seat.broken.is_none()
        {
            tracing::warn!(reason, "a group commit's transaction cannot commit; its members will run again");
            seat.broken = Some(reason.to_owned());
        }
    }

    /// Leaves the group without having opened a savepoint: nothing of this member is in it.
    pub(crate) fn leave(mut self) {
        self.seat = None;
        self.ticket.finish(false);
    }

    /// Whether this member is its group's last: every other member has finished. If so, the
    /// group takes no new member, and this one commits it with its own writes (`commit_group`).
    pub(crate) fn close_if_last(&mut self) -> bool {
        let group = &self.ticket.group;
        let mut open = locked(&self.ticket.store.groups().open);
        let counts = locked(&group.counts);
        if counts.finished + 1 != counts.joined {
            return false;
        }
        if open.get(&group.key).is_some_and(|open| Arc::ptr_eq(open, group)) {
            open.remove(&group.key);
        }
        true
    }

    /// As the group's last member: its writes, `RELEASE SAVEPOINT`, the commit marker and
    /// `COMMIT` in one pipeline, in a task of its own so that the caller going away cannot cut
    /// the commit short (the members before it are told its outcome). A write of this member the
    /// server refuses rolls the whole group back: the others then run again alone.
    pub(crate) async fn commit_group(mut self, mut writes: Vec<Write>) -> StoreResult<()> {
        writes.push(Write::new(RELEASE));
        let opener = self.opener;
        let commit = async move {
            let store = self.ticket.store.clone();
            let seat = self.seat()?;
            let result = match (&seat.broken, seat.connection.as_mut()) {
                (None, Some(connection)) => commit_with_marker(&store, connection, writes).await,
                (Some(reason), _) => Err(StoreError::Unavailable(format!("the group's transaction failed: {reason}"))),
                (None, None) => Err(StoreError::Unavailable("the group's connection was lost".into())),
            };
            let outcome = Outcome::of(&result);
            // The transaction has ended (or its connection is marked broken): back to the pool.
            seat.connection = None;
            seat.broken = None;
            self.seat = None;
            self.ticket.finished = true;
            let joined = locked(&self.ticket.group.counts).joined;
            tracing::debug!(joined, outcome = ?outcome, "a group ended with its last member");
            self.ticket.group.outcome.send_replace(Some(outcome));
            result
        };
        match tokio::spawn(commit).await {
            Ok(result) => result.map_err(|error| member_error(opener, error)),
            Err(error) => Err(StoreError::OutcomeUnknown(format!("the group's commit task failed: {error}"))),
        }
    }

    /// The member succeeded and released its savepoint: hands the connection on and waits for the
    /// group's commit. `sent_ahead`: the next member's opening went in the pipeline of the release.
    pub(crate) async fn applied(mut self, sent_ahead: bool) -> StoreResult<()> {
        let mut outcome = self.ticket.group.outcome.subscribe();
        if sent_ahead {
            self.hand_to_opened().await;
        }
        self.seat = None;
        self.ticket.finish(true);
        let outcome = outcome.wait_for(Option::is_some).await.map(|outcome| outcome.clone());
        match outcome {
            Ok(Some(Outcome::Committed)) => Ok(()),
            Ok(Some(Outcome::NotCommitted(reason))) => {
                tracing::debug!(%reason, "a group commit did not commit; its member runs again");
                Err(StoreError::Conflict)
            }
            Ok(Some(Outcome::Unknown(reason))) => Err(StoreError::OutcomeUnknown(reason)),
            Ok(None) | Err(_) => Err(StoreError::OutcomeUnknown("the group's commit was abandoned".into())),
        }
    }

    /// Hands the seat to the member whose opening this one sent. If that member went away, its
    /// savepoint is rolled back first, by this member, which holds the seat again meanwhile (and
    /// breaks the group if it is dropped or the rollback fails).
    async fn hand_to_opened(&mut self) {
        let Some(mut seat) = self.seat.take() else {
            return;
        };
        let shared = seat.disarm();
        drop(seat);
        let Some(shared) = self.ticket.group.hand_to_opened(shared) else {
            self.ticket.store.groups().sent_ahead.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.seat = Some(Seat::new(&self.ticket.group, shared, false));
        tracing::debug!("a group member whose opening was sent ahead went away; its savepoint is rolled back");
        if let Err(error) = self.back_to_savepoint().await {
            self.break_group(&format!("rolling back the savepoint of a member that went away failed: {error}"));
        }
    }

    /// `ROLLBACK TO` the savepoint open now, and `RELEASE` it, in one pipeline.
    async fn back_to_savepoint(&self) -> StoreResult<()> {
        let connection = self.shared_connection()?;
        let (mut first, mut second) = (connection, connection);
        let back = crate::sql::Statement::control(ROLLBACK_TO).execute(&mut first);
        let release = crate::sql::Statement::control(RELEASE).execute(&mut second);
        let (back, release) = tokio::task::unconstrained(futures::future::join(back, release)).await;
        back.and(release).map(|_| ()).map_err(crate::error::translate)
    }

    /// The member failed or rolled back: back to its savepoint, then hands the connection on.
    /// Without effect either way: if going back fails, the group cannot commit.
    pub(crate) async fn undo(mut self) {
        if let Err(error) = self.back_to_savepoint().await {
            self.break_group(&format!("going back to a member's savepoint failed: {error}"));
        }
        self.seat = None;
        self.ticket.finish(false);
    }
}

impl Drop for Member {
    /// A member dropped while it holds the connection was cut short somewhere between its
    /// savepoint and its release: the group cannot know what it left, so it does not commit.
    fn drop(&mut self) {
        if self.seat.is_some() {
            self.break_group("a member was dropped before it finished");
            self.seat = None;
        }
    }
}

/// Ends the group's transaction once every member has finished, in a task of its own: commits it
/// if any member applied its work, and tells every waiting member how it ended.
fn settle(group: Arc<Group>, applied: usize, joined: usize, store: PgStore) {
    let end = async move {
        let mut seat = match group.ask(None) {
            Ok(seat) => seat,
            Err(receiver) => match receiver.await {
                Ok(seat) => seat,
                Err(_) => {
                    tracing::error!("a group's seat was lost; its members do not commit");
                    group
                        .outcome
                        .send_replace(Some(Outcome::NotCommitted("the group's seat was lost".into())));
                    return;
                }
            },
        };
        let shared = seat.shared();
        let outcome = match (shared.broken.take(), shared.connection.take()) {
            (Some(reason), connection) => {
                // Marked as inside a transaction, the connection is discarded by the pool, and
                // PostgreSQL rolls the transaction back when it closes.
                drop(connection);
                Outcome::NotCommitted(reason)
            }
            (None, None) => Outcome::NotCommitted("no member began the group's transaction".into()),
            (None, Some(mut connection)) if applied == 0 => {
                if let Err(error) = AnsiTransactionManager::rollback_transaction(&mut *connection).await {
                    tracing::warn!(%error, "rolling back an empty group failed; the connection is discarded");
                }
                Outcome::NotCommitted("no member applied its work".into())
            }
            (None, Some(mut connection)) => Outcome::of(&commit_with_marker(&store, &mut connection, Vec::new()).await),
        };
        tracing::debug!(joined, applied, outcome = ?outcome, "a group ended");
        group.outcome.send_replace(Some(outcome));
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(end);
        }
        Err(_) => tracing::error!("a group commit ended outside a runtime; its members do not commit"),
    }
}
