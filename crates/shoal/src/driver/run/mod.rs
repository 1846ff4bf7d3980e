//! `shoal run`: one execution of a command job, end to end.
//!
//! The steps read as a list: prepare (manifest, partitions, tasks: bad
//! input fails here), connect, sync the work dir to every host, resume
//! what an earlier run already committed, run the engine, commit the
//! output atomically, summarise, and end the run on every host.

pub mod book;
mod concat;
mod dry_run;
pub mod engine;
pub mod guard;
mod host_files;
pub mod id;
pub mod images;
pub mod journal;
pub mod logs;
pub mod output;
pub mod placement;
pub mod prepare;
pub mod private;
pub mod progress;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_core::cluster::{ClusterSpec, HostSpec};
use shoal_core::job::JobSpec;
use shoal_core::scheduler::{HostId, Scheduler, SchedulerConfig, TaskId, TaskSpec};
use shoal_wire::{hex, manifest_pieces, FileEntry, Message, MAX_TASK_INPUTS};
use tokio::task::JoinSet;

use self::book::{Ending, Outcome};
use self::concat::Streamed;
use self::engine::Engine;
use self::id::RunId;
use self::journal::Journal;
use self::output::Part;
use self::placement::Placement;
use self::prepare::Plan;
use self::summary::{AttemptRecord, RunSummary};
use super::state::StateDir;
use super::{blocks, connect, mesh, Cluster, Host};
use crate::{Error, Result};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `.shoal` state dir (runs, journals, logs).
    pub state_dir: PathBuf,
    /// Print the plan and stop.
    pub dry_run: bool,
    /// Reuse committed tasks of this earlier run, if any.
    pub resume: Option<RunId>,
    pub speculate: bool,
    /// No progress output (for `--json`).
    pub quiet: bool,
    /// How to resume a failed run, when it is not `shoal run JOB --resume`
    /// (a Dataset program is rerun with `--resume`).
    pub resume_hint: Option<String>,
}

/// Runs a command job on a cluster and returns its summary; the error of a
/// failed run carries the summary's path in its message.
pub async fn run(spec: &ClusterSpec, job: &JobSpec, opts: &RunOptions) -> Result<RunSummary> {
    let slots_guess: u32 = spec.hosts.iter().map(|h| h.slots.unwrap_or(cores())).sum();
    // Files that live on the hosts are cut once the hosts said how big
    // they are: connect first (a dry run too).
    let (mut early, on_hosts) = (None, job.input.is_per_host());
    let expanded;
    let job = if on_hosts {
        let cluster = connect(spec).await;
        report_unreachable(&cluster)?;
        let listed = host_files::expand(job, &cluster.hosts).await;
        early = Some(cluster);
        match listed {
            Ok(j) => expanded = j,
            Err(e) => return Err(close_early(early, e).await),
        }
        &expanded
    } else {
        job
    };
    let local_only = spec.hosts.iter().all(|h| h.transport == shoal_core::cluster::TransportKind::Local);
    let plan = match prepare::prepare(job, slots_guess, &opts.state_dir, local_only) {
        Ok(p) => p,
        Err(e) => return Err(close_early(early, e).await),
    };
    if let Err(e) = shuffle_fits(job, &plan) {
        let _ = std::fs::remove_dir_all(plan.run_dir.path());
        return Err(close_early(early, e).await);
    }
    let _ = StateDir::new(&opts.state_dir).set_latest(&plan.run_id);
    if opts.dry_run {
        if let Some(c) = early {
            c.close().await;
        }
        return Ok(dry_run::dry_run(spec, job, &plan));
    }
    warn_unknown_hosts(spec, job);
    let mut cluster = match early {
        Some(c) => c,
        None => connect(spec).await,
    };
    report_unreachable(&cluster)?;
    let started = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let (sent, skipped) = sync_all(&mut cluster, &plan).await?;
    stranded_partitions(&cluster, &plan)?;
    for note in images::ensure(&mut cluster, job).await? {
        eprintln!("shoal: {}", crate::printable::printable(&note.to_string()));
    }
    let journal = Journal::create(&plan.run_dir.journal()).map_err(|e| Error::io("cannot create the run journal", e))?;
    let holders = locality(&plan, &cluster.hosts).await;
    let sched = scheduler(job, &plan, &cluster.hosts, &holders, opts);
    let mut engine = Engine::new(job, &plan, cluster.hosts.clone(), sched, journal, opts.quiet);
    engine.set_holders(holders.iter().map(|h| h.iter().map(|id| id.0 as usize).collect()).collect());
    // Hosts move data among themselves for a shuffle, for cached parts,
    // and for input partitions some host holds already.
    let held_inputs = job.input.parts.iter().flatten().any(|p| p.held_on.is_some());
    if job.reduce.is_some() || held_inputs || holders.iter().any(|h| !h.is_empty()) {
        let (mesh, unreachable) = mesh::set_up(&cluster.hosts, spec.data, &plan.run_id.to_string()).await;
        for line in mesh::describe(&cluster.hosts, &unreachable) {
            eprintln!("shoal: {line}");
        }
        engine.set_mesh(mesh);
    }
    engine.book.facts.sync_sent = sent;
    engine.book.facts.sync_skipped = skipped;
    resume(&mut engine, opts)?;
    if let Some(s) = stream_output(job, &plan) {
        engine.stream_output(s);
    }
    let ending = engine.run(&mut cluster.events).await;
    if engine.abandoned() {
        return Err(Error::Interrupted(ABANDONED.into()));
    }
    let mut summary = summarize(&engine, job, started, started_unix);
    if job.reduce.is_some() {
        let mut shuffle = summary::ShuffleSummary::new(engine.book.partition_sizes(), engine.book.facts.shuffled_via_driver);
        shuffle.direct_bytes = engine.book.facts.shuffled_direct;
        shuffle.direct_pairs = engine.direct_pairs();
        shuffle.refused_connections = engine.book.facts.peer_refused;
        summary.shuffle = Some(shuffle);
    }
    summary.input_relayed_bytes = engine.book.facts.inputs_via_driver;
    summary.input_peer_bytes = engine.book.facts.inputs_direct;
    summary.counters = engine.book.facts.counters.clone();
    summary.skipped_records = engine.book.facts.skipped.clone();
    end_run(&cluster, &plan.run_id.to_string()).await;
    let streamed = engine.take_stream();
    let result = finish(ending, &engine, streamed, job, &plan, &mut summary, opts);
    let report = plan.run_dir.report();
    if private::write_bytes(&report, report::render(&summary).as_bytes()).is_ok() {
        summary.report = Some(report.display().to_string());
    }
    write_summary(&plan.run_dir.summary(), &summary);
    let where_ = summary.report.as_ref().map_or(String::new(), |r| format!("\nreport: {r}"));
    let lost = &engine.book.facts.lost_inputs;
    match result {
        Ok(()) => Ok(summary),
        Err(Error::JobFailed(m)) if !lost.is_empty() => Err(Error::InputsLost { hashes: lost.clone(), why: m + &where_ }),
        Err(Error::JobFailed(m)) => Err(Error::JobFailed(m + &where_)),
        Err(Error::Interrupted(m)) => Err(Error::Interrupted(m + &where_)),
        Err(e) => Err(e),
    }
}

/// Ends the agents a run connected before it could plan (files on the
/// hosts), and hands back why the run ends.
async fn close_early(early: Option<Cluster>, e: Error) -> Error {
    if let Some(c) = early {
        c.close().await;
    }
    e
}

/// Why a run interrupted twice ends without its summary.
pub const ABANDONED: &str = "interrupted again: exiting at once";

/// Writes `summary.json` whole, by temp file and rename (pretty, for
/// people, while it is small; a run of many thousand attempts gets one
/// line, which writes several times faster).
fn write_summary(path: &Path, summary: &RunSummary) {
    let written = private::write_atomic(path, |file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        if summary.attempts.len() > 2000 {
            serde_json::to_writer(&mut out, summary)?;
        } else {
            serde_json::to_writer_pretty(&mut out, summary)?;
        }
        std::io::Write::flush(&mut out)
    });
    if let Err(e) = written {
        eprintln!("shoal: warning: cannot write {}: {e}", path.display());
    }
}

/// A reduce task names a bucket of every map task in its request, which
/// must fit in one message: so many map tasks cannot feed a reduce.
fn shuffle_fits(job: &JobSpec, plan: &Plan) -> Result<()> {
    let maps = plan.tasks.iter().filter(|t| t.stage == 0).count();
    if job.reduce.is_none() || maps <= MAX_TASK_INPUTS {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "the input makes {maps} map tasks, and a [reduce] can merge the output of at most {MAX_TASK_INPUTS}: \
         each reduce task names a bucket of every map task; give it fewer map tasks (fewer [input] partitions, a larger chunk, or fewer files or args)"
    )))
}

/// A partition whose data lives only on one host cannot run without it.
fn stranded_partitions(cluster: &Cluster, plan: &Plan) -> Result<()> {
    let up = |name: &str| cluster.hosts.iter().any(|h| h.name() == name);
    match plan.tasks.iter().find(|t| t.host.as_deref().is_some_and(|h| !up(h))) {
        Some(t) => Err(Error::JobFailed(format!(
            "partition {} ({}) lives only on host `{}`, which is not available for this run; bring it back (see `shoal check`) and run again",
            t.partition,
            t.input_name,
            t.host.as_deref().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

fn warn_unknown_hosts(spec: &ClusterSpec, job: &JobSpec) {
    for host in job.map.command_on.keys().filter(|h| spec.host(h).is_none()) {
        eprintln!("shoal: warning: [map] command_on names host `{host}`, which is not in this cluster; it is ignored");
    }
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn report_unreachable(cluster: &Cluster) -> Result<()> {
    let reasons: Vec<String> = cluster.failed.iter().map(|f| format!("  {}: {}", f.spec.name, f.error)).collect();
    if cluster.hosts.is_empty() {
        return Err(Error::Unreachable(reasons.join("\n")));
    }
    for r in &reasons {
        eprintln!("shoal: host unreachable, running without it:\n{}", crate::printable::printable(&r.to_string()));
    }
    Ok(())
}

/// Sends each host the blocks of the manifest it lacks and builds its work dir.
/// A host that cannot take the work dir (a full disk, say) is left out of
/// the run with a warning; the run fails only when no host is left.
async fn sync_all(cluster: &mut Cluster, plan: &Plan) -> Result<(u64, u64)> {
    let mut set = JoinSet::new();
    for h in &cluster.hosts {
        let h = Arc::clone(h);
        let files = plan.manifest.clone();
        let run = plan.run_id.to_string();
        set.spawn(async move {
            let sources: Vec<&blocks::Source> = files.iter().map(|f| &f.source).collect();
            let (sent, skipped) = blocks::ensure(&h, &sources).await.map_err(|e| (h.index, format!("host `{}`: {e}", h.name())))?;
            let entries: Vec<FileEntry> = files.iter().map(|f| f.entry.clone()).collect();
            make_workdir(&h, &run, &entries).await.map(|()| (sent, skipped)).map_err(|e| (h.index, e.to_string()))
        });
    }
    let mut totals = (0, 0);
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((s, k))) => {
                totals.0 += s;
                totals.1 += k;
            }
            Ok(Err((index, e))) => errors.push((index, e)),
            Err(e) => errors.push((usize::MAX, e.to_string())),
        }
    }
    for (index, why) in &errors {
        eprintln!("shoal: {}; running without this host", crate::printable::printable(&why.to_string()));
        if let Some(h) = cluster.hosts.iter().find(|h| h.index == *index) {
            h.close().await;
        }
    }
    cluster.hosts.retain(|h| !errors.iter().any(|(i, _)| *i == h.index));
    if cluster.hosts.is_empty() {
        let reasons: Vec<String> = errors.into_iter().map(|(_, e)| e).collect();
        return Err(Error::JobFailed(format!("sync failed on every host:\n  {}", reasons.join("\n  "))));
    }
    Ok(totals)
}

/// Builds the run's work dir on `h` from the blocks it holds, the file list
/// in pieces that each fit in a message.
async fn make_workdir(h: &Host, run: &str, entries: &[FileEntry]) -> std::result::Result<(), WorkdirFailed> {
    for (i, piece) in manifest_pieces(entries).into_iter().enumerate() {
        let id = h.next_id();
        let msg = Message::MakeWorkdir { id, run: run.to_string(), files: piece.to_vec(), fresh: i == 0 };
        match h.request(id, msg).await {
            Ok(Message::WorkdirReady { error: None, .. }) => {}
            Ok(Message::WorkdirReady { error: Some(why), .. }) => return Err(WorkdirFailed::Refused { host: h.name().into(), why }),
            Err(e) if !e.is_gone() => return Err(WorkdirFailed::Request(e)),
            _ => return Err(WorkdirFailed::Lost { host: h.name().into() }),
        }
    }
    Ok(())
}

/// Why a host's work dir for the run could not be built.
#[derive(Debug, thiserror::Error)]
enum WorkdirFailed {
    /// The agent could not build it: its reason.
    #[error("host `{host}`: cannot build the work dir: {why}")]
    Refused { host: String, why: String },
    #[error("cannot build the work dir: {0}")]
    Request(super::host::RequestError),
    #[error("host `{host}` was lost during sync")]
    Lost { host: String },
}

/// Builds the scheduler: the placement's launch order and pins, and
/// locality from the blocks each host already holds.
fn scheduler(job: &JobSpec, plan: &Plan, hosts: &[Arc<Host>], holders: &[Vec<HostId>], opts: &RunOptions) -> Scheduler {
    let maps = plan.tasks.iter().filter(|t| t.stage == 0).count();
    let slots: Vec<(&HostSpec, u32)> = hosts.iter().map(|h| (&h.spec, h.slots())).collect();
    let placement = Placement::new(job, plan, &slots);
    let map_ids: Vec<TaskId> = (0..maps as u32).map(TaskId).collect();
    let reduce = job.reduce.is_some();
    let tasks: Vec<TaskSpec> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(t, planned)| TaskSpec {
            stage: planned.stage,
            deps: if planned.stage == 1 { map_ids.clone() } else { vec![] },
            preferred_hosts: holders[t].clone(),
            pinned_host: placement.pinned[t].map(|h| HostId(h as u32)),
            pinned_only: planned.host.is_some(),
            needs_collect: planned.stage == 1 || !reduce,
        })
        .collect();
    let config = SchedulerConfig {
        max_attempts: job.job.max_attempts,
        exclude_after: job.job.exclude_after,
        speculate: job.job.speculate || opts.speculate,
        ..SchedulerConfig::default()
    };
    Scheduler::with_order(tasks, placement.order.iter().map(|&i| TaskId(i as u32)).collect(), config)
}

/// Which hosts already hold each task's input partition.
async fn locality(plan: &Plan, hosts: &[Arc<Host>]) -> Vec<Vec<HostId>> {
    let mut out = vec![Vec::new(); plan.tasks.len()];
    // Inputs that travel inline live nowhere: no host is closer to them.
    let stored = |t: &prepare::PlannedTask| t.input.as_ref().filter(|s| s.data.is_none()).map(|s| s.hash);
    let hashes: Vec<_> = plan.tasks.iter().filter_map(stored).collect();
    if hashes.is_empty() {
        return out;
    }
    for (i, h) in hosts.iter().enumerate() {
        let Ok(missing) = blocks::missing(h, hashes.clone()).await else {
            continue;
        };
        for (t, task) in plan.tasks.iter().enumerate() {
            if stored(task).is_some_and(|hash| !missing.contains(&hash)) {
                out[t].push(HostId(i as u32));
            }
        }
    }
    out
}

/// Marks tasks committed by an earlier run (same identity, intact output)
/// as done, and links their outputs into this run.
fn resume(engine: &mut Engine<'_>, opts: &RunOptions) -> Result<()> {
    let Some(old) = &opts.resume else {
        return Ok(());
    };
    let old_dir = StateDir::new(&opts.state_dir).run(old);
    let entries = journal::load(&old_dir.journal())
        .map_err(|e| Error::Usage(format!("cannot resume run {old}: its journal cannot be read ({e}); see `shoal runs`")))?;
    private::dir(&engine.plan.run_dir.parts()).map_err(|e| Error::io("cannot create the parts dir", e))?;
    let tasks = engine.plan.tasks.clone();
    for (t, task) in tasks.iter().enumerate() {
        let Some(e) = entries.get(&task.identity) else {
            continue;
        };
        let file = engine.plan.run_dir.part(t as u32);
        let part = |data| Part { partition: task.partition, file: file.clone(), data, input_name: std::sync::Arc::clone(&task.input_name) };
        if engine.job.output.on_hosts || engine.job.output.held {
            // The part stayed on its host, at a path that depends only on
            // the host and the task: reused as it is (`shoal pull` checks
            // it; a held part that is gone is made again when a later job
            // cannot get it).
            let path = if engine.job.output.held { String::new() } else { engine.part_on_host(t as u32, &e.host) };
            let file = PathBuf::from(format!("{}:{path}", e.host));
            let part = Part { partition: task.partition, file, data: None, input_name: std::sync::Arc::clone(&task.input_name) };
            engine.journal_reuse(t as u32, e.clone(), part)?;
            continue;
        }
        if e.data.is_some() {
            // Kept in the journal line; reused only if it matches its hash.
            if let Some(data) = e.data() {
                engine.journal_reuse(t as u32, e.clone(), part(Some(data.into())))?;
            }
            continue;
        }
        let old_part = old_dir.part(e.task);
        if !intact(&old_part, &e.output) {
            continue;
        }
        std::fs::hard_link(&old_part, &file)
            .or_else(|_| std::fs::copy(&old_part, &file).map(|_| ()))
            .map_err(|err| Error::io("cannot reuse an output", err))?;
        engine.journal_reuse(t as u32, e.clone(), part(None))?;
    }
    skip_unneeded_maps(engine);
    Ok(())
}

/// When every reduce task was reused, the maps' outputs (shuffle buckets,
/// which are never journaled) have no reader left: they need not run.
fn skip_unneeded_maps(engine: &mut Engine<'_>) {
    let plan = engine.plan;
    let in_stage = |s: u32| (0..plan.tasks.len()).filter(|&t| plan.tasks[t].stage == s).map(|t| TaskId(t as u32)).collect::<Vec<_>>();
    let reduces = in_stage(1);
    let restored = |t: &TaskId| engine.book.sched().task_state(*t) == shoal_core::scheduler::TaskState::Restored;
    if reduces.is_empty() || !reduces.iter().all(restored) {
        return;
    }
    for m in in_stage(0) {
        engine.book.restore_done(m.0);
    }
}

fn intact(path: &Path, hash_hex: &str) -> bool {
    blocks::hash_range(path, 0, std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)).is_ok_and(|h| hex(&h) == hash_hex)
}

fn summarize(engine: &Engine<'_>, job: &JobSpec, started: Instant, started_unix: u64) -> RunSummary {
    let at = |t: Duration| t.as_millis() as u64;
    let facts = &engine.book.facts;
    let attempts = engine
        .book
        .attempts
        .iter()
        .map(|(id, a)| AttemptRecord {
            attempt: id,
            task: a.task,
            host: engine.hosts[a.host].name().to_string(),
            start_ms: at(a.started),
            end_ms: a.ended.map(at),
            outcome: a.outcome,
            status: a.status.as_deref().map(str::to_string),
            speculative: a.speculative,
            cpu_ms: a.cpu_ms,
            stage: engine.plan.tasks[a.task as usize].stage,
            partition: engine.plan.tasks[a.task as usize].partition,
            stderr_tail: if a.outcome == Outcome::Failed { a.stderr_tail.clone() } else { String::new() },
        })
        .collect();
    RunSummary {
        run: engine.plan.run_id.to_string(),
        job: job.job.name.clone(),
        seed: job.job.seed,
        status: "running".into(),
        started_unix_ms: started_unix,
        wall_ms: started.elapsed().as_millis() as u64,
        tasks: engine.plan.tasks.len(),
        reused: facts.reused,
        attempts,
        hosts: facts.hosts.clone(),
        excluded: facts.excluded.clone(),
        lost: facts.lost.clone(),
        sync_bytes_sent: facts.sync_sent,
        sync_bytes_skipped: facts.sync_skipped,
        input_bytes_sent: facts.input_sent,
        input_bytes_skipped: facts.input_skipped,
        ..RunSummary::default()
    }
}

fn finish(
    ending: Ending,
    engine: &Engine<'_>,
    streamed: Option<Streamed>,
    job: &JobSpec,
    plan: &Plan,
    summary: &mut RunSummary,
    opts: &RunOptions,
) -> Result<()> {
    let resume_hint =
        opts.resume_hint.clone().unwrap_or_else(|| format!("resume with: shoal run {} --resume {}", job_path(job), plan.run_id));
    let err = match ending {
        Ending::Done => return commit(engine, streamed, job, plan, summary),
        Ending::Failed(why) => {
            Error::JobFailed(format!("run {} failed: {why}\nthe previous output, if any, is untouched; {resume_hint}", plan.run_id))
        }
        Ending::Interrupted => {
            Error::Interrupted(format!("run {} interrupted; finished tasks are kept in its journal; {resume_hint}", plan.run_id))
        }
    };
    summary.status = if matches!(err, Error::Interrupted(_)) { "interrupted" } else { "failed" }.into();
    summary.error = Some(err.to_string());
    Err(err)
}

fn job_path(job: &JobSpec) -> String {
    job.path.as_ref().map_or_else(|| "job.toml".into(), |p| p.display().to_string())
}

/// The stage whose tasks make the output: the reduces, else the maps.
fn output_stage(job: &JobSpec) -> u32 {
    u32::from(job.reduce.is_some())
}

/// The merged output of a `merge = "concat"` job, begun as its parts
/// commit, where it can be (see `concat.rs`).
fn stream_output(job: &JobSpec, plan: &Plan) -> Option<Streamed> {
    if !concat::one_concatenated_file(job) {
        return None;
    }
    let last = output_stage(job);
    let order = (0..plan.tasks.len() as u32).filter(|&t| plan.tasks[t as usize].stage == last).collect();
    Streamed::start(&job.resolve(&job.output.path), plan.run_dir.path(), order)
}

fn commit(engine: &Engine<'_>, streamed: Option<Streamed>, job: &JobSpec, plan: &Plan, summary: &mut RunSummary) -> Result<()> {
    let parts: Vec<&Part> = engine.book.parts.values().collect();
    if job.output.on_hosts || job.output.held {
        return commit_on_hosts(&parts, job, plan, summary);
    }
    let dest = job.resolve(&job.output.path);
    let run_id = plan.run_id.to_string();
    let committed = match streamed.and_then(|s| s.commit(&engine.book.parts, &dest, &run_id)) {
        Some(done) => done.map(|()| dest.clone()),
        None => output::commit(&dest, &job.output.merge, job.output.name.as_deref(), &parts, &run_id, &job.base_dir),
    };
    match committed {
        Ok(path) => {
            summary.status = "succeeded".into();
            summary.output = Some(path.display().to_string());
            Ok(())
        }
        Err(e) => {
            summary.status = "failed".into();
            summary.error = Some(e.to_string());
            Err(Error::JobFailed(format!("run {}: every task succeeded but the output could not be committed: {e}", plan.run_id)))
        }
    }
}

/// The output of an `[output] on_hosts` job is already in place, part by
/// part, on the hosts: the run records where each one is, with its size
/// and hash (the summary's `parts_on_hosts`, which `shoal pull --output`
/// reads). A held output (a program's cached dataset) likewise, with no
/// path: each part is a block in its host's store.
fn commit_on_hosts(parts: &[&Part], job: &JobSpec, plan: &Plan, summary: &mut RunSummary) -> Result<()> {
    // The run's own journal (synced when the engine stopped) has each
    // committed output's size and hash.
    let journaled = journal::load(&plan.run_dir.journal()).map_err(|e| Error::io("cannot read the run journal", e))?;
    let last = output_stage(job);
    let mut placed = Vec::new();
    for p in parts {
        let task = plan.tasks.iter().find(|t| t.stage == last && t.partition == p.partition);
        let entry = task.and_then(|t| journaled.get(&t.identity));
        let text = p.file.display().to_string();
        let (host, path) = text.split_once(':').unwrap_or(("", &text));
        placed.push(summary::PartOnHost {
            partition: p.partition,
            host: host.to_string(),
            path: path.to_string(),
            bytes: entry.map_or(0, |e| e.size),
            hash: entry.map(|e| e.output.clone()).unwrap_or_default(),
        });
    }
    summary.status = "succeeded".into();
    summary.output = Some(match job.output.held {
        true => format!("{} part(s) held in the block stores of the hosts that made them", placed.len()),
        false => format!("{} part(s) left on the hosts at {}", placed.len(), job.output.path),
    });
    summary.parts_on_hosts = placed;
    Ok(())
}

async fn end_run(cluster: &Cluster, run: &str) {
    for h in &cluster.hosts {
        let _ = h.send(Message::EndRun { run: run.to_string() }).await;
    }
    cluster.close().await;
}
