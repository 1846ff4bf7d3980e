//! Every process a task starts ends with it.
//!
//! A task's shell leads a process group of its own, but a child that calls
//! `setsid`, or a daemon that double-forks, leaves that group, and a
//! process whose parent exits is re-parented. So the agent is a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`): orphans of its tasks become its
//! own children instead of init's, and never leave its process tree. Each
//! process the agent starts carries a [`Mark`] in its environment
//! (`SHOAL_TREE=<agent pid>.<n>`), inherited by all it starts; a process of
//! this agent whose mark is no longer live is a leftover.
//!
//! Killing walks `/proc` (the one source every Linux has; cgroup v2
//! `cgroup.kill` needs a delegated hierarchy that ssh users rarely get):
//! the root's group, its descendants, and the subtrees of adopted
//! children with its mark, again until a walk finds nothing (a process
//! may fork while we look). When a mark is dropped a sweeper thread ends
//! its leftovers, a fraction of a second later and in batches (a walk per
//! task would cost more than a short task), and reaps adopted children
//! that ended on their own. Only adopted children are ever reaped here:
//! the agent's own children belong to whoever spawned them and waits.
//!
//! Everything else the agent starts (an exec command, a combiner, a
//! `docker` client, a skip-mode sentinel) inherits the agent's own mark,
//! number [`AGENT_MARK`], which no sweep ends early. So a dead agent's
//! guardian finds every process the agent left: those with its pid in
//! their mark, and the rest of their process groups ([`end_orphans`]).
//!
//! What is not caught: a process that clears its environment and calls
//! `setsid` after its parent exited is known only as a descendant of the
//! agent, and ends when the agent does ([`kill_all`]), unless the agent
//! was killed first.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

/// The variable that marks a process as started by a task of this agent.
pub const MARK_ENV: &str = "SHOAL_TREE";

/// Walks of one kill before giving up on a process that keeps forking.
const ROUNDS: usize = 64;

/// How long the sweeper waits to batch the marks dropped meanwhile.
const SWEEP_BATCH: Duration = Duration::from_millis(100);

/// The number of the mark every process the agent starts inherits,
/// unless it gets a [`Mark`] of its own; live as long as the agent.
pub const AGENT_MARK: u64 = 0;

static NEXT: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
static SWEEP: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
static SWEEPER: Once = Once::new();
/// A child that [`kill_all`] leaves running: the agent's guardian, which
/// must outlive the agent.
static SPARED: AtomicI32 = AtomicI32::new(0);

/// Makes this process the reaper of its orphaned descendants. Without it
/// (not Linux, or refused) orphans go to init and only what is still in
/// a task's subtree can be found.
pub fn become_subreaper() -> bool {
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Gives every process this agent starts from now on the agent's own
/// mark ([`AGENT_MARK`]), through this process's environment. Call it
/// before the agent starts any work (no other thread may read the
/// environment meanwhile), and after starting its guardian, which must
/// not carry the mark of the agent it outlives.
pub fn mark_everything_started() {
    std::env::set_var(MARK_ENV, format!("{}.{AGENT_MARK}", std::process::id()));
}

/// Keeps [`kill_all`] from ending child `pid`.
pub fn spare(pid: i32) {
    SPARED.store(pid, Ordering::Relaxed);
}

/// The mark of one process the agent starts (a task, an executor, a
/// command), live until dropped; dropping it ends its leftovers.
#[derive(Debug)]
pub struct Mark(u64);

impl Mark {
    pub fn new() -> Mark {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        LIVE.lock().unwrap().get_or_insert_with(HashSet::new).insert(n);
        Mark(n)
    }

    pub fn id(&self) -> u64 {
        self.0
    }

    /// The value of [`MARK_ENV`] for the process.
    pub fn value(&self) -> String {
        format!("{}.{}", std::process::id(), self.0)
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        if let Some(live) = LIVE.lock().unwrap().as_mut() {
            live.remove(&self.0);
        }
        request_sweep();
    }
}

/// Kills a running root (a task's shell, an executor) and everything it
/// started: its group now, then (on a thread of its own, as walking
/// `/proc` takes a while) its descendants and the adopted orphans with
/// `mark`. Call it only while `root` is not yet reaped.
pub fn kill_running(root: i32, mark: Option<u64>) {
    signal(-root, libc::SIGKILL);
    let _ = std::thread::Builder::new().name("shoal-kill".into()).spawn(move || end_running(root, mark));
}

/// [`kill_running`] on the calling thread: returns when nothing of the
/// tree is left running.
pub fn end_running(root: i32, mark: Option<u64>) {
    signal(-root, libc::SIGKILL);
    end_where(|t| {
        let mut roots: Vec<i32> = t.procs.values().filter(|p| p.pgrp == root).map(|p| p.pid).collect();
        roots.push(root);
        if let Some(m) = mark {
            roots.extend(t.adopted_marked(|n| n == m));
        }
        roots
    });
}

/// Ends the leftovers of a mark that is no longer running (its root was
/// reaped), now, on the calling thread.
pub fn end_leftovers(mark: u64) {
    end_where(|t| t.adopted_marked(|n| n == mark));
}

/// Ends every process this agent started, and theirs (the agent exits),
/// but its guardian.
pub fn kill_all() {
    let me = std::process::id() as i32;
    let spared = SPARED.load(Ordering::Relaxed);
    end_where(|t| t.children_of(me).into_iter().filter(|&pid| pid != spared).collect());
}

/// Ends what agent `agent` (dead) left running: every process that
/// carries its mark, the other members of their process groups (one that
/// cleared its environment is still in its task's group), and what those
/// started. The agent's own group `spare` is left: any other member of it
/// is whoever started the agent.
pub fn end_orphans(agent: u32, spare: i32) {
    end_where(|t| t.left_by(agent, spare));
}

fn request_sweep() {
    SWEEPER.call_once(|| {
        let _ = std::thread::Builder::new().name("shoal-sweep".into()).spawn(sweeper);
    });
    *SWEEP.0.lock().unwrap() = true;
    SWEEP.1.notify_one();
}

/// Ends leftovers of dropped marks and reaps adopted children, in batches.
fn sweeper() {
    loop {
        {
            let mut asked = SWEEP.0.lock().unwrap();
            while !*asked {
                asked = SWEEP.1.wait(asked).unwrap();
            }
            *asked = false;
        }
        std::thread::sleep(SWEEP_BATCH);
        let live = LIVE.lock().unwrap().clone().unwrap_or_default();
        end_where(|t| t.adopted_marked(|n| n != AGENT_MARK && !live.contains(&n)));
    }
}

/// Kills the subtrees of the roots `pick` names in a fresh table, until
/// it names none that runs; then reaps adopted children that ended.
fn end_where(pick: impl Fn(&Table) -> Vec<i32>) {
    for _ in 0..ROUNDS {
        let table = Table::scan();
        let victims = table.subtrees(&pick(&table));
        if victims.is_empty() {
            break;
        }
        victims.iter().for_each(|&pid| signal(pid, libc::SIGKILL));
    }
    Table::scan().reap_adopted();
}

fn signal(pid: i32, sig: i32) {
    if pid != 0 && pid != -1 {
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid, sig) };
    }
}

/// One process, from `/proc/PID/stat`.
#[derive(Clone, Debug, PartialEq)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
    zombie: bool,
}

/// A snapshot of the host's processes.
struct Table {
    procs: HashMap<i32, Proc>,
    me: Proc,
}

impl Table {
    fn scan() -> Table {
        let mut procs = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
                if let Some(p) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(pid, &s)) {
                    procs.insert(pid, p);
                }
            }
        }
        let pid = std::process::id() as i32;
        // SAFETY: plain getters.
        let (pgrp, session) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
        Table { procs, me: Proc { pid, ppid: 0, pgrp, session, zombie: false } }
    }

    fn children_of(&self, parent: i32) -> Vec<i32> {
        self.procs.values().filter(|p| p.ppid == parent).map(|p| p.pid).collect()
    }

    /// The running processes in the subtrees of `roots`, roots included.
    fn subtrees(&self, roots: &[i32]) -> Vec<i32> {
        let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in self.procs.values() {
            kids.entry(p.ppid).or_default().push(p.pid);
        }
        let mut seen = HashSet::new();
        let mut todo: Vec<i32> = roots.to_vec();
        while let Some(pid) = todo.pop() {
            if pid == self.me.pid || !seen.insert(pid) {
                continue;
            }
            todo.extend(kids.get(&pid).into_iter().flatten());
        }
        seen.into_iter().filter(|pid| self.procs.get(pid).is_some_and(|p| !p.zombie)).collect()
    }

    /// Our children that we did not spawn: orphans re-parented to us.
    /// Everything the agent spawns leads a group of its own in the
    /// agent's session, or stays in the agent's group; an orphan left
    /// its task's group behind with `setsid`, or is still a member of it.
    fn is_adopted(&self, p: &Proc) -> bool {
        p.ppid == self.me.pid && (p.session != self.me.session || (p.pgrp != p.pid && p.pgrp != self.me.pgrp))
    }

    /// Adopted children, alive, whose mark is ours and `wanted`.
    fn adopted_marked(&self, wanted: impl Fn(u64) -> bool) -> Vec<i32> {
        let me = self.me.pid as u32;
        self.procs
            .values()
            .filter(|p| !p.zombie && self.is_adopted(p))
            .filter(|p| mark_of(p.pid).is_some_and(|(agent, n)| agent == me && wanted(n)))
            .map(|p| p.pid)
            .collect()
    }

    /// The processes with `agent`'s mark, and the members of their
    /// groups but `spare` and ours.
    fn left_by(&self, agent: u32, spare: i32) -> Vec<i32> {
        let marked: Vec<&Proc> =
            self.procs.values().filter(|p| !p.zombie && p.pid != self.me.pid && mark_of(p.pid).is_some_and(|(a, _)| a == agent)).collect();
        let groups: HashSet<i32> = marked.iter().map(|p| p.pgrp).filter(|&g| g != spare && g != self.me.pgrp).collect();
        let members = self.procs.values().filter(|p| groups.contains(&p.pgrp)).map(|p| p.pid);
        marked.iter().map(|p| p.pid).chain(members).collect()
    }

    fn reap_adopted(&self) {
        for p in self.procs.values().filter(|p| p.zombie && self.is_adopted(p)) {
            let mut status = 0;
            // SAFETY: an adopted zombie is our child and nobody else's to wait for.
            unsafe { libc::waitpid(p.pid, &mut status, libc::WNOHANG) };
        }
    }
}

/// Parses `/proc/PID/stat`: the fields after the command name, which
/// is in parentheses and may itself hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut f = rest.split(' ');
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    Some(Proc { pid, ppid, pgrp, session, zombie: state == "Z" || state == "X" })
}

/// The agent pid and number of a process's mark, from its environment.
fn mark_of(pid: i32) -> Option<(u32, u64)> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    parse_mark(&env)
}

fn parse_mark(environ: &[u8]) -> Option<(u32, u64)> {
    let prefix = format!("{MARK_ENV}=");
    let entry = environ.split(|b| *b == 0).find_map(|e| e.strip_prefix(prefix.as_bytes()))?;
    let (agent, n) = std::str::from_utf8(entry).ok()?.split_once('.')?;
    Some((agent.parse().ok()?, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let p = parse_stat(7, "7 (a) b (c)) S 1 7 7 0 -1 4194304").unwrap();
        assert_eq!(p, Proc { pid: 7, ppid: 1, pgrp: 7, session: 7, zombie: false });
        assert!(parse_stat(8, "8 (z) Z 1 8 8 0").unwrap().zombie);
        assert_eq!(parse_stat(9, "garbage"), None);
    }

    #[test]
    fn marks_are_found_among_other_variables() {
        assert_eq!(parse_mark(b"A=1\0SHOAL_TREE=42.7\0B=2\0"), Some((42, 7)));
        assert_eq!(parse_mark(b"SHOAL_TREE=42.7"), Some((42, 7)));
        assert_eq!(parse_mark(b"XSHOAL_TREE=42.7\0"), None);
        assert_eq!(parse_mark(b"SHOAL_TREE=junk\0"), None);
    }

    fn running(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(pid, &s)).is_some_and(|p| !p.zombie)
    }

    fn wait_for_pid(path: &std::path::Path) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
                return pid;
            }
            assert!(Instant::now() < deadline, "no pid in {}", path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_dead_agents_marked_processes_and_their_groups_end() {
        // An agent that no longer runs: no pid is this large.
        let agent = u32::MAX - 7;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // The shell carries the agent's mark; its child cleared its
        // environment but stayed in the shell's group.
        let script = format!("env -i sh -c 'echo $$ > {d}/cleared; exec sleep 300' & echo $$ > {d}/marked; sleep 300");
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env(MARK_ENV, format!("{agent}.3"))
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let (marked, cleared) = (wait_for_pid(&dir.path().join("marked")), wait_for_pid(&dir.path().join("cleared")));
        end_orphans(agent, 0);
        let _ = child.wait();
        // A SIGKILL takes effect when the kernel next runs the process: on
        // a loaded machine, a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while [marked, cleared].into_iter().any(running) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<i32> = [marked, cleared].into_iter().filter(|&p| running(p)).collect();
        left.iter().for_each(|&p| signal(p, libc::SIGKILL));
        assert!(left.is_empty(), "processes of the dead agent still run: {left:?}");
    }

    #[test]
    fn a_running_tree_ends_with_its_setsid_and_double_forked_children() {
        // As the agent is: orphans of the tree become this process's.
        assert!(become_subreaper());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let mark = Mark::new();
        let script = format!(
            "setsid sh -c 'echo $$ > {d}/a; exec sleep 300' >/dev/null 2>&1 & \
             ( sh -c 'echo $$ > {d}/b; exec sleep 300' >/dev/null 2>&1 & ); sleep 300"
        );
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env(MARK_ENV, mark.value())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let (a, b) = (wait_for_pid(&dir.path().join("a")), wait_for_pid(&dir.path().join("b")));
        end_running(child.id() as i32, Some(mark.id()));
        let _ = child.wait();
        for pid in [a, b] {
            let deadline = Instant::now() + Duration::from_secs(5);
            while running(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = running(pid);
            signal(pid, libc::SIGKILL);
            assert!(!left, "process {pid} of the tree still runs");
        }
    }
}
