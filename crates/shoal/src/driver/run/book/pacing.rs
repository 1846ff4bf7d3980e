//! How many attempts each slot of a host holds at once (the scheduler's
//! `Pipeline` event).
//!
//! A task of a resident executor can take microseconds, while a round
//! trip to its host takes a millisecond or more: with one attempt per
//! slot, the executor would spend its time waiting for the driver. So the
//! engine lets each slot hold as many attempts as make about
//! [`QUEUED_WORK`] of work, judged by a moving average of how long
//! attempts ran on their host. That bound keeps the queue short in time:
//! a slow task never has more than that much work waiting behind it, and
//! tasks of 50 ms or more get no queue at all.
//!
//! Commands (a process per task) get at most [`COMMAND_PER_SLOT`]: one
//! attempt running and the others waiting on the agent (`agent/gate.rs`)
//! to start the moment the slot frees, which hides the round trip to the
//! driver even while the host's cores are busy starting processes (10,000
//! no-op commands on 2 slots: 9.2-9.6 s with none waiting, 7.8-8.2 s with
//! one, 7.5-7.9 s with three); a process costs about a millisecond to
//! start, so a deeper queue would gain nothing.

use std::time::Duration;

/// Work queued per slot, at most.
pub const QUEUED_WORK: Duration = Duration::from_millis(50);

/// Attempts per slot of resident tasks, at most (a bound on memory and on
/// what a lost host takes with it).
pub const MAX_PER_SLOT: u32 = 256;

/// Attempts per slot of command tasks, at most.
pub const COMMAND_PER_SLOT: u32 = 4;

/// The moving average and the depth it led to.
#[derive(Debug)]
pub struct Pacing {
    average_us: Option<f64>,
    per_slot: u32,
    max: u32,
}

impl Pacing {
    /// Pacing of a job whose tasks are resident (up to [`MAX_PER_SLOT`])
    /// or commands (up to [`COMMAND_PER_SLOT`]).
    pub fn new(resident: bool) -> Self {
        Pacing { average_us: None, per_slot: 1, max: if resident { MAX_PER_SLOT } else { COMMAND_PER_SLOT } }
    }

    /// Takes the run time of one successful attempt; returns the new
    /// attempts per slot when it changed by half or double (not on every
    /// report, so that the scheduler is told rarely).
    pub fn observe(&mut self, ran: Duration) -> Option<u32> {
        let us = ran.as_micros() as f64;
        let avg = self.average_us.map_or(us, |a| 0.8 * a + 0.2 * us);
        self.average_us = Some(avg);
        let want = (QUEUED_WORK.as_micros() as f64 / avg.max(1.0)).clamp(1.0, self.max as f64) as u32;
        if want >= 2 * self.per_slot || 2 * want <= self.per_slot {
            self.per_slot = want;
            return Some(want);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn tiny_tasks_fill_a_deep_queue_and_slow_ones_none() {
        let mut p = Pacing::new(true);
        assert_eq!(p.observe(us(20)), Some(MAX_PER_SLOT));
        assert_eq!(p.observe(us(30)), None, "small changes are not news");
        let mut slow = Pacing::new(true);
        assert_eq!(slow.observe(Duration::from_millis(200)), None, "one per slot already");
    }

    #[test]
    fn the_queue_shrinks_when_tasks_get_longer() {
        let mut p = Pacing::new(true);
        p.observe(us(100));
        let depths: Vec<Option<u32>> = (0..12).map(|_| p.observe(Duration::from_millis(40))).collect();
        let last = depths.iter().rev().flatten().next().copied();
        assert_eq!(last, Some(1), "{depths:?}");
    }

    #[test]
    fn commands_get_a_few_attempts_per_slot_while_short() {
        let mut p = Pacing::new(false);
        assert_eq!(p.observe(Duration::from_millis(1)), Some(COMMAND_PER_SLOT));
        assert_eq!(p.observe(us(20)), None, "never deeper for commands");
        let depths: Vec<Option<u32>> = (0..12).map(|_| p.observe(Duration::from_millis(100))).collect();
        assert_eq!(depths.iter().flatten().last(), Some(&1), "long commands queue nothing: {depths:?}");
    }

    #[test]
    fn queued_work_stays_near_the_bound() {
        let mut p = Pacing::new(true);
        for _ in 0..20 {
            p.observe(Duration::from_millis(5));
        }
        assert_eq!(p.per_slot, 10);
    }
}
