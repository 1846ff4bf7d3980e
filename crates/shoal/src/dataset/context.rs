//! The [`Context`] of a Dataset program: its role, its sources, and the
//! numbering of jobs that keeps every process of a program in step.
//!
//! Jobs are numbered in the order the program reaches them. A job is what
//! an action needs, preceded by the jobs that prepare it: materializing
//! cached datasets, materializing a shuffle that another shuffle reads
//! (a job has at most one shuffle), and sampling keys for a sort. The
//! planning is a pure function of the plan graph and of what is already
//! materialized, so a task replaying `main` numbers jobs exactly as the
//! driver did and stops at the one it was started for.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use super::jobs::Driver;
use super::node::{Ids, Kind, Node, NodeId, Source, StageFn};
use super::plan::{JobPlan, Purpose};
use super::task::TaskRole;
use super::{codec, flags, Data, Dataset};
use crate::{Error, Result};

/// A program's handle on the cluster: sources come from it, and it says
/// which process this is.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub ids: Ids,
    jobs: Cell<u32>,
    pub materialized: RefCell<HashSet<NodeId>>,
    role: Role,
    args: Vec<String>,
}

enum Role {
    Driver(Box<Driver>),
    Task(TaskRole),
}

impl Context {
    /// The context of this process, from its environment and arguments.
    pub(crate) fn from_env(args: Vec<String>) -> Result<Context> {
        let (role, args) = match TaskRole::from_env()? {
            Some(task) => (Role::Task(task), args),
            None => {
                let f = flags::parse(&args)?;
                let program_args = f.program_args.clone();
                (Role::Driver(Box::new(Driver::new(f)?)), program_args)
            }
        };
        let inner = Inner { ids: Ids::default(), jobs: Cell::new(0), materialized: RefCell::new(HashSet::new()), role, args };
        Ok(Context { inner: Rc::new(inner) })
    }

    /// The program's own arguments (Shoal's flags removed), the same in
    /// every process.
    pub fn args(&self) -> &[String] {
        &self.inner.args
    }

    /// True in the process the user started; false in tasks. Print and
    /// write files on the driver only.
    pub fn is_driver(&self) -> bool {
        matches!(self.inner.role, Role::Driver(_))
    }

    /// The lines of a text file on the driver (or of every file of a
    /// directory, one partition per file), cut into line-aligned
    /// partitions and shipped to the hosts.
    #[track_caller]
    pub fn text_file(&self, path: impl AsRef<std::path::Path>) -> Result<Dataset<String>> {
        self.text_file_with(path, None)
    }

    /// [`Context::text_file`] with a partition count.
    #[track_caller]
    pub fn text_file_with(&self, path: impl AsRef<std::path::Path>, partitions: Option<u32>) -> Result<Dataset<String>> {
        let path = path.as_ref().display().to_string();
        if let Role::Driver(d) = &self.inner.role {
            d.check_input(&path)?;
        }
        Ok(Dataset::source(self, "text_file", Source::Text { path, partitions }))
    }

    /// The lines of a file that lives on the hosts themselves, one
    /// partition per host of the cluster, each read where it lives: data
    /// already spread over the machines is never sent. `{host}` in the
    /// path is replaced by the host's name in the cluster file; a relative
    /// path starts in the home directory on the host. A host that is lost
    /// takes its partition with it: the job fails, saying so.
    #[track_caller]
    pub fn text_file_on_hosts(&self, path: &str) -> Dataset<String> {
        Dataset::source(self, "text_file_on_hosts", Source::HostText { path: path.to_string() })
    }

    /// A dataset of the given records in `partitions` nearly equal parts.
    /// A record that cannot be encoded is an error here, on the driver,
    /// naming the call and the record.
    #[track_caller]
    pub fn parallelize<T: Data>(&self, items: Vec<T>, partitions: u32) -> Result<Dataset<T>> {
        let at = std::panic::Location::caller();
        let parts = if self.is_driver() {
            // Only the driver ships the records; tasks read them from their input.
            encode_parts(&items, partitions).map_err(|(i, e)| {
                Error::Usage(format!(
                    "parallelize at {}:{}:{}: record {i} of {} cannot be encoded ({e}); every record must serialize \
                     with serde (a derived Serialize does), so fix the type's Serialize or leave the record out",
                    at.file(),
                    at.line(),
                    at.column(),
                    items.len()
                ))
            })?
        } else {
            vec![Vec::new(); partitions.max(1) as usize]
        };
        Ok(Dataset::source(self, "parallelize", Source::Records { parts }))
    }

    /// The integers of `range`, in `partitions` nearly equal parts.
    #[track_caller]
    pub fn range(&self, range: std::ops::Range<i64>, partitions: u32) -> Dataset<i64> {
        let src = Source::Range { start: range.start, end: range.end.max(range.start), partitions: partitions.max(1) };
        Dataset::source(self, "range", src)
    }

    pub(crate) fn materialized(&self) -> std::cell::Ref<'_, HashSet<NodeId>> {
        self.inner.materialized.borrow()
    }

    /// Runs the jobs an action needs and returns its raw result (the
    /// concatenated output lines), or `None` for output kept elsewhere.
    pub(crate) fn run_job(&self, node: &Rc<Node>, finish: StageFn, purpose: Purpose) -> Result<Option<Vec<u8>>> {
        let skip_self = matches!(purpose, Purpose::Materialize);
        let shuffle = self.prepare(node, skip_self)?;
        let plan = self.plan(node, shuffle);
        let out = match &self.inner.role {
            Role::Driver(d) => d.run(&plan, &purpose)?,
            Role::Task(t) => t.reach(&plan, &finish, &purpose)?,
        };
        if matches!(purpose, Purpose::Materialize) {
            self.inner.materialized.borrow_mut().insert(node.id);
        }
        Ok(out)
    }

    /// Runs the jobs that must come before a job for `node`; returns the
    /// shuffle of its second stage, if it has one.
    fn prepare(&self, node: &Rc<Node>, skip_self: bool) -> Result<Option<Rc<Node>>> {
        self.materialize_caches(node, skip_self)?;
        let roots = node.roots(&self.materialized());
        let unmaterialized = |n: &Rc<Node>| matches!(n.kind, Kind::Shuffle(_)) && !self.materialized().contains(&n.id);
        if let [only] = roots.as_slice() {
            if unmaterialized(only) {
                self.prepare_shuffle(only)?;
                return Ok(Some(only.clone()));
            }
        }
        for r in roots.iter().filter(|r| unmaterialized(r)) {
            self.materialize(r)?;
        }
        Ok(None)
    }

    fn materialize_caches(&self, node: &Rc<Node>, skip_self: bool) -> Result<()> {
        let mut caches = Vec::new();
        node.unmaterialized_caches(&self.materialized(), &mut caches);
        for c in caches.iter().filter(|c| !(skip_self && c.id == node.id)) {
            self.materialize(c)?;
        }
        Ok(())
    }

    /// Makes every parent of a shuffle readable by a map stage, and
    /// samples split points for a sort.
    fn prepare_shuffle(&self, shuffle: &Rc<Node>) -> Result<()> {
        let Kind::Shuffle(sh) = &shuffle.kind else { return Ok(()) };
        for p in &sh.parents {
            self.materialize_caches(p, false)?;
            let shuffles: Vec<Rc<Node>> =
                p.roots(&self.materialized()).into_iter().filter(|r| matches!(r.kind, Kind::Shuffle(_))).collect();
            for r in shuffles.iter().filter(|r| !self.materialized().contains(&r.id)) {
                self.materialize(r)?;
            }
        }
        if let Some(range) = &sh.range {
            let parent = &sh.parents[0];
            let raw = self.run_job(parent, range.sampler.clone(), Purpose::Result)?.unwrap_or_default();
            let partitions = sh.partitions.unwrap_or_else(|| self.default_shuffle_partitions());
            *range.splits.borrow_mut() = Some(super::keyed::split_points(&raw, partitions));
        }
        Ok(())
    }

    fn materialize(&self, node: &Rc<Node>) -> Result<()> {
        self.run_job(node, node.encode.clone(), Purpose::Materialize).map(|_| ())
    }

    fn plan(&self, node: &Rc<Node>, shuffle: Option<Rc<Node>>) -> JobPlan {
        let index = self.inner.jobs.get();
        self.inner.jobs.set(index + 1);
        JobPlan::new(index, node, shuffle, &self.materialized())
    }

    /// Reduce partitions when a shuffle does not say: one per slot.
    pub(crate) fn default_shuffle_partitions(&self) -> u32 {
        match &self.inner.role {
            Role::Driver(d) => d.slots(),
            // Tasks never pick: the driver passes its choice.
            Role::Task(t) => t.slots(),
        }
    }

    /// End of `main`: the driver cleans its scratch; a task that gets here
    /// never reached its job, so the plans differ.
    pub(crate) fn finish(&self) -> Result<()> {
        match &self.inner.role {
            Role::Driver(d) => d.finish(),
            Role::Task(t) => t.program_ended(self.inner.jobs.get()),
        }
    }
}

/// The records of `parallelize` encoded into `partitions` nearly equal
/// parts (at least one); the error names the record (from 0) that failed.
fn encode_parts<T: Data>(items: &[T], partitions: u32) -> std::result::Result<Vec<Vec<u8>>, (usize, codec::CodecError)> {
    let n = partitions.max(1) as usize;
    let mut parts = vec![Vec::new(); n];
    let per = items.len().div_ceil(n).max(1);
    for (i, item) in items.iter().enumerate() {
        codec::put_record(item, &mut parts[(i / per).min(n - 1)]).map_err(|e| (i, e))?;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize, Serializer};

    use super::*;

    /// A record whose Serialize fails for odd numbers.
    #[derive(Clone, Deserialize)]
    struct OddFails(u32);

    impl Serialize for OddFails {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            if self.0 % 2 == 1 {
                return Err(serde::ser::Error::custom("odd"));
            }
            s.serialize_u32(self.0)
        }
    }

    #[test]
    fn records_are_cut_into_nearly_equal_parts() {
        let parts = encode_parts(&[1u8, 2, 3, 4, 5], 2).unwrap();
        let counts: Vec<usize> = parts.iter().map(|p| p.iter().filter(|&&b| b == b'\n').count()).collect();
        assert_eq!(counts, [3, 2]);
        assert_eq!(encode_parts::<u8>(&[], 0).unwrap(), [Vec::<u8>::new()]);
    }

    #[test]
    fn a_record_that_cannot_be_encoded_is_named_not_a_panic() {
        let (i, e) = encode_parts(&[OddFails(0), OddFails(2), OddFails(3)], 2).unwrap_err();
        assert_eq!(i, 2);
        assert!(e.to_string().starts_with("cannot encode a record: "), "{e}");
    }
}
