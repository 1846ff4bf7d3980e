//! What a job of a Dataset program is, the same in the driver and in the
//! tasks that replay the program: the [`JobPlan`] cut from the plan graph,
//! why it runs ([`Purpose`]), what the driver sends its tasks
//! ([`JobPlan::replay_env`]), and how a task computes one partition of it
//! ([`JobPlan::execute`]).
//!
//! This module imports none of its users: the context plans jobs here,
//! the driver (`jobs`) turns them into command jobs, and a task (`task`,
//! `executor`) replays and computes them, each from this one description.
//!
//! A job's map stage reads its *roots* one after another: a map task's
//! partition number is cut into a segment (which root) and a partition of
//! that root by the *layout* (partitions per root), which only the driver
//! knows and sends. With a shuffle, the segments are grouped by shuffle
//! parent (`parent_segments`), since each parent has its own map side.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;

use shoal_wire::task_env::ReplayEnv;

use super::node::{Input, Kind, Node, NodeId, Part, StageFn};

/// Why a job runs, which decides what becomes of its output.
pub(crate) enum Purpose {
    /// An action's result, which every later task can read.
    Result,
    /// Keep the dataset's partitions for later jobs (cache, or a shuffle
    /// read by another shuffle).
    Materialize,
    /// Lines of text written to a file on the driver.
    SaveText(PathBuf),
}

/// One job, as both the driver and its tasks plan it.
pub(crate) struct JobPlan {
    pub index: u32,
    pub node: Rc<Node>,
    /// The shuffle whose reduce side is this job's second stage.
    pub shuffle: Option<Rc<Node>>,
    /// Roots read by the map stage, in segment order.
    pub map_roots: Vec<Rc<Node>>,
    /// Segments of `map_roots` per shuffle parent (one entry without a shuffle).
    pub parent_segments: Vec<usize>,
    pub description: String,
}

/// The partition one task computes.
pub(crate) struct Assignment {
    pub stage: u32,
    pub partition: u32,
    pub input: Input,
}

/// Where a task finds the result of an earlier job (relative to its work dir).
pub fn result_path(job: u32) -> PathBuf {
    PathBuf::from("results").join(job.to_string())
}

impl JobPlan {
    /// Job number `index` for `node`, whose second stage is the reduce
    /// side of `shuffle`, given what is materialized already.
    pub fn new(index: u32, node: &Rc<Node>, shuffle: Option<Rc<Node>>, materialized: &HashSet<NodeId>) -> JobPlan {
        let (map_roots, parent_segments) = match shuffle.as_ref().map(|s| &s.kind) {
            Some(Kind::Shuffle(sh)) => {
                let per: Vec<Vec<Rc<Node>>> = sh.parents.iter().map(|p| p.roots(materialized)).collect();
                let counts = per.iter().map(Vec::len).collect();
                (per.into_iter().flatten().collect(), counts)
            }
            _ => {
                let roots = node.roots(materialized);
                let n = roots.len();
                (roots, vec![n])
            }
        };
        let description = format!("job {index}: {}", node.describe(materialized));
        JobPlan { index, node: node.clone(), shuffle, map_roots, parent_segments, description }
    }

    /// What the driver sends every task of this job so that it can replay
    /// the program up to it: `layout` is the partitions of each map root.
    pub fn replay_env(&self, layout: Vec<u32>, slots: u32) -> ReplayEnv {
        ReplayEnv { job: self.index, layout, plan: self.description.clone(), slots }
    }

    /// Computes one partition of the job into `out`; `layout` is the one
    /// the driver sent.
    pub fn execute(&self, layout: &[u32], finish: &StageFn, task: &Assignment, out: &mut dyn Write) -> io::Result<()> {
        if task.stage == 1 {
            let part = Part { seg: 0, index: task.partition, input: task.input.clone(), reduce_side: true };
            return finish(&part, out);
        }
        let (seg, index) = locate(layout, task.partition)?;
        let part = |seg| Part { seg, index, input: task.input.clone(), reduce_side: false };
        match &self.shuffle.as_ref().map(|s| &s.kind) {
            Some(Kind::Shuffle(sh)) => {
                let (parent, offset) = parent_of(&self.parent_segments, seg);
                (sh.map_sides[parent])(&part(seg - offset), out)
            }
            _ => finish(&part(seg), out),
        }
    }

    /// The call that made the stage a task of `stage` computes, for messages.
    pub fn site_of_stage(&self, stage: u32) -> String {
        self.shuffle.as_ref().filter(|_| stage == 0).unwrap_or(&self.node).site()
    }
}

/// The segment and the partition within it of a map task.
fn locate(layout: &[u32], partition: u32) -> io::Result<(usize, u32)> {
    let mut p = partition;
    for (seg, &n) in layout.iter().enumerate() {
        if p < n {
            return Ok((seg, p));
        }
        p -= n;
    }
    Err(io::Error::other(format!("partition {partition} is beyond the job's layout {layout:?}")))
}

/// Which shuffle parent a segment belongs to, and that parent's first segment.
fn parent_of(parent_segments: &[usize], seg: usize) -> (usize, usize) {
    let mut offset = 0;
    for (i, &n) in parent_segments.iter().enumerate() {
        if seg < offset + n {
            return (i, offset);
        }
        offset += n;
    }
    (parent_segments.len().saturating_sub(1), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_map_to_parents() {
        assert_eq!(parent_of(&[2, 1], 0), (0, 0));
        assert_eq!(parent_of(&[2, 1], 1), (0, 0));
        assert_eq!(parent_of(&[2, 1], 2), (1, 2));
    }

    #[test]
    fn partitions_map_to_segments_by_the_layout() {
        assert_eq!(locate(&[2, 0, 3], 0).unwrap(), (0, 0));
        assert_eq!(locate(&[2, 0, 3], 1).unwrap(), (0, 1));
        assert_eq!(locate(&[2, 0, 3], 2).unwrap(), (2, 0));
        assert_eq!(locate(&[2, 0, 3], 4).unwrap(), (2, 2));
        assert_eq!(locate(&[2, 0, 3], 5).unwrap_err().to_string(), "partition 5 is beyond the job's layout [2, 0, 3]");
    }

    #[test]
    fn results_live_under_results() {
        assert_eq!(result_path(7), PathBuf::from("results/7"));
    }
}
