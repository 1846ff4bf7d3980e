//! Transformations that shuffle by key, on datasets of `(K, V)` pairs.
//!
//! The map side of a shuffle writes keyed lines ([`codec`]); the agent
//! routes them to reducers by the stable hash of the key bytes, sorts each
//! bucket in bounded memory (spilling), and merges every map's bucket into
//! the reducer's input, sorted by key, exactly as for a command job. So
//! the reduce side here only walks runs of equal keys: memory holds one
//! key's values (for `group_by_key` and `join`) or one accumulator.
//!
//! `reduce_by_key` and `aggregate_by_key` combine on the map side in a
//! hash table that is flushed whenever it holds [`COMBINE_LIMIT`] keys, so
//! it is bounded too. `sort_by_key` samples keys first (a job of its own),
//! picks split points, and routes by range instead of hash.

use std::io::{self, Write};
use std::panic::Location;
use std::rc::Rc;

use rustc_hash::FxHashMap as FastMap;
use serde::{Deserialize, Serialize};

use super::codec;
use super::narrow::{lines, Compute, Records};
use super::node::{Kind, Node, Part, RangeSplit, Shuffle, StageFn};
use super::{Data, Dataset, Key};

/// Distinct keys a map-side combiner holds before it writes them out.
pub const COMBINE_LIMIT: usize = 1 << 18;

/// Keys a sort samples per partition (at most twice this many are held).
const SAMPLES: usize = 4096;

impl<K: Key, V: Data> Dataset<(K, V)> {
    /// Combines the values of each key with `f` (on the map side first).
    #[track_caller]
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + 'static) -> Dataset<(K, V)> {
        let f = Rc::new(f);
        let g = f.clone();
        let map = combining(self.compute.clone(), move |acc: Option<V>, v: V| {
            Some(match acc {
                Some(a) => g(a, v),
                None => v,
            })
        });
        let at = Location::caller();
        let reduce = folding::<K, V, V>(|v| v, move |a, b| f(a, b));
        shuffle(&self.cx, "reduce_by_key", at, vec![(self.node.clone(), map)], None, reduce)
    }

    /// Folds the values of each key into an accumulator: `seq` adds a value
    /// (map side), `comb` merges two accumulators (reduce side).
    #[track_caller]
    pub fn aggregate_by_key<U: Data>(
        &self,
        zero: U,
        seq: impl Fn(U, V) -> U + 'static,
        comb: impl Fn(U, U) -> U + 'static,
    ) -> Dataset<(K, U)> {
        let seq = Rc::new(seq);
        let map = combining(self.compute.clone(), move |acc: Option<U>, v: V| Some(seq(acc.unwrap_or_else(|| zero.clone()), v)));
        let reduce = folding::<K, U, U>(|u| u, comb);
        shuffle(&self.cx, "aggregate_by_key", Location::caller(), vec![(self.node.clone(), map)], None, reduce)
    }

    /// All values of each key, together (order within a key unspecified).
    #[track_caller]
    pub fn group_by_key(&self) -> Dataset<(K, Vec<V>)> {
        let map = passing(self.compute.clone(), |v: V| v);
        let reduce = folding::<K, V, Vec<V>>(
            |v| vec![v],
            |mut a, v| {
                a.push(v);
                a
            },
        );
        shuffle(&self.cx, "group_by_key", Location::caller(), vec![(self.node.clone(), map)], None, reduce)
    }

    /// Pairs of values with equal keys (an inner join).
    #[track_caller]
    pub fn join<W: Data>(&self, other: &Dataset<(K, W)>) -> Dataset<(K, (V, W))> {
        let left = passing(self.compute.clone(), Side::<V, W>::L);
        let right = passing(other.compute.clone(), Side::<V, W>::R);
        let both = folding::<K, Side<V, W>, (Vec<V>, Vec<W>)>(|s| Side::add((vec![], vec![]), s), Side::add);
        let reduce = move |p: &Part| -> io::Result<Records<(K, (V, W))>> {
            Ok(Box::new(both(p)?.flat_map(|(k, (vs, ws))| {
                let pairs: Vec<(K, (V, W))> = vs.iter().flat_map(|v| ws.iter().map(|w| (k.clone(), (v.clone(), w.clone())))).collect();
                pairs
            })))
        };
        let parents = vec![(self.node.clone(), left), (other.node.clone(), right)];
        shuffle(&self.cx, "join", Location::caller(), parents, None, reduce)
    }

    /// Sorted by key across partitions: partition 0 holds the smallest
    /// keys. The key order is that of the key's encoding, which is `Ord`
    /// for integers, strings, tuples and derived structs.
    #[track_caller]
    pub fn sort_by_key(&self) -> Dataset<(K, V)>
    where
        K: Ord,
    {
        let splits = Rc::new(std::cell::RefCell::new(None::<Vec<Vec<u8>>>));
        let range = RangeSplit { sampler: sampler(self.compute.clone()), splits: splits.clone() };
        let parent = self.compute.clone();
        let map: StageFn = Rc::new(move |p, out| {
            let guard = splits.borrow();
            let points = guard.as_deref().unwrap_or(&[]);
            let mut buf = Vec::with_capacity(1 << 16);
            for (k, v) in parent(p)? {
                let kb = codec::key_bytes(&k).map_err(io::Error::other)?;
                let bucket = points.partition_point(|s| s.as_slice() <= kb.as_slice());
                write!(buf, "{bucket}\t")?;
                codec::put_keyed(&kb, &v, &mut buf).map_err(io::Error::other)?;
                flush_if_full(&mut buf, out)?;
            }
            out.write_all(&buf)
        });
        let reduce = |p: &Part| -> io::Result<Records<(K, V)>> {
            Ok(Box::new(lines(&p.input)?.map(|line| {
                let rest = line.splitn(2, |&b| b == b'\t').nth(1).unwrap_or_default();
                decode_pair::<K, V>(rest)
            })))
        };
        let at = Location::caller();
        shuffle(&self.cx, "sort_by_key", at, vec![(self.node.clone(), map)], Some(range), reduce)
    }
}

impl<T: Key> Dataset<T> {
    /// Each record once.
    #[track_caller]
    pub fn distinct(&self) -> Dataset<T> {
        let keyed = self.map(|x| (x, ()));
        let at = Location::caller();
        let map = combining(keyed.compute.clone(), |_acc: Option<()>, _v: ()| Some(()));
        let reduce = folding::<T, (), ()>(|_| (), |_, _| ());
        let once: Dataset<(T, ())> = shuffle(&self.cx, "distinct", at, vec![(keyed.node.clone(), map)], None, reduce);
        once.map(|(x, ())| x)
    }
}

/// A value tagged with the side of a join it came from.
#[derive(Clone, Serialize, Deserialize)]
enum Side<V, W> {
    L(V),
    R(W),
}

impl<V, W> Side<V, W> {
    fn add(mut acc: (Vec<V>, Vec<W>), s: Side<V, W>) -> (Vec<V>, Vec<W>) {
        match s {
            Side::L(v) => acc.0.push(v),
            Side::R(w) => acc.1.push(w),
        }
        acc
    }
}

/// Makes the shuffle node and its dataset, whose compute is `reduce` on
/// the reduce side.
fn shuffle<U: Data>(
    cx: &super::Context,
    op: &'static str,
    at: &'static Location<'static>,
    parents: Vec<(Rc<Node>, StageFn)>,
    range: Option<RangeSplit>,
    reduce: impl Fn(&Part) -> io::Result<Records<U>> + 'static,
) -> Dataset<U> {
    let (nodes, map_sides) = parents.into_iter().unzip();
    let kind = Kind::Shuffle(Shuffle { parents: nodes, map_sides, partitions: None, range });
    Dataset::make(cx, op, at, kind, reduce)
}

/// Map side with a bounded combining table: `add` folds a value into the
/// key's accumulator.
fn combining<K: Key, V: Data, A: Data>(parent: Compute<(K, V)>, add: impl Fn(Option<A>, V) -> Option<A> + 'static) -> StageFn {
    Rc::new(move |p, out| {
        // Fx, not SipHash: the table is private and hashed once per record.
        let mut table: FastMap<K, Option<A>> = FastMap::default();
        let mut buf = Vec::with_capacity(1 << 16);
        for (k, v) in parent(p)? {
            let slot = table.entry(k).or_insert(None);
            *slot = add(slot.take(), v);
            if table.len() >= COMBINE_LIMIT {
                drain(&mut table, &mut buf, out)?;
            }
        }
        drain(&mut table, &mut buf, out)?;
        out.write_all(&buf)
    })
}

fn drain<K: Key, A: Data>(table: &mut FastMap<K, Option<A>>, buf: &mut Vec<u8>, out: &mut dyn Write) -> io::Result<()> {
    for (k, a) in table.drain() {
        let Some(a) = a else { continue };
        let kb = codec::key_bytes(&k).map_err(io::Error::other)?;
        codec::put_keyed(&kb, &a, buf).map_err(io::Error::other)?;
        flush_if_full(buf, out)?;
    }
    Ok(())
}

/// Map side that writes every pair, its value turned by `tag`.
fn passing<K: Key, V: Data, X: Data>(parent: Compute<(K, V)>, tag: impl Fn(V) -> X + 'static) -> StageFn {
    Rc::new(move |p, out| {
        let mut buf = Vec::with_capacity(1 << 16);
        for (k, v) in parent(p)? {
            let kb = codec::key_bytes(&k).map_err(io::Error::other)?;
            codec::put_keyed(&kb, &tag(v), &mut buf).map_err(io::Error::other)?;
            flush_if_full(&mut buf, out)?;
        }
        out.write_all(&buf)
    })
}

fn flush_if_full(buf: &mut Vec<u8>, out: &mut dyn Write) -> io::Result<()> {
    if buf.len() >= 1 << 16 {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

/// Reduce side: folds each run of equal keys of the merged input.
fn folding<K: Key, X: Data, A: 'static>(
    init: impl Fn(X) -> A + 'static,
    step: impl Fn(A, X) -> A + 'static,
) -> impl Fn(&Part) -> io::Result<Records<(K, A)>> + 'static {
    let (init, step) = (Rc::new(init), Rc::new(step));
    move |p: &Part| {
        let (init, step) = (init.clone(), step.clone());
        let mut input = lines(&p.input)?.peekable();
        Ok(Box::new(std::iter::from_fn(move || {
            let first = input.next()?;
            let (kb, v) = split(&first);
            let mut acc = init(value::<X>(v));
            while let Some(next) = input.peek() {
                let (kb2, v2) = split(next);
                if kb2 != kb {
                    break;
                }
                acc = step(acc, value::<X>(v2));
                input.next();
            }
            Some((key::<K>(kb), acc))
        })))
    }
}

/// Samples the keys of every partition with a doubling stride, so that
/// any partition size yields at most `2 * SAMPLES` evenly spread keys.
fn sampler<K: Key, V: Data>(parent: Compute<(K, V)>) -> StageFn {
    Rc::new(move |p, out| {
        let (mut kept, mut stride, mut seen) = (Vec::new(), 1usize, 0usize);
        for (k, _) in parent(p)? {
            if seen % stride == 0 {
                kept.push(codec::key_bytes(&k).map_err(io::Error::other)?);
                if kept.len() >= 2 * SAMPLES {
                    kept = kept.into_iter().step_by(2).collect();
                    stride *= 2;
                }
            }
            seen += 1;
        }
        for k in kept {
            out.write_all(&k)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Split points for `partitions` ranges from the sampled keys: the
/// sample's quantiles, without repeats. Both the driver and the tasks
/// compute them from the same sample.
pub(crate) fn split_points(raw: &[u8], partitions: u32) -> Vec<Vec<u8>> {
    let mut keys: Vec<&[u8]> = raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    keys.sort_unstable();
    let r = partitions.max(1) as usize;
    let mut points: Vec<Vec<u8>> = (1..r).filter_map(|i| keys.get(i * keys.len() / r).map(|k| k.to_vec())).collect();
    points.dedup();
    points
}

fn split(line: &[u8]) -> (&[u8], &[u8]) {
    codec::split_keyed(line).unwrap_or_else(|e| panic!("shoal: {e}"))
}

fn key<K: Key>(kb: &[u8]) -> K {
    codec::get_key(kb).unwrap_or_else(|e| panic!("shoal: {e}"))
}

fn value<X: Data>(v: &[u8]) -> X {
    codec::get_value(v).unwrap_or_else(|e| panic!("shoal: {e}"))
}

fn decode_pair<K: Key, V: Data>(line: &[u8]) -> (K, V) {
    let (kb, v) = split(line);
    (key(kb), value(v))
}

#[cfg(test)]
mod tests {
    use super::split_points;

    #[test]
    fn split_points_are_quantiles_without_repeats() {
        let raw: Vec<u8> = (0..100u8).flat_map(|i| vec![b'a' + i / 10, b'\n']).collect();
        assert_eq!(split_points(&raw, 2), vec![b"f".to_vec()]);
        assert_eq!(split_points(&raw, 4).len(), 3);
        assert_eq!(split_points(b"x\nx\nx\nx\n", 4), vec![b"x".to_vec()]);
        assert!(split_points(b"", 4).is_empty());
    }
}
