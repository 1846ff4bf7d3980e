//! The plan graph: one [`Node`] per dataset, typed closures kept beside it
//! in [`super::Dataset`].
//!
//! A node knows its parents, the operation that made it and the source
//! line of the call (`#[track_caller]`), which is all the planner needs to
//! cut jobs and all an error needs to say where. *Roots* are where a job's
//! map stage starts reading: sources, shuffles (their reduce side), and
//! materialized (cached) datasets. A task is told which *segment* of its
//! node's roots its partition belongs to, so a union of two branches over
//! the same source still computes each branch once.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io;
use std::panic::Location;
use std::path::PathBuf;
use std::rc::Rc;

/// Creation number of a node; the same in every process that builds the
/// same plan.
pub type NodeId = u32;

/// Writes the lines of one partition of a stage's output.
pub type StageFn = Rc<dyn Fn(&Part, &mut dyn io::Write) -> io::Result<()>>;

/// One partition as a task sees it.
#[derive(Clone, Debug)]
pub struct Part {
    /// Which of the node's roots the partition comes from (map side).
    pub seg: usize,
    /// Partition number within that root (map side) or reduce partition.
    pub index: u32,
    /// The task's input.
    pub input: Input,
    /// The reduce side of the job's shuffle.
    pub reduce_side: bool,
}

/// Where a task's input bytes are: a file (`$SHOAL_INPUT`, a block), or
/// memory (a small partition that came inside the task's request).
#[derive(Clone, Debug)]
pub enum Input {
    File(PathBuf),
    Data(Rc<[u8]>),
}

impl Input {
    /// A buffered reader of the whole input.
    pub fn reader(&self) -> io::Result<Box<dyn io::BufRead>> {
        Ok(match self {
            Input::File(path) => Box::new(io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?)),
            Input::Data(data) => Box::new(io::Cursor::new(data.clone())),
        })
    }

    /// The whole input as text (small inputs: a range, a host file's name).
    pub fn text(&self) -> io::Result<String> {
        let mut s = String::new();
        self.reader()?.read_to_string(&mut s)?;
        Ok(s)
    }

    /// For messages: the file, or "the task's request".
    pub fn describe(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Data(_) => "(sent with the task)".into(),
        }
    }
}

/// Where data enters a plan.
pub enum Source {
    /// Lines of a text file (or of every file of a directory).
    Text { path: String, partitions: Option<u32> },
    /// Records handed over by the driver, already encoded, per partition.
    Records { parts: Vec<Vec<u8>> },
    /// The integers `start..end`.
    Range { start: i64, end: i64, partitions: u32 },
    /// Lines of a file that every host has its own copy of (`{host}` in
    /// the path is the host's name): one partition per host, run there.
    HostText { path: String },
}

/// A shuffle: the map side of each parent writes keyed lines; the reduce
/// side is the node's own compute.
pub struct Shuffle {
    pub parents: Vec<Rc<Node>>,
    /// One per parent, in order.
    pub map_sides: Vec<StageFn>,
    /// Reduce partitions; `None`: the job's default.
    pub partitions: Option<u32>,
    /// For a sort: the sampler of keys, and the split points it led to.
    pub range: Option<RangeSplit>,
}

/// Range partitioning by sampled split points (`sort_by_key`).
pub struct RangeSplit {
    pub sampler: StageFn,
    pub splits: Rc<RefCell<Option<Vec<Vec<u8>>>>>,
}

pub enum Kind {
    Source(Source),
    Narrow(Rc<Node>),
    Union(Vec<Rc<Node>>),
    Shuffle(Shuffle),
}

pub struct Node {
    pub id: NodeId,
    /// The method that made it: `map`, `reduce_by_key`, ...
    pub op: &'static str,
    pub at: &'static Location<'static>,
    pub kind: Kind,
    /// `cache()` was called: materialize before the first use.
    pub cached: Cell<bool>,
    /// Writes one partition of this dataset as record lines (to
    /// materialize it).
    pub encode: StageFn,
}

impl Node {
    /// `map at examples/wordcount.rs:9:10`.
    pub fn site(&self) -> String {
        format!("{} at {}:{}:{}", self.op, self.at.file(), self.at.line(), self.at.column())
    }

    /// This node's roots given what is materialized, in segment order.
    pub fn roots(self: &Rc<Self>, materialized: &HashSet<NodeId>) -> Vec<Rc<Node>> {
        if materialized.contains(&self.id) {
            return vec![self.clone()];
        }
        match &self.kind {
            Kind::Source(_) | Kind::Shuffle(_) => vec![self.clone()],
            Kind::Narrow(p) => p.roots(materialized),
            Kind::Union(ps) => ps.iter().flat_map(|p| p.roots(materialized)).collect(),
        }
    }

    /// Cached nodes between this one and its roots (itself included) that
    /// are not materialized yet, parents first.
    pub fn unmaterialized_caches(self: &Rc<Self>, materialized: &HashSet<NodeId>, out: &mut Vec<Rc<Node>>) {
        if materialized.contains(&self.id) {
            return;
        }
        match &self.kind {
            Kind::Narrow(p) => p.unmaterialized_caches(materialized, out),
            Kind::Union(ps) => ps.iter().for_each(|p| p.unmaterialized_caches(materialized, out)),
            Kind::Source(_) | Kind::Shuffle(_) => {}
        }
        if self.cached.get() && !out.iter().any(|n| n.id == self.id) {
            out.push(self.clone());
        }
    }

    /// The plan down to the roots, as text: the same in every process that
    /// built the same plan (the driver compares it with each task's).
    pub fn describe(self: &Rc<Self>, materialized: &HashSet<NodeId>) -> String {
        let mut s = format!("#{} {}", self.id, self.site());
        if materialized.contains(&self.id) {
            s.push_str(" (materialized)");
            return s;
        }
        let parents: Vec<&Rc<Node>> = match &self.kind {
            Kind::Source(src) => {
                s.push_str(&src.describe());
                vec![]
            }
            Kind::Narrow(p) => vec![p],
            Kind::Union(ps) => ps.iter().collect(),
            Kind::Shuffle(sh) => sh.parents.iter().collect(),
        };
        if !parents.is_empty() {
            let inner: Vec<String> = parents.iter().map(|p| p.describe(materialized)).collect();
            s.push_str(&format!(" <- [{}]", inner.join(", ")));
        }
        s
    }
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Text { path, partitions } => format!(" {path:?} partitions={partitions:?}"),
            Source::Records { parts } => format!(" {} partitions", parts.len()),
            Source::Range { start, end, partitions } => format!(" {start}..{end} partitions={partitions}"),
            Source::HostText { path } => format!(" {path:?} on every host"),
        }
    }
}

/// Hands out node ids in creation order.
#[derive(Default)]
pub struct Ids(Cell<NodeId>);

impl Ids {
    pub fn next(&self) -> NodeId {
        let id = self.0.get();
        self.0.set(id + 1);
        id
    }
}
