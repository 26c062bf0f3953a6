//! A single-threaded executor whose polling order is chosen by the seed.
//!
//! Use-case futures in flight are kept in a list; each tick polls one of them, chosen by the
//! seed, with a waker that does nothing. Everything the futures wait for is in this process (the
//! store's lock, the simulated gateway's delays), so polling again is always enough to make
//! progress, and the interleaving is a pure function of the seed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::rng::Rng;

pub type Task<T> = Pin<Box<dyn Future<Output = T>>>;

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

    /// Polls one task chosen by `rng`; returns its label and output if it finished.
    pub fn tick(&mut self, rng: &mut Rng) -> Option<(String, T)> {
        if self.tasks.is_empty() {
            return None;
        }
        let index = rng.index(self.tasks.len());
        let mut context = Context::from_waker(Waker::noop());
        let (_, task) = &mut self.tasks[index];
        match task.as_mut().poll(&mut context) {
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
/// which other tasks run.
#[derive(Debug)]
pub struct Delay(pub u32);

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        Poll::Pending
    }
}
