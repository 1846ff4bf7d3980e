//! Where tasks go before any host has reported: the launch order (the
//! maps in a seeded shuffle, then the reduces) and the static pins (a
//! partition whose data lives on one host; with `[input] weighted`, shares
//! in proportion to speed x slots, dealt in launch order). The run hands
//! both to the scheduler and `--dry-run` prints the same pins, so the dry
//! run shows the hosts the run will use. Locality (which host already
//! holds an input) needs connected hosts and stays with the run.

use shoal_core::cluster::HostSpec;
use shoal_core::job::JobSpec;
use shoal_core::plan::{seeded_order, weighted_shares};

use super::prepare::Plan;

/// The launch order and pins of a run's tasks.
#[derive(Debug)]
pub struct Placement {
    /// Task indices in launch order.
    pub order: Vec<usize>,
    /// Per task, the index of the host it is pinned to (into the hosts
    /// placement was given), if any.
    pub pinned: Vec<Option<usize>>,
}

impl Placement {
    /// Places the plan's tasks on `hosts`, each with its slots.
    pub fn new(job: &JobSpec, plan: &Plan, hosts: &[(&HostSpec, u32)]) -> Placement {
        let maps = plan.tasks.iter().filter(|t| t.stage == 0).count();
        let mut order = if in_partition_order(job) { (0..maps).collect() } else { seeded_order(maps, job.job.seed) };
        let shares = job.input.weighted.then(|| deal(&order, hosts));
        order.extend(maps..plan.tasks.len());
        let pinned = plan
            .tasks
            .iter()
            .enumerate()
            .map(|(t, planned)| match &planned.host {
                Some(name) => hosts.iter().position(|(h, _)| h.name == *name),
                None => shares.as_ref().and_then(|s| s.get(t).copied()),
            })
            .collect();
        Placement { order, pinned }
    }
}

/// Maps launch in partition order when their outputs, one per partition,
/// are concatenated in that order into one file: the merged output is
/// then written while the job runs (`concat.rs`), not all at the end. The
/// seed orders the others (a weighted share, or outputs merged any other
/// way), which is what makes their spread reproducible.
fn in_partition_order(job: &JobSpec) -> bool {
    job.reduce.is_none() && !job.input.weighted && super::concat::one_concatenated_file(job)
}

/// Static shares in proportion to speed x slots, dealt to the map tasks in
/// `order`: each map task's host.
fn deal(order: &[usize], hosts: &[(&HostSpec, u32)]) -> Vec<usize> {
    let weights: Vec<f64> = hosts.iter().map(|(h, slots)| h.speed * f64::from(*slots)).collect();
    let shares = weighted_shares(order.len() as u32, &weights);
    let mut host_of = vec![0; order.len()];
    let mut next = order.iter();
    for (h, share) in shares.iter().enumerate() {
        for t in next.by_ref().take(*share as usize) {
            host_of[*t] = h;
        }
    }
    host_of
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use shoal_core::cluster::ClusterSpec;

    use super::super::prepare::PlannedTask;
    use super::*;

    /// A plan of maps (each maybe held by one host) and `reduces` reduces.
    fn plan(maps: &[Option<&str>], reduces: u32) -> Plan {
        let task = |stage, partition, host: Option<&str>| PlannedTask {
            stage,
            partition,
            input: None,
            input_name: Arc::from("in"),
            arg: None,
            identity: format!("id-{stage}-{partition}"),
            host: host.map(str::to_string),
        };
        let mut tasks: Vec<PlannedTask> = maps.iter().enumerate().map(|(p, h)| task(0, p as u32, *h)).collect();
        tasks.extend((0..reduces).map(|r| task(1, r, None)));
        let run_id = crate::driver::run::id::RunId::new("run", std::time::UNIX_EPOCH, 1);
        let run_dir = crate::driver::state::StateDir::new("/state").run(&run_id);
        Plan { run_id, run_dir, manifest: vec![], tasks, params: vec![], shared_input: false }
    }

    fn place(weighted: bool, maps: &[Option<&str>], reduces: u32) -> Placement {
        let reduce = "[reduce]\ncommand = \"cat\"\n";
        place_job(
            &format!("[input]\npath = \"in\"\nweighted = {weighted}\n[map]\ncommand = \"cat\"\n{reduce}[output]\npath = \"out\"\n"),
            maps,
            reduces,
        )
    }

    fn place_job(job: &str, maps: &[Option<&str>], reduces: u32) -> Placement {
        let cluster = "[hosts.a]\ntransport = \"local\"\n[hosts.b]\ntransport = \"local\"\nspeed = 3\n";
        let cluster = ClusterSpec::parse(cluster, Path::new("cluster.toml")).unwrap();
        let job = JobSpec::parse(job, Path::new("job.toml")).unwrap();
        let hosts: Vec<(&HostSpec, u32)> = cluster.hosts.iter().map(|h| (h, 1)).collect();
        Placement::new(&job, &plan(maps, reduces), &hosts)
    }

    #[test]
    fn weighted_maps_are_dealt_by_speed_and_reduces_start_anywhere_after_them() {
        let p = place(true, &[None; 8], 2);
        assert_eq!(&p.order[8..], [8, 9]);
        let on_b = p.pinned[..8].iter().filter(|h| **h == Some(1)).count();
        assert_eq!((on_b, p.pinned[..8].iter().filter(|h| **h == Some(0)).count()), (6, 2));
        assert_eq!(&p.pinned[8..], [None, None]);
    }

    #[test]
    fn maps_whose_outputs_are_concatenated_launch_in_partition_order_and_others_in_the_seeded_one() {
        let job = |merge: &str, weighted: bool| {
            format!("[job]\nseed = 5\n[input]\npath = \"in\"\nweighted = {weighted}\n[map]\ncommand = \"cat\"\n[output]\npath = \"out\"\nmerge = \"{merge}\"\n")
        };
        let seeded: Vec<usize> = seeded_order(8, 5);
        assert_ne!(seeded, (0..8).collect::<Vec<_>>(), "the seed shuffles 8 tasks");
        assert_eq!(place_job(&job("concat", false), &[None; 8], 0).order, (0..8).collect::<Vec<_>>());
        assert_eq!(place_job(&job("csv", false), &[None; 8], 0).order, seeded);
        assert_eq!(place_job(&job("concat", true), &[None; 8], 0).order, seeded, "a weighted share keeps its seeded deal");
        assert_eq!(place(false, &[None; 8], 1).order[..8], seeded_order(8, 0), "a reduce job's maps keep the seeded order");
    }

    #[test]
    fn a_partition_held_by_one_host_is_pinned_there_and_others_are_free() {
        let p = place(false, &[None, Some("b"), Some("gone")], 1);
        assert_eq!(p.pinned, [None, Some(1), None, None]);
    }
}
