//! [`Dataset`]: a typed handle on a plan node, and the narrow
//! transformations (those that need no shuffle).
//!
//! A dataset's *compute* turns one partition of its job's map stage (or of
//! its shuffle's reduce side) into an iterator of records, by composing
//! its parent's compute with the user's closure. Every compute first asks
//! whether its node has been materialized; if so, the partition is a file
//! of its records and is decoded instead of recomputed.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::panic::Location;
use std::rc::Rc;

use super::codec;
use super::node::{Input, Kind, Node, Part, Source, StageFn};
use super::{Context, Data};

/// One partition as records.
pub type Records<T> = Box<dyn Iterator<Item = T>>;
pub(crate) type Compute<T> = Rc<dyn Fn(&Part) -> Records<T>>;

/// A distributed collection of records of type `T`, split into
/// partitions. Transformations are lazy; actions run jobs.
pub struct Dataset<T> {
    pub(crate) cx: Context,
    pub(crate) node: Rc<Node>,
    pub(crate) compute: Compute<T>,
}

impl<T> Clone for Dataset<T> {
    fn clone(&self) -> Self {
        Dataset { cx: self.cx.clone(), node: self.node.clone(), compute: self.compute.clone() }
    }
}

impl<T: Data> Dataset<T> {
    /// Makes a node and its dataset; `inner` computes a partition that is
    /// not materialized.
    pub(crate) fn make(
        cx: &Context,
        op: &'static str,
        at: &'static Location<'static>,
        kind: Kind,
        inner: impl Fn(&Part) -> Records<T> + 'static,
    ) -> Dataset<T> {
        let id = cx.inner.ids.next();
        let cx2 = cx.clone();
        let compute: Compute<T> = Rc::new(move |p: &Part| {
            if !p.reduce_side && cx2.materialized().contains(&id) {
                return read_records::<T>(&p.input);
            }
            inner(p)
        });
        let c2 = compute.clone();
        let encode: StageFn = Rc::new(move |p, out| write_records(c2(p), out));
        let node = Rc::new(Node { id, op, at, kind, cached: Default::default(), encode });
        Dataset { cx: cx.clone(), node, compute }
    }

    #[track_caller]
    pub(crate) fn source(cx: &Context, op: &'static str, src: Source) -> Dataset<T> {
        let at = Location::caller();
        let read: fn(&Part) -> Records<T> = match &src {
            Source::Text { .. } => |p| text_lines_as::<T>(&p.input),
            Source::Records { .. } => |p| read_records::<T>(&p.input),
            Source::Range { .. } => |p| range_as::<T>(&p.input),
            Source::HostText { .. } => |p| host_lines_as::<T>(&p.input),
        };
        Dataset::make(cx, op, at, Kind::Source(src), read)
    }

    /// A narrow step: `f` turns the parent's records of a partition into
    /// this dataset's.
    fn narrow<U: Data>(
        &self,
        op: &'static str,
        at: &'static Location<'static>,
        f: impl Fn(Records<T>) -> Records<U> + 'static,
    ) -> Dataset<U> {
        let parent = self.compute.clone();
        Dataset::make(&self.cx, op, at, Kind::Narrow(self.node.clone()), move |p| f(parent(p)))
    }

    /// Applies `f` to every record.
    #[track_caller]
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + 'static) -> Dataset<U> {
        let f = Rc::new(f);
        self.narrow("map", Location::caller(), move |it| {
            let f = f.clone();
            Box::new(it.map(move |x| f(x)))
        })
    }

    /// Applies `f` to every record and flattens what it returns.
    #[track_caller]
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + 'static) -> Dataset<U>
    where
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: 'static,
    {
        let f = Rc::new(f);
        self.narrow("flat_map", Location::caller(), move |it| {
            let f = f.clone();
            Box::new(it.flat_map(move |x| f(x)))
        })
    }

    /// Keeps the records for which `f` is true.
    #[track_caller]
    pub fn filter(&self, f: impl Fn(&T) -> bool + 'static) -> Dataset<T> {
        let f = Rc::new(f);
        self.narrow("filter", Location::caller(), move |it| {
            let f = f.clone();
            Box::new(it.filter(move |x| f(x)))
        })
    }

    /// Turns a whole partition at once (set-up cost paid once per
    /// partition, or state across records).
    #[track_caller]
    pub fn map_partitions<U: Data, I>(&self, f: impl Fn(Records<T>) -> I + 'static) -> Dataset<U>
    where
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: 'static,
    {
        self.narrow("map_partitions", Location::caller(), move |it| Box::new(f(it).into_iter()))
    }

    /// Pairs every record with a key.
    #[track_caller]
    pub fn key_by<K: Data>(&self, f: impl Fn(&T) -> K + 'static) -> Dataset<(K, T)> {
        let f = Rc::new(f);
        self.narrow("key_by", Location::caller(), move |it| {
            let f = f.clone();
            Box::new(it.map(move |x| (f(&x), x)))
        })
    }

    /// The partitions of `self`, then those of `other`.
    #[track_caller]
    pub fn union(&self, other: &Dataset<T>) -> Dataset<T> {
        let (a, b) = (self.compute.clone(), other.compute.clone());
        let (left, cx) = (self.node.clone(), self.cx.clone());
        let kind = Kind::Union(vec![self.node.clone(), other.node.clone()]);
        Dataset::make(&self.cx, "union", Location::caller(), kind, move |p| {
            let n = left.roots(&cx.materialized()).len();
            if p.seg < n {
                return a(p);
            }
            let mut q = p.clone();
            q.seg -= n;
            b(&q)
        })
    }

    /// Keeps this dataset's partitions once computed (on the driver, and
    /// in the block cache of the hosts that computed them, which later
    /// jobs read them on), instead of recomputing them for every action.
    pub fn cache(&self) -> Dataset<T> {
        self.node.cached.set(true);
        self.clone()
    }
}

/// Reads one line-per-record input.
pub(crate) fn read_records<T: Data>(input: &Input) -> Records<T> {
    Box::new(lines(input).map(|l| codec::get_record::<T>(&l).unwrap_or_else(|e| panic!("shoal: {e}"))))
}

/// Writes records as lines.
pub(crate) fn write_records<T: Data>(records: Records<T>, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for r in records {
        codec::put_record(&r, &mut buf).map_err(io::Error::other)?;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// The lines of an input, without their newlines. Each line is read into
/// one reused buffer and copied out once, at its exact size.
pub(crate) fn lines(input: &Input) -> impl Iterator<Item = Vec<u8>> {
    let mut reader = input.reader().unwrap_or_else(|e| panic!("shoal: cannot open the task input {}: {e}", input.describe()));
    let mut buf = Vec::with_capacity(256);
    std::iter::from_fn(move || {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Some(buf.as_slice().to_vec())
            }
            Err(e) => panic!("shoal: cannot read the task input: {e}"),
        }
    })
}

/// A text source's lines; `T` is `String` (the only type `text_file` makes).
fn text_lines_as<T: Data>(input: &Input) -> Records<T> {
    let it = lines(input).map(|mut l| {
        if l.last() == Some(&b'\r') {
            l.pop();
        }
        let s = String::from_utf8(l).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        cast::<String, T>(s)
    });
    Box::new(it)
}

/// A host-local partition's file holds `host\npath`: the lines of `path`
/// on that host (`{host}` replaced; relative to the home directory).
fn host_lines_as<T: Data>(spec: &Input) -> Records<T> {
    let text = spec.text().unwrap_or_default();
    let (host, path) = text.split_once('\n').unwrap_or((&text, ""));
    let here = std::env::var("SHOAL_HOST").unwrap_or_default();
    if here != host {
        panic!(
            "text_file_on_hosts({path:?}): this partition is host `{host}`'s own file and can only be read there, \
             but it ran on `{here}` (it failed on `{host}`, or `{host}` was lost)"
        );
    }
    let mut full = std::path::PathBuf::from(path.replace("{host}", host));
    if full.is_relative() {
        full = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default().join(full);
    }
    if let Err(e) = std::fs::metadata(&full) {
        panic!("text_file_on_hosts({path:?}): host `{host}` cannot read {}: {e}", full.display());
    }
    text_lines_as::<T>(&Input::File(full))
}

/// A range partition's input holds `start end`.
fn range_as<T: Data>(input: &Input) -> Records<T> {
    let text = input.text().unwrap_or_default();
    let mut nums = text.split_whitespace().map(|n| n.parse::<i64>().unwrap_or(0));
    let (a, b) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    Box::new((a..b).map(cast::<i64, T>))
}

/// Sources make exactly one record type; this recovers it without `Any`
/// bounds on every `T`.
fn cast<A: 'static, B: 'static>(a: A) -> B {
    let mut slot = Some(a);
    let any: &mut dyn std::any::Any = &mut slot;
    any.downcast_mut::<Option<B>>().and_then(Option::take).expect("a source makes records of its own type")
}

/// A buffered writer for a task's output.
pub(crate) fn output_writer(file: File) -> BufWriter<File> {
    BufWriter::with_capacity(1 << 20, file)
}
