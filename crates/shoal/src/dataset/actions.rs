//! Actions: the calls that run jobs. Each is collective: it returns the
//! same value in the driver and in every task that replays the program,
//! because tasks read the raw result the driver broadcast and combine it
//! with the same code.

use std::fmt::Display;
use std::io::Write;
use std::rc::Rc;

use super::codec;
use super::narrow::{write_records, Records};
use super::node::StageFn;
use super::plan::Purpose;
use super::{Data, Dataset};
use crate::{Error, Result};

impl<T: Data> Dataset<T> {
    /// Every record, in partition order.
    pub fn collect(&self) -> Result<Vec<T>> {
        let c = self.compute.clone();
        let finish: StageFn = Rc::new(move |p, out| write_records(c(p)?, out));
        let raw = self.result(finish)?;
        decode_all(&raw)
    }

    /// How many records there are.
    pub fn count(&self) -> Result<u64> {
        let c = self.compute.clone();
        let finish = per_partition(move |p| Ok(Some(c(p)?.count() as u64)));
        Ok(decode_all::<Option<u64>>(&self.result(finish)?)?.into_iter().flatten().sum())
    }

    /// Combines all records with `f` (in each partition, then across
    /// partitions); `None` for an empty dataset.
    pub fn reduce(&self, f: impl Fn(T, T) -> T + 'static) -> Result<Option<T>> {
        let f = Rc::new(f);
        let (c, g) = (self.compute.clone(), f.clone());
        let finish = per_partition(move |p| Ok(c(p)?.reduce(|a, b| g(a, b))));
        let partials: Vec<Option<T>> = decode_all(&self.result(finish)?)?;
        Ok(partials.into_iter().flatten().reduce(|a, b| f(a, b)))
    }

    /// Folds every partition from `zero`, then the partial results from
    /// `zero` again (as Spark's `fold`: `zero` must be neutral for `f`).
    pub fn fold(&self, zero: T, f: impl Fn(T, T) -> T + 'static) -> Result<T> {
        let f = Rc::new(f);
        let (c, g, z) = (self.compute.clone(), f.clone(), zero.clone());
        let finish = per_partition(move |p| Ok(Some(c(p)?.fold(z.clone(), |a, b| g(a, b)))));
        let partials: Vec<Option<T>> = decode_all(&self.result(finish)?)?;
        Ok(partials.into_iter().flatten().fold(zero, |a, b| f(a, b)))
    }

    /// Runs `f` on every record, on the hosts (for side effects there).
    pub fn for_each(&self, f: impl Fn(T) + 'static) -> Result<()> {
        let c = self.compute.clone();
        let finish: StageFn = Rc::new(move |p, _out| {
            c(p)?.for_each(&f);
            Ok(())
        });
        self.result(finish).map(|_| ())
    }

    /// Writes every record as a line of text (its `Display`) into one file
    /// on the driver, in partition order; the file appears whole or not
    /// at all.
    pub fn save_as_text(&self, path: impl AsRef<std::path::Path>) -> Result<()>
    where
        T: Display,
    {
        let path = std::path::absolute(path.as_ref()).map_err(|e| Error::io(format!("cannot use {}", path.as_ref().display()), e))?;
        let c = self.compute.clone();
        let finish: StageFn = Rc::new(move |p, out| {
            let mut buf = Vec::with_capacity(1 << 16);
            for x in c(p)? {
                writeln!(buf, "{x}")?;
                if buf.len() >= 1 << 16 {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
            out.write_all(&buf)
        });
        self.cx.run_job(&self.node, finish, Purpose::SaveText(path)).map(|_| ())
    }

    fn result(&self, finish: StageFn) -> Result<Vec<u8>> {
        Ok(self.cx.run_job(&self.node, finish, Purpose::Result)?.unwrap_or_default())
    }
}

/// A finisher that writes one value per partition.
fn per_partition<R: Data>(f: impl Fn(&super::node::Part) -> std::io::Result<R> + 'static) -> StageFn {
    Rc::new(move |p, out| {
        let one: Records<R> = Box::new(std::iter::once(f(p)?));
        write_records(one, out)
    })
}

/// Decodes a whole result.
pub(crate) fn decode_all<T: Data>(raw: &[u8]) -> Result<Vec<T>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    // A record may encode to nothing (`()`): split lines, not words.
    raw.strip_suffix(b"\n")
        .unwrap_or(raw)
        .split(|&b| b == b'\n')
        .map(|l| codec::get_record::<T>(l).map_err(|e| Error::JobFailed(format!("the job's result cannot be read: {e}"))))
        .collect()
}
