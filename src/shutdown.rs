//! Owned background work: the stop signal long-running tasks watch, and the set of tasks the app starts
//! and awaits on shutdown.
//!
//! Every task the service runs beside its listeners (the refresher, the snapshot saver, the completion of a
//! restored snapshot, secret rotation, the operations listener) is started through [`Background::spawn`],
//! which hands it a [`Stop`]. On shutdown [`Background::stop`] asks each task to stop, in the order they
//! were started, and waits for it, bounded by a grace period: nothing is aborted mid-step and nothing is left
//! running unowned. Tasks that produce snapshots are started before the saver, so the saver's last save
//! comes after the last publish.
//!
//! Knows nothing of what the tasks do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A task's view of the stop signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stop {
    rx: watch::Receiver<bool>,
    /// For [`Stop::never`]: the sender, kept so the signal never reads as dropped.
    _never: Option<Arc<watch::Sender<bool>>>,
}

/// The sending side of one [`Stop`]; stops the tasks holding it when fired or dropped.
#[derive(Debug)]
pub struct StopHandle(watch::Sender<bool>);

/// Background tasks owned by the app, stopped and awaited together. Dropping it asks every task to stop
/// without waiting for any.
#[derive(Debug, Default)]
pub struct Background {
    tasks: Vec<Task>,
}

#[derive(Debug)]
struct Task {
    name: &'static str,
    stop: StopHandle,
    handle: JoinHandle<()>,
}

/// A fresh stop signal and its handle.
pub fn stop_signal() -> (StopHandle, Stop) {
    let (tx, rx) = watch::channel(false);
    (StopHandle(tx), Stop { rx, _never: None })
}

// === impl Stop ===

impl Stop {
    /// A signal that never fires, for a task run on its own (tests, one-shot tools).
    pub fn never() -> Stop {
        let (tx, rx) = watch::channel(false);
        Stop {
            rx,
            _never: Some(Arc::new(tx)),
        }
    }

    /// Resolves once a stop is asked for (or the handle is dropped). Cancel-safe: use it in `select!`.
    pub async fn requested(&mut self) {
        // An error means the handle was dropped without firing: its owner is gone, so stop too.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Whether a stop has been asked for.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }
}

// === impl StopHandle ===

impl StopHandle {
    /// Ask the tasks holding the matching [`Stop`] to stop.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

// === impl Background ===

impl Background {
    pub fn new() -> Background {
        Background::default()
    }

    /// Start `task` with a [`Stop`] of its own; it is stopped and awaited by [`Background::stop`].
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, signal) = stop_signal();
        let handle = tokio::spawn(task(signal));
        self.tasks.push(Task { name, stop, handle });
    }

    /// How many tasks are owned.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stop every task in the order it was started, waiting up to `grace` for each. A task that overruns
    /// is reported and left to end with the runtime; one that panicked is reported.
    pub async fn stop(self, grace: Duration) {
        for Task { name, stop, handle } in self.tasks {
            stop.fire();
            match tokio::time::timeout(grace, handle).await {
                Ok(Ok(())) => tracing::debug!(task = name, "background task stopped"),
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "background task {name} ended abnormally")
                }
                Err(_) => tracing::warn!(
                    task = name,
                    grace_s = grace.as_secs(),
                    "background task {name} did not stop within {} s",
                    grace.as_secs()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn tasks_stop_in_the_order_they_started_and_are_awaited() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut bg = Background::new();
        for name in ["refresher", "saver"] {
            let order = order.clone();
            bg.spawn(name, move |mut stop| async move {
                stop.requested().await;
                // Work after the signal is finished before `stop` returns.
                tokio::task::yield_now().await;
                order.lock().await.push(name);
            });
        }
        assert_eq!(bg.len(), 2);
        bg.stop(Duration::from_secs(5)).await;
        assert_eq!(*order.lock().await, vec!["refresher", "saver"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_the_signal_is_waited_for_only_the_grace() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut bg = Background::new();
        bg.spawn("stubborn", |_stop| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let d = done.clone();
        bg.spawn("polite", move |mut stop| async move {
            stop.requested().await;
            d.fetch_add(1, Ordering::SeqCst);
        });
        let started = tokio::time::Instant::now();
        bg.stop(Duration::from_secs(2)).await;
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert!(started.elapsed() < Duration::from_secs(3600));
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "the later task is still stopped"
        );
    }

    #[tokio::test]
    async fn a_dropped_handle_stops_and_never_does_not() {
        let (handle, mut stop) = stop_signal();
        assert!(!stop.is_requested());
        drop(handle);
        assert!(stop.is_requested());
        stop.requested().await;
        let never = Stop::never();
        assert!(!never.is_requested());
        let mut never = never;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), never.requested())
                .await
                .is_err()
        );
    }
}
