//! `shoal run --dry-run`: the plan printed (partitions, inputs, bytes and
//! the host each task is pinned to) and nothing run. The hosts come from
//! the run's own [`Placement`], so they are the ones the run would use;
//! the slots of a host whose file names none are guessed as this
//! machine's cores, since nothing connects.

use shoal_core::cluster::{ClusterSpec, HostSpec};
use shoal_core::job::JobSpec;

use super::placement::Placement;
use super::prepare::Plan;
use super::summary::RunSummary;

/// Removes the run dir that preparing the plan made, and returns a
/// summary with status `dry-run` whose `plan` is the table for the
/// binary to print.
pub fn dry_run(spec: &ClusterSpec, job: &JobSpec, plan: &Plan) -> RunSummary {
    let hosts: Vec<(&HostSpec, u32)> = spec.hosts.iter().map(|h| (h, h.slots.unwrap_or(super::cores()))).collect();
    let placement = Placement::new(job, plan, &hosts);
    let mut rows = vec![vec!["PARTITION".to_string(), "INPUT".into(), "BYTES".into(), "HOST".into()]];
    for (t, task) in plan.tasks.iter().enumerate() {
        rows.push(vec![
            task.partition.to_string(),
            task.input_name.to_string(),
            task.input.as_ref().map_or(0, |s| s.len).to_string(),
            placement.pinned[t].map_or_else(|| "(dynamic: first free slot)".into(), |h| spec.hosts[h].name.clone()),
        ]);
    }
    let mut text = crate::format::align(&rows);
    let bytes: u64 = plan.tasks.iter().filter_map(|t| t.input.as_ref()).map(|s| s.len).sum();
    let sync: u64 = plan.manifest.iter().map(|m| m.entry.size).sum();
    text += &format!(
        "{} tasks over {} hosts, {} input bytes, {} files to sync ({} bytes), seed {}; nothing was run\n",
        plan.tasks.len(),
        spec.hosts.len(),
        bytes,
        plan.manifest.len(),
        sync,
        job.job.seed
    );
    let _ = std::fs::remove_dir_all(plan.run_dir.path());
    RunSummary {
        run: plan.run_id.to_string(),
        job: job.job.name.clone(),
        seed: job.job.seed,
        status: "dry-run".into(),
        tasks: plan.tasks.len(),
        plan: Some(text),
        ..RunSummary::default()
    }
}
