//! At most the host's slots of command attempts of one run at a time.
//!
//! While tasks are short the driver sends attempts ahead (its `Pipeline`,
//! `driver/run/engine/pacing.rs`), so that a slot whose task
//! ends starts the next one at once instead of after a round trip to the
//! driver. Those attempts wait here, in arrival order (tokio's semaphore
//! is fair, and `try_acquire` never jumps its queue). A kill takes a
//! waiting attempt out of the line; the end of its run closes the gate
//! and drops whatever still waits.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gates of one agent, one per run.
#[derive(Default)]
pub struct Gates {
    runs: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Attempts waiting for a slot.
    waiting: Mutex<HashSet<u32>>,
}

/// A slot's permit, held while the attempt runs.
pub type Permit = OwnedSemaphorePermit;

/// What waiting for a slot yields: the permit, or nothing when the
/// attempt was killed or its run ended first.
pub type Wait = Pin<Box<dyn Future<Output = Option<Permit>> + Send>>;

/// An attempt's way in.
pub enum Entry {
    /// A slot was free.
    Now(Permit),
    /// Every slot is taken: the attempt waits its turn.
    Later(Wait),
}

impl Gates {
    /// Lets `attempt` of `run` in now when fewer than `slots` attempts of
    /// the run hold a permit, else puts it in line.
    pub fn enter(self: &Arc<Self>, run: &str, slots: u32, attempt: u32) -> Entry {
        let gate = {
            let mut runs = self.runs.lock().unwrap();
            match runs.get(run) {
                Some(g) => g.clone(),
                None => {
                    let g = Arc::new(Semaphore::new(slots.max(1) as usize));
                    runs.insert(run.to_string(), g.clone());
                    g
                }
            }
        };
        if let Ok(permit) = gate.clone().try_acquire_owned() {
            return Entry::Now(permit);
        }
        self.waiting.lock().unwrap().insert(attempt);
        let me = self.clone();
        Entry::Later(Box::pin(async move {
            let permit = gate.acquire_owned().await.ok();
            let still_wanted = me.waiting.lock().unwrap().remove(&attempt);
            // A killed attempt's permit goes straight to the next in line.
            permit.filter(|_| still_wanted)
        }))
    }

    /// Takes a waiting attempt out of the line; false when it was not
    /// waiting (it runs, ended, or never came).
    pub fn cancel(&self, attempt: u32) -> bool {
        self.waiting.lock().unwrap().remove(&attempt)
    }

    /// The run is over: whatever still waits for its gate is dropped.
    pub fn end_run(&self, run: &str) {
        if let Some(gate) = self.runs.lock().unwrap().remove(run) {
            gate.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(e: Entry) -> Permit {
        match e {
            Entry::Now(p) => p,
            Entry::Later(_) => panic!("expected a free slot"),
        }
    }

    fn later(e: Entry) -> Wait {
        match e {
            Entry::Now(_) => panic!("expected to wait: every slot is taken"),
            Entry::Later(w) => w,
        }
    }

    #[tokio::test]
    async fn attempts_beyond_the_slots_wait_and_go_in_arrival_order() {
        let gates = Arc::new(Gates::default());
        let a = now(gates.enter("r", 2, 1));
        let _b = now(gates.enter("r", 2, 2));
        let third = tokio::spawn(later(gates.enter("r", 2, 3)));
        let fourth = tokio::spawn(later(gates.enter("r", 2, 4)));
        tokio::task::yield_now().await;
        assert!(!third.is_finished() && !fourth.is_finished(), "both slots are held");
        drop(a);
        let c = third.await.unwrap().expect("the first in line gets the freed slot");
        tokio::task::yield_now().await;
        assert!(!fourth.is_finished(), "one slot freed, one attempt let in");
        drop(c);
        assert!(fourth.await.unwrap().is_some());
        // Another run has gates of its own.
        let _other = now(gates.enter("s", 1, 5));
    }

    #[tokio::test]
    async fn a_killed_attempt_leaves_the_line_and_its_turn_goes_to_the_next() {
        let gates = Arc::new(Gates::default());
        let held = now(gates.enter("r", 1, 1));
        let killed = tokio::spawn(later(gates.enter("r", 1, 2)));
        let next = tokio::spawn(later(gates.enter("r", 1, 3)));
        tokio::task::yield_now().await;
        assert!(gates.cancel(2), "attempt 2 was waiting");
        assert!(!gates.cancel(2), "and is no longer");
        assert!(!gates.cancel(1), "attempt 1 runs: not the gate's to cancel");
        drop(held);
        assert!(killed.await.unwrap().is_none(), "a cancelled attempt never runs");
        assert!(next.await.unwrap().is_some(), "the next one runs in its place");
    }

    #[tokio::test]
    async fn the_end_of_a_run_drops_what_waits() {
        let gates = Arc::new(Gates::default());
        let _held = now(gates.enter("r", 1, 1));
        let waiting = tokio::spawn(later(gates.enter("r", 1, 2)));
        tokio::task::yield_now().await;
        gates.end_run("r");
        assert!(waiting.await.unwrap().is_none());
        assert!(!gates.cancel(2), "nothing of the run waits any more");
    }
}
