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
use std::path::Path;
use std::rc::Rc;

use super::codec;
use super::node::{Input, Kind, Node, Part, Source, StageFn};
use super::{Context, Data};

/// One partition as records.
pub type Records<T> = Box<dyn Iterator<Item = T>>;
/// Opening a partition can fail (a missing file, a damaged range); an
/// error ends the task with its sentence, as a task error, not a panic.
pub(crate) type Compute<T> = Rc<dyn Fn(&Part) -> io::Result<Records<T>>>;

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
        inner: impl Fn(&Part) -> io::Result<Records<T>> + 'static,
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
        let encode: StageFn = Rc::new(move |p, out| write_records(c2(p)?, out));
        let node = Rc::new(Node { id, op, at, kind, cached: Default::default(), encode });
        Dataset { cx: cx.clone(), node, compute }
    }

    #[track_caller]
    pub(crate) fn source(cx: &Context, op: &'static str, src: Source) -> Dataset<T> {
        let at = Location::caller();
        let read: fn(&Part) -> io::Result<Records<T>> = match &src {
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
        Dataset::make(&self.cx, op, at, Kind::Narrow(self.node.clone()), move |p| Ok(f(parent(p)?)))
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
pub(crate) fn read_records<T: Data>(input: &Input) -> io::Result<Records<T>> {
    Ok(Box::new(lines(input)?.map(|l| codec::get_record::<T>(&l).unwrap_or_else(|e| panic!("shoal: {e}")))))
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
/// one reused buffer and copied out once, at its exact size. A read that
/// fails midway panics (the iterator has no error to return).
pub(crate) fn lines(input: &Input) -> io::Result<impl Iterator<Item = Vec<u8>>> {
    let mut reader =
        input.reader().map_err(|e| io::Error::new(e.kind(), format!("cannot open the task input {}: {e}", input.describe())))?;
    let mut buf = Vec::with_capacity(256);
    Ok(std::iter::from_fn(move || {
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
    }))
}

/// A text source's lines; `T` is `String` (the only type `text_file` makes).
fn text_lines_as<T: Data>(input: &Input) -> io::Result<Records<T>> {
    let it = lines(input)?.map(|mut l| {
        if l.last() == Some(&b'\r') {
            l.pop();
        }
        let s = String::from_utf8(l).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        cast::<String, T>(s)
    });
    Ok(Box::new(it))
}

/// A host-local partition's file holds `host\npath`: the lines of `path`
/// on that host (`{host}` replaced; relative to the home directory).
fn host_lines_as<T: Data>(spec: &Input) -> io::Result<Records<T>> {
    let here = std::env::var("SHOAL_HOST").unwrap_or_default();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let full = host_file(&spec.text()?, &here, &home)?;
    text_lines_as::<T>(&Input::File(full))
}

/// The file a host-local partition reads on host `here`, checked to be
/// there: an error says which host and which file, and what to do.
fn host_file(spec: &str, here: &str, home: &Path) -> io::Result<std::path::PathBuf> {
    let Some((host, path)) = spec.split_once('\n') else {
        return Err(io::Error::other(format!(
            "text_file_on_hosts: the partition's input {spec:?} is not a host and a path on two lines; it was damaged on the way, \
             rerun the program"
        )));
    };
    if here != host {
        return Err(io::Error::other(format!(
            "text_file_on_hosts({path:?}): this partition is host `{host}`'s own file and can only be read there, \
             but it ran on `{here}` (it failed on `{host}`, or `{host}` was lost); see the errors of `{host}` above, \
             or leave `{host}` out of the cluster file"
        )));
    }
    let full = home.join(path.replace("{host}", host));
    match std::fs::metadata(&full) {
        Ok(_) => Ok(full),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "text_file_on_hosts({path:?}): host `{host}` cannot read {}: {e}; put the file there (a relative path \
                 starts in the home directory on the host), or leave `{host}` out of the cluster file",
                full.display()
            ),
        )),
    }
}

/// A range partition's input holds `start end`.
fn range_as<T: Data>(input: &Input) -> io::Result<Records<T>> {
    let (a, b) = range_bounds(&input.text()?)?;
    Ok(Box::new((a..b).map(cast::<i64, T>)))
}

/// `start end`, two integers, as the driver wrote them; anything else is
/// an error rather than an empty partition.
fn range_bounds(text: &str) -> io::Result<(i64, i64)> {
    let nums: Vec<Option<i64>> = text.split_whitespace().map(|n| n.parse().ok()).collect();
    match nums[..] {
        [Some(a), Some(b)] => Ok((a, b)),
        _ => Err(io::Error::other(format!(
            "range: the partition's input {text:?} is not `start end` (two integers); it was damaged on the way, \
             rerun the program"
        ))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_partition_is_two_integers() {
        assert_eq!(range_bounds("-4 10").unwrap(), (-4, 10));
        assert_eq!(range_bounds(" 0\t3\n").unwrap(), (0, 3));
    }

    #[test]
    fn a_malformed_range_is_an_error_not_an_empty_partition() {
        for bad in ["", "5", "1 x", "1 2 3", "0.5 2"] {
            assert_eq!(
                range_bounds(bad).unwrap_err().to_string(),
                format!(
                    "range: the partition's input {bad:?} is not `start end` (two integers); it was damaged on the way, \
                     rerun the program"
                )
            );
        }
    }

    #[test]
    fn a_host_file_is_read_on_its_host_from_the_home_directory() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("w1.txt"), "a\n").unwrap();
        assert_eq!(host_file("w1\n{host}.txt", "w1", home.path()).unwrap(), home.path().join("w1.txt"));
        let abs = home.path().join("{host}.txt").display().to_string();
        assert_eq!(host_file(&format!("w1\n{abs}"), "w1", Path::new("/nowhere")).unwrap(), home.path().join("w1.txt"));
    }

    #[test]
    fn a_missing_host_file_is_an_error_saying_what_to_do() {
        let home = tempfile::tempdir().unwrap();
        let err = host_file("w2\ndata/{host}.txt", "w2", home.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            format!(
                "text_file_on_hosts(\"data/{{host}}.txt\"): host `w2` cannot read {}/data/w2.txt: No such file or directory \
                 (os error 2); put the file there (a relative path starts in the home directory on the host), or leave \
                 `w2` out of the cluster file",
                home.path().display()
            )
        );
    }

    #[test]
    fn a_host_file_read_elsewhere_or_a_damaged_spec_is_an_error() {
        let err = host_file("w1\nx.txt", "w2", Path::new("/")).unwrap_err().to_string();
        assert_eq!(
            err,
            "text_file_on_hosts(\"x.txt\"): this partition is host `w1`'s own file and can only be read there, but it ran \
             on `w2` (it failed on `w1`, or `w1` was lost); see the errors of `w1` above, or leave `w1` out of the cluster file"
        );
        let err = host_file("w1", "w1", Path::new("/")).unwrap_err().to_string();
        assert!(err.starts_with("text_file_on_hosts: the partition's input \"w1\" is not a host and a path"), "{err}");
    }
}
