//! The fault controller: a thread on the driver's side that, while a job
//! runs, kills agents, kills hosts (sshd included), cuts links and freezes
//! agents at moments drawn from a seeded RNG, and heals each fault a few
//! seconds later. It owns every fault it makes: `pause` heals them all
//! before a job's checks, and dropping the controller heals every host and
//! restarts every sshd even when the soak panics, so that later tests get
//! a sane cluster.
//!
//! Faults stay survivable: at most [`MAX_DOWN`] hosts are faulted at once,
//! so one always answers; every fault heals within [`LONGEST`]. A fault's
//! draws are made whether or not it can be applied, so the same seed gives
//! the same sequence of decisions (their timing against the jobs varies).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use shoal_testkit::netns::{heal_all, pid_list, script, HOSTS};

/// Hosts faulted at the same time, at most: never all three.
const MAX_DOWN: usize = 2;

/// The longest a fault lasts before it heals (a freeze longer than the
/// cluster's 5 s heartbeat timeout loses the host; a shorter one must not
/// matter).
const LONGEST: Duration = Duration::from_secs(7);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `kill -9` of the host's agents; nothing to heal, but the host
    /// counts as down for a while (lost for the rest of that run).
    KillAgents,
    /// `testcluster kill`: every process, sshd included; heals by restart.
    KillHost,
    /// `testcluster cut`: packets vanish; heals by `heal`.
    Cut,
    /// SIGSTOP of the host's agents; heals by SIGCONT.
    Freeze,
}

impl Kind {
    /// Drawn by weight.
    fn draw(rng: &mut ChaCha8Rng) -> Kind {
        match rng.gen_range(0..11) {
            0..=2 => Kind::KillAgents,
            3..=4 => Kind::KillHost,
            5..=7 => Kind::Cut,
            _ => Kind::Freeze,
        }
    }

    /// How long it lasts, drawn.
    fn duration(self, rng: &mut ChaCha8Rng) -> Duration {
        let ms = match self {
            Kind::KillAgents => 500..3000,
            Kind::KillHost => 500..3000,
            Kind::Cut => 500..4000,
            Kind::Freeze => 500..LONGEST.as_millis() as u64,
        };
        Duration::from_millis(rng.gen_range(ms))
    }
}

/// A fault in force on host `host` (an index into [`HOSTS`]).
struct Active {
    host: usize,
    kind: Kind,
    heal_at: Instant,
}

struct State {
    /// Faults are made only while a job runs.
    enabled: bool,
    stop: bool,
    /// The job the faults hit, for the log.
    job: usize,
    next_at: Instant,
    active: Vec<Active>,
    /// What was done and when, for failure messages.
    log: Vec<String>,
    made: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    started: Instant,
}

pub struct Controller {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    seed: u64,
}

impl Controller {
    /// Starts the controller thread, paused.
    pub fn start(seed: u64) -> Controller {
        let now = Instant::now();
        let state = State { enabled: false, stop: false, job: 0, next_at: now, active: Vec::new(), log: Vec::new(), made: 0 };
        let shared = Arc::new(Shared { state: Mutex::new(state), wake: Condvar::new(), started: now });
        let inner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("chaos".into())
            .spawn(move || inner.run(ChaCha8Rng::seed_from_u64(seed)))
            .expect("start the chaos thread");
        Controller { shared, thread: Some(thread), seed }
    }

    /// Faults begin again, for job `job`.
    pub fn resume(&self, job: usize) {
        let mut s = self.shared.lock();
        s.enabled = true;
        s.job = job;
        s.next_at = Instant::now();
        self.shared.wake.notify_all();
    }

    /// No new faults; every fault in force is healed before this returns.
    pub fn pause(&self) {
        let mut s = self.shared.lock();
        s.enabled = false;
        self.shared.heal_all_active(&mut s);
    }

    /// The log so far, one fault or heal a line.
    pub fn log(&self) -> String {
        self.shared.lock().log.join("\n")
    }

    /// How many faults were made.
    pub fn made(&self) -> usize {
        self.shared.lock().made
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        {
            let mut s = self.shared.lock();
            s.stop = true;
            s.enabled = false;
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        heal_all();
        if std::thread::panicking() {
            eprintln!("chaos soak seed {} (replay: SHOAL_CHAOS_SEED={}); faults:\n{}", self.seed, self.seed, self.log());
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, mut rng: ChaCha8Rng) {
        let mut s = self.lock();
        while !s.stop {
            let now = Instant::now();
            self.heal_due(&mut s, now);
            if s.enabled && now >= s.next_at {
                self.strike(&mut s, &mut rng);
                s.next_at = now + Duration::from_millis(rng.gen_range(500..3000));
            }
            s = self.wake.wait_timeout(s, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Draws one fault and makes it, unless its host is already faulted
    /// or it would leave no host standing.
    fn strike(&self, s: &mut State, rng: &mut ChaCha8Rng) {
        let kind = Kind::draw(rng);
        let host = rng.gen_range(0..HOSTS.len());
        let lasts = kind.duration(rng);
        let h = HOSTS[host];
        if s.active.iter().any(|a| a.host == host) || s.active.len() >= MAX_DOWN {
            return;
        }
        let what = match kind {
            Kind::KillAgents => kill_agents(h, lasts),
            Kind::KillHost => checked(&["kill", h], format!("killed host {h} (sshd too) for {lasts:.1?}")),
            Kind::Cut => checked(&["cut", h], format!("cut {h}'s link for {lasts:.1?}")),
            Kind::Freeze => freeze(h, lasts),
        };
        s.made += 1;
        self.note(s, what);
        s.active.push(Active { host, kind, heal_at: Instant::now() + lasts });
    }

    fn heal_due(&self, s: &mut State, now: Instant) {
        let (due, keep): (Vec<Active>, Vec<Active>) = std::mem::take(&mut s.active).into_iter().partition(|a| a.heal_at <= now);
        s.active = keep;
        for a in due {
            let what = heal(&a);
            self.note(s, what);
        }
    }

    fn heal_all_active(&self, s: &mut State) {
        for a in std::mem::take(&mut s.active) {
            let what = heal(&a);
            self.note(s, what);
        }
    }

    fn note(&self, s: &mut State, what: String) {
        let line = format!("{:7.2?} job {}: {what}", self.started.elapsed(), s.job);
        s.log.push(line);
    }
}

/// Runs a `testcluster` command; says what it did, or that it failed.
fn checked(args: &[&str], did: String) -> String {
    let out = script(args);
    match out.status.success() {
        true => did,
        false => format!("FAILED: testcluster {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()),
    }
}

fn kill_agents(h: &str, lasts: Duration) -> String {
    let pids = pid_list(&script(&["agents", h]));
    if pids.is_empty() {
        return format!("kill -9 of {h}'s agents: none running; {h} counts as down for {lasts:.1?}");
    }
    let words: Vec<String> = pids.iter().map(u32::to_string).collect();
    let _ = std::process::Command::new("kill").arg("-9").args(&words).output();
    format!("kill -9 of {h}'s agents (pids {}); {h} counts as down for {lasts:.1?}", words.join(" "))
}

fn freeze(h: &str, lasts: Duration) -> String {
    let pids = pid_list(&script(&["agents", h]));
    checked(&["freeze", h], format!("froze {h}'s agents (pids {pids:?}) for {lasts:.1?}"))
}

fn heal(a: &Active) -> String {
    let h = HOSTS[a.host];
    match a.kind {
        Kind::KillAgents => format!("{h} counts as up again"),
        Kind::KillHost => checked(&["restart", h], format!("restarted {h}'s sshd")),
        Kind::Cut => checked(&["heal", h], format!("healed {h}'s link")),
        Kind::Freeze => checked(&["thaw", h], format!("thawed {h}")),
    }
}
