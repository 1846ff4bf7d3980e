//! One function per subcommand: resolve files, call the library, print.

use std::path::{Path, PathBuf};

use anyhow::Context;
use shoal::driver;
use shoal::driver::run::id::RunId;
use shoal::driver::state::StateDir;
use shoal::printable::printable;
use shoal_core::cluster::ClusterSpec;
use shoal_core::templates;

use crate::cli::{ClusterArg, Command};

/// Runs a command and returns the process exit code.
pub fn dispatch(cli: crate::cli::Cli) -> anyhow::Result<i32> {
    let command = match cli.command {
        Command::AgentGuard { workdir, agent, group } => {
            // No runtime: the guardian only waits, then walks /proc.
            return Ok(shoal::agent::guard::run(&shoal::agent::guard::GuardOptions { workdir, agent, group }));
        }
        // It may detach (fork) first, which must happen before any thread.
        Command::Worker(args) => return crate::standing::worker(args),
        other => other,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = on_runtime(&rt, command);
    if result.as_ref().is_err_and(|e| matches!(crate::shoal_error(e), Some(shoal::Error::Interrupted(_)))) {
        // Interrupted means exit now: wait for no blocking thread (a
        // journal fsync, a log writer) the way dropping the runtime would.
        rt.shutdown_background();
    }
    result
}

fn on_runtime(rt: &tokio::runtime::Runtime, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Init { dir, force } => init(&dir, force),
        Command::Check { cluster, json } => rt.block_on(check(&cluster, json)),
        Command::Exec { cluster, json, command } => rt.block_on(exec(&cluster, json, &command.join(" "))),
        Command::Run { job, cluster, dry_run, resume, speculate, sets, json } => {
            rt.block_on(run(RunArgs { job, cluster, dry_run, resume, speculate, sets, json }))
        }
        Command::Map { job, cluster, dry_run, speculate, json, command } => {
            rt.block_on(map(job, cluster, dry_run, speculate, json, &command.join(" ")))
        }
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "shoal", &mut std::io::stdout());
            Ok(0)
        }
        Command::Report { run, open } => crate::runs::report(&run, open),
        Command::Runs { json } => crate::runs::runs(json),
        Command::Logs { run, host, task, merged, follow, json } => {
            crate::runs::show_logs(&crate::runs::LogArgs { run, host, task, merged, follow, json })
        }
        Command::Push { file, to, split, cluster, json } => rt.block_on(push(&cluster, &file, &to, split, json)),
        Command::Pull { output: Some(run), to, cluster, json, .. } => rt.block_on(pull_output(&cluster, &run, &to, json)),
        Command::Pull { path, to, combine, cluster, json, .. } => {
            rt.block_on(pull(&cluster, path.as_deref().unwrap_or_default(), &to, combine.as_deref(), json))
        }
        Command::Agent { args } => {
            // A bad command line is a usage error (exit 2), as clap's were.
            let args = shoal::agent::AgentArgs::from_args(&args).map_err(|e| shoal::Error::Usage(e.to_string()))?;
            let opts = shoal::agent::AgentOptions::from_args(args)?;
            rt.block_on(shoal::agent::run(opts))?;
            Ok(0)
        }
        Command::Cluster(c) => rt.block_on(crate::standing::cluster(c)),
        Command::Coordinator { name } => {
            rt.block_on(shoal::standing::control::serve_coordinator(&name))?;
            Ok(0)
        }
        Command::AgentGuard { .. } | Command::Worker(_) => unreachable!("handled above"),
    }
}

/// The cluster of a command: a standing cluster's share (`--on`), else
/// `--cluster`/`SHOAL_CLUSTER`, else `./cluster.toml`, else this machine
/// alone. `label` names the application on a standing cluster.
pub async fn load_cluster(arg: &ClusterArg, label: &str) -> anyhow::Result<ClusterSpec> {
    let spec = match &arg.on {
        Some(on) => shoal::standing::link::apply(on, label).await.map_err(shoal::Error::from)?,
        None => driver::specs::find_cluster(arg.cluster.as_deref())?,
    };
    if arg.hosts.is_empty() {
        return Ok(spec);
    }
    Ok(spec.select(&arg.hosts).map_err(shoal::Error::from)?)
}

fn init(dir: &Path, force: bool) -> anyhow::Result<i32> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in [("cluster.toml", templates::CLUSTER_TEMPLATE), ("job.toml", templates::JOB_TEMPLATE)] {
        let path = dir.join(name);
        if path.exists() && !force {
            return Err(shoal::Error::Usage(format!("{} already exists; pass --force to overwrite it", path.display())).into());
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("next: edit cluster.toml, then `shoal check`");
    Ok(0)
}

async fn check(arg: &ClusterArg, json: bool) -> anyhow::Result<i32> {
    let spec = load_cluster(arg, "shoal check").await?;
    let rows = driver::check::check(&spec).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", printable(&driver::check::render(&rows)));
    }
    let failed = rows.iter().filter(|r| !r.ready).count();
    Ok(if failed == 0 { 0 } else { 3 })
}

async fn exec(arg: &ClusterArg, json: bool, command: &str) -> anyhow::Result<i32> {
    let spec = load_cluster(arg, "shoal exec").await?;
    let cluster = driver::connect(&spec).await;
    let results = driver::exec::exec(&cluster, command).await;
    cluster.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", printable(&driver::exec::render(&results)));
    }
    let failed: Vec<&str> = results.iter().filter(|r| !r.ok).map(|r| r.host.as_str()).collect();
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("error: the command failed on {} of {} hosts: {}", failed.len(), results.len(), failed.join(", "));
    Ok(1)
}

struct RunArgs {
    job: PathBuf,
    cluster: ClusterArg,
    dry_run: bool,
    resume: Option<String>,
    speculate: bool,
    sets: Vec<String>,
    json: bool,
}

async fn run(a: RunArgs) -> anyhow::Result<i32> {
    let job = driver::specs::read_job(&a.job, &a.sets)?;
    execute(job, a).await
}

async fn map(
    m: crate::oneliner::MapArgs,
    cluster: ClusterArg,
    dry_run: bool,
    speculate: bool,
    json: bool,
    command: &str,
) -> anyhow::Result<i32> {
    let text = crate::oneliner::job_text(&m, command);
    let job = shoal_core::job::JobSpec::parse(&text, Path::new("(shoal map)")).map_err(shoal::Error::from)?;
    if let Some(path) = &m.save {
        std::fs::write(path, job.to_toml()).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}; run it with: shoal run {}", path.display(), path.display());
        return Ok(0);
    }
    execute(job, RunArgs { job: PathBuf::from("(shoal map)"), cluster, dry_run, resume: None, speculate, sets: vec![], json }).await
}

async fn execute(job: shoal_core::job::JobSpec, a: RunArgs) -> anyhow::Result<i32> {
    let spec = load_cluster(&a.cluster, &job.job.name).await?;
    let state = crate::runs::state_dir();
    let resume = match a.resume.as_deref() {
        Some("latest") => Some(latest_of(&state, &job.job.name)?),
        Some(id) => Some(crate::runs::resolve_run(&state, id)?),
        None => None,
    };
    let opts = shoal::driver::run::RunOptions {
        state_dir: state,
        dry_run: a.dry_run,
        resume,
        speculate: a.speculate,
        quiet: a.json,
        resume_hint: None,
    };
    let result = shoal::driver::run::run(&spec, &job, &opts).await;
    if let Ok(Some(plan)) = result.as_ref().map(|s| s.plan.as_deref()) {
        print!("{plan}");
    }
    match result {
        Ok(summary) if a.json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Ok(summary) if !a.dry_run => eprint!("{}", printable(&summary.render())),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// The newest earlier run of the same job that has a journal.
fn latest_of(state: &Path, job: &str) -> anyhow::Result<RunId> {
    let state = StateDir::new(state);
    state.latest_for_job(job).ok_or_else(|| {
        shoal::Error::Usage(format!("nothing to resume: no earlier run of job {job:?} in {}", state.runs().display())).into()
    })
}

async fn push(arg: &ClusterArg, file: &Path, to: &str, split: bool, json: bool) -> anyhow::Result<i32> {
    // A FIFO would hang the hashing forever: refuse it before connecting.
    driver::input::check_regular(file, "shoal push:", "shoal push sends regular files only").map_err(shoal::Error::from)?;
    let spec = load_cluster(arg, "shoal push/pull").await?;
    let state = crate::runs::state_dir();
    if split {
        // It records the cut there (`.shoal/pushed/`): owner-only, like all state.
        driver::run::private::dir(&state).with_context(|| format!("cannot create {}", state.display()))?;
    }
    let cluster = driver::connect(&spec).await;
    let rows = driver::transfer::push(&cluster, file, to, split, &state).await;
    cluster.close().await;
    transfer_result(rows?, &cluster, json, "push")
}

async fn pull(arg: &ClusterArg, path: &str, to: &Path, combine: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    let spec = load_cluster(arg, "shoal push/pull").await?;
    let cluster = driver::connect(&spec).await;
    let rows = driver::transfer::pull(&cluster, path, to, combine).await;
    cluster.close().await;
    transfer_result(rows?, &cluster, json, "pull")
}

/// `shoal pull --output RUN --to DIR`: the parts RUN left on the hosts.
async fn pull_output(arg: &ClusterArg, run: &str, to: &Path, json: bool) -> anyhow::Result<i32> {
    let state = crate::runs::state_dir();
    let id = crate::runs::resolve_run(&state, run)?;
    let summary_path = StateDir::new(&state).run(&id).summary();
    let text = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("cannot read the summary of run {id} ({})", summary_path.display()))?;
    let summary: shoal::driver::run::summary::RunSummary = serde_json::from_str(&text)?;
    if summary.parts_on_hosts.is_empty() {
        return Err(shoal::Error::Usage(format!(
            "run {id} left no output on the hosts (its output is {}); --output is for jobs with [output] on_hosts = true",
            summary.output.as_deref().unwrap_or("none")
        ))
        .into());
    }
    if summary.parts_on_hosts.iter().all(|p| p.path.is_empty()) {
        return Err(shoal::Error::Usage(format!(
            "run {id} kept a program's cached dataset: its parts are blocks in the hosts' stores, for the program's later \
             jobs, not files to pull; --output is for jobs with [output] on_hosts = true"
        ))
        .into());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let spec = load_cluster(arg, "shoal push/pull").await?;
    let cluster = driver::connect(&spec).await;
    let rows = driver::transfer::pull_output(&cluster, &summary.parts_on_hosts, to).await;
    cluster.close().await;
    transfer_result(rows?, &cluster, json, "pull")
}

fn transfer_result(rows: Vec<driver::transfer::TransferRow>, cluster: &driver::Cluster, json: bool, what: &str) -> anyhow::Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut table = vec![["HOST", "PATH", "SENT", "SKIPPED", "STATUS"].map(String::from).to_vec()];
        for r in &rows {
            let status = r.error.clone().unwrap_or_else(|| "ok".into());
            table.push(vec![
                r.host.clone(),
                r.path.clone(),
                shoal::format::human_bytes(r.bytes),
                shoal::format::human_bytes(r.skipped),
                status,
            ]);
        }
        for f in &cluster.failed {
            table.push(vec![f.spec.name.clone(), "-".into(), "-".into(), "-".into(), f.error.to_string()]);
        }
        print!("{}", printable(&shoal::format::align(&table)));
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.host.as_str())
        .chain(cluster.failed.iter().map(|f| f.spec.name.as_str()))
        .collect();
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("error: {what} failed on {}", printable(&failed.join(", ")));
    Ok(if rows.iter().all(|r| r.error.is_some()) { 3 } else { 1 })
}
