//! The Python executor's fused stages (`shoal._plan.compile_chain`): runs
//! of narrow operations and the map-side combiner compiled into one loop
//! give the answers plain Python gives, across a combiner's flush and
//! around a `map_partitions` that breaks fusion (the textbook `(w, 1)`
//! count, which C code counts, too), and an exception inside
//! a fused loop (and in a `lambda a, b: a + b` the combiner adds in line)
//! still shows only the user's frame.

use std::path::Path;

use shoal_testkit::local::local_workers;
use shoal_testkit::{bin, Shoal};

fn python(dir: &Path, script: &Path) -> Shoal {
    Shoal::python().arg(bin::repo().join(script)).in_job_dir(dir)
}

fn on_workers(dir: &Path, n: usize) -> Vec<String> {
    vec!["--quiet".into(), "--cluster".into(), local_workers(dir, n).display().to_string()]
}

const FUSED: &str = r#"
import shoal
from shoal import _plan

def check(name, got, want):
    print(f"ok {name}" if got == want else f"DIFFERS {name}: {str(got)[:300]} != {str(want)[:300]}")

with shoal.Context() as sc:
    # More keys than a combiner holds, seen again after it wrote them out:
    # the combine after the flush must start from an empty dict.
    m = _plan.COMBINE_MAX + 1000
    got = sc.range(2 * m + 7, n=1).filter(lambda x: x % 5 != 3).map(lambda x: (x % m, 1)).reduce_by_key(lambda a, b: a + b, n=2).collect()
    want = {}
    for x in range(2 * m + 7):
        if x % 5 != 3:
            want[x % m] = want.get(x % m, 0) + 1
    check("combine_across_a_flush", dict(got), want)
    nums = list(range(200))
    got = (sc.parallelize(nums, 3).map(lambda x: x * 7).flat_map(lambda x: [x, x + 1])
             .map_partitions(lambda it: (x // 2 for x in it if x % 3)).filter(lambda x: x % 4 != 0)
             .key_by(lambda x: x % 6).group_by_key(2).collect())
    want = {}
    for x in nums:
        for y in (x * 7, x * 7 + 1):
            if y % 3 and (y // 2) % 4 != 0:
                want.setdefault((y // 2) % 6, []).append(y // 2)
    check("around_map_partitions", {k: sorted(v) for k, v in got}, {k: sorted(v) for k, v in want.items()})
    # The textbook count (`(w, 1)` pairs added up) is counted in C code: the
    # same answers, across a flush too; `(w, True)` pairs are not counts.
    got = sc.range(2 * m + 7, n=1).flat_map(lambda x: [x % m, -1]).map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b, n=2).collect()
    want = {}
    for x in range(2 * m + 7):
        for w in (x % m, -1):
            want[w] = want.get(w, 0) + 1
    check("counted_across_a_flush", dict(got), want)
    got = sc.parallelize(["a b a", "c"], 1).flat_map(lambda s: s.split()).map(lambda w: (w, True)).reduce_by_key(lambda a, b: a + b).collect()
    check("true_pairs_are_not_counts", repr(sorted(got)), repr([("a", 2), ("b", True), ("c", True)]))
    got = sc.parallelize([None, 0, "", "a", None, 0], 2).distinct(2).collect()
    check("distinct_none_and_falsy_keys", sorted(got, key=repr), sorted([None, 0, "", "a"], key=repr))
"#;

#[test]
fn fused_stages_match_plain_python_across_a_flush_and_map_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fused.py");
    std::fs::write(&script, FUSED).unwrap();
    let r = python(dir.path(), &script).args(on_workers(dir.path(), 2)).run().success();
    assert_eq!(
        r.stdout,
        "ok combine_across_a_flush\nok around_map_partitions\nok counted_across_a_flush\nok true_pairs_are_not_counts\n\
         ok distinct_none_and_falsy_keys\n",
        "stderr:\n{}",
        r.stderr
    );
}

const FAILS_IN_FUSED: &str = r#"
import shoal
with shoal.Context() as sc:
    words = sc.parallelize(["ab cd", "efgh ij", "k"], 1).flat_map(lambda line: line.split()).filter(lambda w: w)
    print(words.map(lambda w: (w, 1 // (len(w) - 4))).reduce_by_key(lambda a, b: a + b).collect())
"#;

#[test]
fn an_exception_in_a_fused_stage_shows_only_the_users_frame() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fails.py");
    std::fs::write(&script, FAILS_IN_FUSED).unwrap();
    let r = python(dir.path(), &script).args(on_workers(dir.path(), 1)).run();
    let r = r.fails_with(1, "failed 4 times, on: w0 (exit code 1)");
    r.stderr_has(&format!(
        "  | shoal: task of job 0 failed: Traceback (most recent call last):\n  |   File \"{}\", line 5, in <lambda>\n  |     \
         print(words.map(lambda w: (w, 1 // (len(w) - 4))).reduce_by_key(lambda a, b: a + b).collect())\n  | \
         ZeroDivisionError: integer division or modulo by zero\n  | a Python function raised ZeroDivisionError in map partition 0 on host ",
        script.display()
    ));
}

const FAILS_TO_ADD: &str = r#"
import shoal
with shoal.Context() as sc:
    pairs = sc.parallelize([("k", 1), ("j", 2), ("k", "x")], 1)
    print(pairs.reduce_by_key(lambda a, b: a + b).collect())
"#;

#[test]
fn an_exception_in_an_addition_the_combiner_inlines_shows_the_users_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("adds.py");
    std::fs::write(&script, FAILS_TO_ADD).unwrap();
    let r = python(dir.path(), &script).args(on_workers(dir.path(), 1)).run();
    let r = r.fails_with(1, "failed 4 times, on: w0 (exit code 1)");
    r.stderr_has(&format!(
        "  | shoal: task of job 0 failed: Traceback (most recent call last):\n  |   File \"{}\", line 5, in <lambda>\n  |     \
         print(pairs.reduce_by_key(lambda a, b: a + b).collect())\n  | \
         TypeError: unsupported operand type(s) for +: 'int' and 'str'\n  | a Python function raised TypeError in map partition 0 on host ",
        script.display()
    ));
}
