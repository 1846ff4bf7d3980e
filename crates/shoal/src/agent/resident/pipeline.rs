//! The rules of the resident executors, as a state machine with no
//! processes, pipes, clock or runtime: events in, decisions out.
//!
//! It owns each kind's queue of attempts, the executors of each kind (how
//! many may run, which are idle) and what each executor's stdin pipe
//! holds, and so decides who starts, who gets which attempts, which
//! attempt a death or a kill is charged to and which go back to the queue
//! uncharged. It does not own the processes, the pipes' bytes, logs or
//! reports: `super` (`resident.rs`) feeds it what it saw (a task queued,
//! tasks written, an answer read, an executor exited) and carries the
//! decisions out, one lock around each event.
//!
//! An attempt is *lent* to an executor's loop while it is being prepared
//! and written (`Decision::Write` .. `Event::Written`); in the pipe, the
//! first one not yet answered is the one running.

use std::collections::{BTreeMap, HashSet, VecDeque};

/// Attempts written ahead into one executor's stdin.
pub const PIPE_DEPTH: usize = 32;

/// Which tasks an executor can run: a hash of run, command and the
/// variables they share.
pub type Kind = [u8; 32];

/// An executor, numbered in the order they were started.
pub type ExecId = u64;

/// An executor's process group.
pub type Group = i32;

/// What the machine needs to know of an attempt.
pub trait Job {
    fn attempt(&self) -> u32;
    fn run(&self) -> &str;
    /// The host's slots: at most this many executors of its kind.
    fn slots(&self) -> u32;
    fn timeout_ms(&self) -> Option<u64>;
    /// The bytes of its frame once made (0 before).
    fn frame(&self) -> usize;
}

/// What the executors' loops and the agent saw.
#[derive(Debug)]
pub enum Event<J> {
    /// An attempt arrived.
    Queued { kind: Kind, job: J },
    /// The process of `exec` runs, in `group`, with a stdin pipe of `pipe_bytes`.
    Spawned { exec: ExecId, group: Group, pipe_bytes: usize },
    /// The process of `exec` could not be started.
    SpawnFailed { exec: ExecId },
    /// The loop of `exec` wants its next step.
    Ready { exec: ExecId },
    /// Of the attempts lent by `Write`: `sent` are made and about to be
    /// written, `back` did not fit. Those in neither failed to be made
    /// (the loop reported them).
    Written { exec: ExecId, sent: Vec<J>, back: Vec<J> },
    /// `exec` answered `attempt`.
    Answered { exec: ExecId, attempt: u32 },
    /// `exec` is dead (`timed_out`: killed for its running attempt's
    /// timeout; `clean`: it exited with 0). `unsent`: attempts lent to
    /// it that were never written (it was found dead while idle).
    Exited { exec: ExecId, timed_out: bool, clean: bool, unsent: Vec<J> },
    /// The loop of `exec` is over and its process gone.
    Gone { exec: ExecId },
    /// The driver kills `attempt`.
    Kill { attempt: u32 },
    /// The driver ended `run`.
    RunEnded { run: String },
    /// The agent exits.
    Shutdown,
}

/// What to do. `W` is a kind's wake-up handle (the machine only keeps it).
#[derive(Debug, PartialEq)]
pub enum Decision<J, W> {
    /// Start executor `exec` for `kind`, from its first queued attempt.
    Start {
        kind: Kind,
        exec: ExecId,
    },
    /// Kill a process group.
    Stop {
        group: Group,
    },
    /// Wake one executor waiting for work, or all of them.
    Wake {
        waker: W,
    },
    WakeAll {
        waker: W,
    },
    /// Report `attempt` killed.
    Killed {
        attempt: u32,
    },
    /// No executor of their kind could start: these fail for the host's sake.
    NoExecutor {
        jobs: Vec<J>,
    },
    /// Make these attempts and write them to `exec` as far as `room`
    /// admits; first check that it is alive when `check_alive`.
    Write {
        exec: ExecId,
        jobs: Vec<J>,
        room: Room,
        check_alive: bool,
    },
    /// Wait for `exec`'s answer to the attempt it runs (within its timeout).
    Read {
        exec: ExecId,
        timeout_ms: Option<u64>,
    },
    /// Nothing to do: `exec` waits for `waker`.
    Idle {
        exec: ExecId,
        waker: W,
    },
    /// The loop of `exec` ends.
    End {
        exec: ExecId,
    },
    /// Report `job` answered.
    Done {
        exec: ExecId,
        job: J,
    },
    /// `job` fails with the end of the executor that ran it.
    Fail {
        exec: ExecId,
        job: J,
        cause: Cause,
    },
    /// `exec` answered another attempt than the one it runs: its answers
    /// cannot be trusted, it is treated as dead.
    Distrust {
        exec: ExecId,
    },
}

/// How an executor's end fails the attempt it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Killed, crashed, or its output broke off.
    Crashed,
    /// Killed because the attempt ran past its timeout.
    TimedOut,
    /// It exited with 0 in the middle of a task (`std::process::exit`).
    ExitedZero,
}

/// What one write may add to an executor's stdin pipe: the agent never
/// has more unanswered bytes in it than it holds, so that a write never
/// waits for the executor while the executor waits for the agent to read
/// its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub jobs: usize,
    pub unanswered: usize,
    pub capacity: usize,
}

impl Room {
    /// Nothing was unanswered before this write.
    pub fn is_empty(&self) -> bool {
        self.jobs == 0
    }

    /// Counts a frame in if it fits. One larger than the pipe goes alone,
    /// into an executor that has answered everything and so only reads.
    pub fn admit(&mut self, frame: usize) -> bool {
        if self.jobs > 0 && self.unanswered + frame > self.capacity {
            return false;
        }
        self.jobs += 1;
        self.unanswered += frame;
        true
    }
}

/// The executors of an agent, their queues and pipes.
pub struct Pipeline<J, W> {
    kinds: BTreeMap<Kind, KindState<J, W>>,
    execs: BTreeMap<ExecId, Exec<J>>,
    ended: HashSet<String>,
    next_exec: ExecId,
}

/// The queue and the executors of one kind.
struct KindState<J, W> {
    run: String,
    slots: u32,
    queue: VecDeque<J>,
    /// Executors alive (or starting), and how many of them wait for work.
    live: u32,
    idle: u32,
    waker: W,
}

/// One executor, from its start to its loop's end.
struct Exec<J> {
    kind: Kind,
    group: Option<Group>,
    pipe_bytes: usize,
    /// Written and unanswered, in order: the front one runs.
    pipe: VecDeque<J>,
    /// The first attempt lent while the pipe was empty: it runs as soon as
    /// it is written, so a kill reaches it already.
    lent_first: Option<u32>,
    answered_any: bool,
    idle: bool,
    /// A kill was meant for this attempt: only it is charged when the
    /// executor dies of it.
    kill_meant: Option<u32>,
}

impl<J: Job> Exec<J> {
    fn running(&self) -> Option<u32> {
        self.pipe.front().map(|j| j.attempt()).or(self.lent_first)
    }
}

impl<J, W> Default for Pipeline<J, W> {
    fn default() -> Self {
        Pipeline { kinds: BTreeMap::new(), execs: BTreeMap::new(), ended: HashSet::new(), next_exec: 0 }
    }
}

impl<J: Job, W: Clone + Default> Pipeline<J, W> {
    pub fn on_event(&mut self, event: Event<J>) -> Vec<Decision<J, W>> {
        match event {
            Event::Queued { kind, job } => self.queued(kind, job),
            Event::Spawned { exec, group, pipe_bytes } => self.spawned(exec, group, pipe_bytes),
            Event::SpawnFailed { exec } => self.spawn_failed(exec),
            Event::Ready { exec } => self.ready(exec),
            Event::Written { exec, sent, back } => self.written(exec, sent, back),
            Event::Answered { exec, attempt } => self.answered(exec, attempt),
            Event::Exited { exec, timed_out, clean, unsent } => self.exited(exec, timed_out, clean, unsent),
            Event::Gone { exec } => self.gone(exec),
            Event::Kill { attempt } => self.kill(attempt),
            Event::RunEnded { run } => self.run_ended(run),
            Event::Shutdown => self.shutdown(),
        }
    }

    /// The first attempt queued for `kind`: what its next executor is
    /// started with.
    pub fn first_queued(&self, kind: &Kind) -> Option<&J> {
        self.kinds.get(kind).and_then(|k| k.queue.front())
    }

    /// Whether `exec` still has a kind to wait for work of.
    pub fn may_wait(&self, exec: ExecId) -> bool {
        self.execs.get(&exec).is_some_and(|e| self.kinds.contains_key(&e.kind))
    }

    /// A new attempt starts an executor while the kind has fewer than the
    /// host's slots and none idle, else wakes an idle one.
    fn queued(&mut self, kind: Kind, job: J) -> Vec<Decision<J, W>> {
        if self.ended.contains(job.run()) {
            return vec![Decision::Killed { attempt: job.attempt() }];
        }
        let k = self.kinds.entry(kind).or_insert_with(|| KindState {
            run: job.run().to_string(),
            slots: job.slots().max(1),
            queue: VecDeque::new(),
            live: 0,
            idle: 0,
            waker: W::default(),
        });
        k.queue.push_back(job);
        if k.idle > 0 {
            return vec![Decision::Wake { waker: k.waker.clone() }];
        }
        if k.live >= k.slots {
            return vec![];
        }
        k.live += 1;
        vec![self.start(kind)]
    }

    /// Counts in a new executor (its slot is already counted).
    fn start(&mut self, kind: Kind) -> Decision<J, W> {
        let exec = self.next_exec;
        self.next_exec += 1;
        let e = Exec {
            kind,
            group: None,
            pipe_bytes: 0,
            pipe: VecDeque::new(),
            lent_first: None,
            answered_any: false,
            idle: false,
            kill_meant: None,
        };
        self.execs.insert(exec, e);
        Decision::Start { kind, exec }
    }

    /// An executor whose run ended while it started is stopped at once.
    fn spawned(&mut self, exec: ExecId, group: Group, pipe_bytes: usize) -> Vec<Decision<J, W>> {
        match self.execs.get_mut(&exec) {
            Some(e) if self.kinds.contains_key(&e.kind) => {
                e.group = Some(group);
                e.pipe_bytes = pipe_bytes;
                vec![]
            }
            _ => vec![Decision::Stop { group }, Decision::End { exec }],
        }
    }

    /// With no executor of the kind left to run them, its queued attempts
    /// fail (the others alive run them otherwise).
    fn spawn_failed(&mut self, exec: ExecId) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.remove(&exec) else { return vec![] };
        let Some(k) = self.kinds.get_mut(&e.kind) else { return vec![] };
        k.live = k.live.saturating_sub(1);
        if k.live > 0 || k.queue.is_empty() {
            return vec![];
        }
        vec![Decision::NoExecutor { jobs: k.queue.drain(..).collect() }]
    }

    /// Feeds an executor its fair share of the queue; with nothing in its
    /// pipe and nothing queued it idles, or ends once its run has.
    fn ready(&mut self, exec: ExecId) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.get_mut(&exec) else { return vec![Decision::End { exec }] };
        let mut k = self.kinds.get_mut(&e.kind);
        if e.idle {
            e.idle = false;
            if let Some(k) = k.as_deref_mut() {
                k.idle = k.idle.saturating_sub(1);
            }
        }
        let fresh: Vec<J> = match k.as_deref_mut() {
            Some(k) => {
                let n = fair_share(k.queue.len(), k.live, PIPE_DEPTH.saturating_sub(e.pipe.len()));
                k.queue.drain(..n).collect()
            }
            None => vec![],
        };
        if let Some(first) = fresh.first() {
            let room = Room { jobs: e.pipe.len(), unanswered: e.pipe.iter().map(Job::frame).sum(), capacity: e.pipe_bytes };
            // One that died while idle (an OOM kill, a thread of the
            // program) is no fault of the attempts about to be written.
            // One that never answered is not asked: its first attempt is
            // charged, or a program that cannot start would be retried forever.
            let check_alive = e.pipe.is_empty() && e.answered_any;
            if e.pipe.is_empty() {
                e.lent_first = Some(first.attempt());
            }
            return vec![Decision::Write { exec, jobs: fresh, room, check_alive }];
        }
        if let Some(front) = e.pipe.front() {
            return vec![Decision::Read { exec, timeout_ms: front.timeout_ms() }];
        }
        match k {
            Some(k) => {
                k.idle += 1;
                e.idle = true;
                vec![Decision::Idle { exec, waker: k.waker.clone() }]
            }
            None => vec![Decision::End { exec }],
        }
    }

    /// The made attempts join the pipe; those that did not fit go back to
    /// the front of the queue.
    fn written(&mut self, exec: ExecId, sent: Vec<J>, back: Vec<J>) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.get_mut(&exec) else { return vec![] };
        let kind = e.kind;
        e.lent_first = None;
        e.pipe.extend(sent);
        let read = e.pipe.front().map(|front| Decision::Read { exec, timeout_ms: front.timeout_ms() });
        let mut out = self.requeue(&kind, back);
        out.extend(read);
        out
    }

    /// Answers come in the order of the pipe; any other cannot be trusted.
    fn answered(&mut self, exec: ExecId, attempt: u32) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.get_mut(&exec) else { return vec![Decision::Distrust { exec }] };
        if e.pipe.front().map(Job::attempt) != Some(attempt) {
            return vec![Decision::Distrust { exec }];
        }
        let Some(job) = e.pipe.pop_front() else { return vec![Decision::Distrust { exec }] };
        e.answered_any = true;
        vec![Decision::Done { exec, job }]
    }

    /// A dead executor fails the attempt it was running; the ones behind
    /// it, and any not yet written, go back to the front of the queue
    /// uncharged. Killed for an attempt it had answered just before, it
    /// charges nothing: the one it ran since runs again.
    fn exited(&mut self, exec: ExecId, timed_out: bool, clean: bool, unsent: Vec<J>) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.get_mut(&exec) else { return vec![] };
        let kind = e.kind;
        let meant = e.kill_meant.take();
        let mut pipe = std::mem::take(&mut e.pipe);
        e.lent_first = None;
        let mut out = self.requeue(&kind, unsent);
        let Some(front) = pipe.pop_front() else { return out };
        if meant.is_some_and(|a| a != front.attempt()) && !timed_out {
            pipe.push_front(front);
            out.extend(self.requeue(&kind, pipe));
            return out;
        }
        let cause = if clean {
            Cause::ExitedZero
        } else if timed_out {
            Cause::TimedOut
        } else {
            Cause::Crashed
        };
        out.push(Decision::Fail { exec, job: front, cause });
        out.extend(self.requeue(&kind, pipe));
        out
    }

    /// An executor's slot frees up, and a new one starts when attempts
    /// still wait.
    fn gone(&mut self, exec: ExecId) -> Vec<Decision<J, W>> {
        let Some(e) = self.execs.remove(&exec) else { return vec![] };
        let Some(k) = self.kinds.get_mut(&e.kind) else { return vec![] };
        if e.idle {
            k.idle = k.idle.saturating_sub(1);
        }
        k.live = k.live.saturating_sub(1);
        if k.queue.is_empty() || k.live >= k.slots {
            return vec![];
        }
        k.live += 1;
        vec![self.start(e.kind)]
    }

    /// Kills the executor running `attempt`, or takes it out of its queue.
    /// One written behind the running one, or answered, is left alone: it
    /// runs (or ran) and the driver discards it.
    fn kill(&mut self, attempt: u32) -> Vec<Decision<J, W>> {
        for e in self.execs.values_mut() {
            if let (Some(group), Some(running)) = (e.group, e.running()) {
                if running == attempt {
                    e.kill_meant = Some(attempt);
                    return vec![Decision::Stop { group }];
                }
            }
        }
        for k in self.kinds.values_mut() {
            if let Some(i) = k.queue.iter().position(|j| j.attempt() == attempt) {
                k.queue.remove(i);
                return vec![Decision::Killed { attempt }];
            }
        }
        vec![]
    }

    /// The run's executors are stopped and its queue dropped (the driver
    /// wants no reports of it); attempts of it that come back are reported
    /// killed.
    fn run_ended(&mut self, run: String) -> Vec<Decision<J, W>> {
        let kinds: Vec<Kind> = self.kinds.iter().filter(|(_, k)| k.run == run).map(|(kind, _)| *kind).collect();
        self.ended.insert(run);
        kinds.into_iter().flat_map(|kind| self.drop_kind(kind)).collect()
    }

    /// Every executor is stopped.
    fn shutdown(&mut self) -> Vec<Decision<J, W>> {
        let kinds: Vec<Kind> = self.kinds.keys().copied().collect();
        kinds.into_iter().flat_map(|kind| self.drop_kind(kind)).collect()
    }

    fn drop_kind(&mut self, kind: Kind) -> Vec<Decision<J, W>> {
        let Some(k) = self.kinds.remove(&kind) else { return vec![] };
        let groups = self.execs.values().filter(|e| e.kind == kind).filter_map(|e| e.group);
        let mut out: Vec<Decision<J, W>> = groups.map(|group| Decision::Stop { group }).collect();
        out.push(Decision::WakeAll { waker: k.waker });
        out
    }

    /// Puts attempts back at the front of their kind's queue, in order;
    /// with the run over, they are killed as queued ones are.
    fn requeue(&mut self, kind: &Kind, jobs: impl IntoIterator<Item = J, IntoIter: DoubleEndedIterator>) -> Vec<Decision<J, W>> {
        match self.kinds.get_mut(kind) {
            Some(k) => {
                jobs.into_iter().rev().for_each(|j| k.queue.push_front(j));
                vec![]
            }
            None => jobs.into_iter().map(|j| Decision::Killed { attempt: j.attempt() }).collect(),
        }
    }
}

/// How many of `queued` attempts one of `executors` takes when its pipe
/// has `room`: its share, rounded up, so that nothing is left behind, and
/// so that two long tasks go to two executors, not both into one pipe
/// while the other idles.
pub fn fair_share(queued: usize, executors: u32, room: usize) -> usize {
    queued.div_ceil(executors.max(1) as usize).min(room)
}

#[cfg(test)]
impl<J: Job, W: Clone + Default> Pipeline<J, W> {
    /// The attempts queued for `kind`, in order.
    pub fn queue(&self, kind: &Kind) -> Vec<u32> {
        self.kinds.get(kind).map(|k| k.queue.iter().map(Job::attempt).collect()).unwrap_or_default()
    }

    /// The counts agree with the executors.
    pub fn check_bookkeeping(&self) -> Result<(), String> {
        for (kind, k) in &self.kinds {
            let mine = || self.execs.values().filter(|e| e.kind == *kind);
            let (live, idle) = (mine().count() as u32, mine().filter(|e| e.idle).count() as u32);
            if (k.live, k.idle) != (live, idle) {
                return Err(format!("kind {}: live {} idle {}, but {live} executors, {idle} idle", kind[0], k.live, k.idle));
            }
            if k.live > k.slots {
                return Err(format!("kind {}: {} executors on {} slots", kind[0], k.live, k.slots));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
