//! A single-threaded executor whose polling order is chosen by the seed.
//!
//! Use-case futures in flight are kept in a list; each tick polls one of them, chosen by the
//! seed. How a tick polls depends on the store (`Driver`):
//!
//! - In process (the in-memory store), with a waker that does nothing. Everything the futures
//!   wait for is in this process (the store's lock, the simulated gateway's delays), so polling
//!   again is always enough to make progress, and the interleaving is a pure function of the seed.
//! - Over real IO (PostgreSQL), inside a current-thread tokio runtime, whose reactor only runs
//!   while a tick waits: the chosen task is polled, and while it waits for its own IO (the
//!   database's answer) the tick waits for that too, up to `TURN_POLLS_MAX` polls. A task that
//!   yields (a provider's delay) or waits for something another task holds (a row lock, a pooled
//!   connection) ends its turn, after at most `TURN_WAIT`. Which task runs is still the seed's
//!   choice; how far it gets in its turn depends on how fast the database answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::rng::Rng;

pub type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// How long a turn waits for the polled task to be woken: far longer than a local database takes
/// to answer, short enough that a task waiting for another one costs little.
const TURN_WAIT: Duration = Duration::from_millis(20);

/// Polls in one turn over real IO: about one short transaction's round trips, so that tasks still
/// interleave within each other's work.
const TURN_POLLS_MAX: u32 = 6;

/// How long `Driver::block_on` waits over real IO before it calls a future stuck.
const BLOCK_ON_WAIT: Duration = Duration::from_secs(120);

/// How futures are polled: see the module docs.
#[derive(Debug)]
pub enum Driver {
    InProcess,
    Runtime(tokio::runtime::Runtime),
}

impl Driver {
    /// A current-thread runtime with IO and timers, for a store over the network.
    ///
    /// # Panics
    /// When the runtime cannot be built.
    pub fn runtime() -> Driver {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("a tokio runtime for the simulation: {error}"));
        Driver::Runtime(runtime)
    }

    /// The runtime's handle, to enter while futures that may own its resources are dropped
    /// (a pool's connection, dropped, may spawn its replacement).
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        match self {
            Driver::InProcess => None,
            Driver::Runtime(runtime) => Some(runtime.handle().clone()),
        }
    }

    /// Runs `future` to its end: `None` if it never gets there, which means it waits for
    /// something that a task in flight holds across an await point (in process, after
    /// `polls_max` polls), or for longer than `BLOCK_ON_WAIT` (over real IO).
    pub fn block_on<F: Future>(&self, future: F, polls_max: u32) -> Option<F::Output> {
        match self {
            Driver::InProcess => block_on(future, polls_max),
            Driver::Runtime(runtime) => runtime.block_on(async { tokio::time::timeout(BLOCK_ON_WAIT, future).await.ok() }),
        }
    }
}

/// Futures in flight, each with a label for the trace.
pub struct Scheduler<T> {
    tasks: Vec<(String, Task<T>)>,
}

impl<T> std::fmt::Debug for Scheduler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.tasks.iter().map(|(label, _)| label.as_str()).collect();
        f.debug_struct("Scheduler").field("tasks", &labels).finish()
    }
}

impl<T> Default for Scheduler<T> {
    fn default() -> Self {
        Scheduler { tasks: Vec::new() }
    }
}

impl<T> Scheduler<T> {
    pub fn spawn(&mut self, label: String, task: Task<T>) {
        self.tasks.push((label, task));
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Gives one task chosen by `rng` its turn; returns its label and output if it finished.
    pub fn tick(&mut self, rng: &mut Rng, driver: &Driver) -> Option<(String, T)> {
        if self.tasks.is_empty() {
            return None;
        }
        let index = rng.index(self.tasks.len());
        let (_, task) = &mut self.tasks[index];
        let polled = match driver {
            Driver::InProcess => task.as_mut().poll(&mut Context::from_waker(Waker::noop())),
            Driver::Runtime(runtime) => runtime.block_on(turn(task.as_mut())),
        };
        match polled {
            Poll::Ready(output) => {
                let (label, _) = self.tasks.swap_remove(index);
                Some((label, output))
            }
            Poll::Pending => None,
        }
    }

    /// Drops every task in flight, as a crashed process would: their transactions roll back,
    /// their gateway calls are abandoned. Returns their labels.
    pub fn drop_all(&mut self) -> Vec<String> {
        self.tasks.drain(..).map(|(label, _)| label).collect()
    }
}

/// Whether a task was woken, and a way to wait for it.
#[derive(Debug, Default)]
struct Woken {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// One task's turn over real IO (see the module docs).
async fn turn<T>(mut task: Pin<&mut (dyn Future<Output = T> + 'static)>) -> Poll<T> {
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(Arc::clone(&woken));
    for _ in 0..TURN_POLLS_MAX {
        woken.flag.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = task.as_mut().poll(&mut Context::from_waker(&waker)) {
            return Poll::Ready(output);
        }
        // Woken while being polled: the task yielded on purpose, and its turn ends.
        if woken.flag.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        if tokio::time::timeout(TURN_WAIT, woken.notify.notified()).await.is_err() {
            return Poll::Pending;
        }
    }
    Poll::Pending
}

/// Polls `future` until it finishes, at most `polls_max` times: `None` if it never does, which
/// here means it waits for something that a task in flight holds across an await point.
pub fn block_on<F: Future>(future: F, polls_max: u32) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    for _ in 0..polls_max {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
    }
    None
}

/// A future that is pending `polls` times before it is ready: a call that takes a while, during
/// which other tasks run. It wakes itself each time, as a yield does, so that an executor with
/// real wakers polls it again.
#[derive(Debug)]
pub struct Delay(pub u32);

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
