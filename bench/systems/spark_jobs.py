#!/usr/bin/env python3
"""The Spark side of bench/run: each job a Spark user would write, run in a
fresh local[2]-style session so its wall time includes the JVM start a user
pays too (bench/run reports that start-up on its own, in the tiny-task
scenario).

usage: spark_jobs.py check
       spark_jobs.py wordcount-rdd INPUT OUTPUT.tsv
       spark_jobs.py wordcount-df  INPUT OUTPUT.tsv
       spark_jobs.py tiny N
       spark_jobs.py sort-rdd INPUT OUTDIR
       spark_jobs.py sort-df  INPUT OUTDIR

Runs under bench/.venv's python (bench/install). Environment:
BENCH_SPARK_MASTER (default local[CORES]), BENCH_SPARK_DRIVER_MEMORY
(default 4g: in local mode the driver is the executor, and Spark's 1g
default would make it spill where GNU sort, given half the RAM, does not).
Nothing is reached over the network: Spark binds to 127.0.0.1.
"""
import operator
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Before pyspark launches its JVM: loopback only, errors only, and Python
# workers from the same interpreter as the driver.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("SPARK_CONF_DIR", os.path.join(HERE, "spark-conf"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def session(name):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(os.environ.get("BENCH_SPARK_MASTER", f"local[{os.cpu_count()}]"))
        .appName(f"shoal-bench-{name}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def tokens(line):
    """The harness-wide tokenizing: whitespace split, each word lowercased
    (the same as examples/wordcount-streaming/mapper.py)."""
    return [w.lower() for w in line.split()]


def write_counts(pairs, path):
    with open(path, "w") as f:
        for word, n in pairs:
            f.write(f"{word}\t{n}\n")


def wordcount_rdd(spark, inp, out):
    """The RDD API as in Spark's own word count example."""
    counts = spark.sparkContext.textFile(inp).flatMap(tokens).map(lambda w: (w, 1)).reduceByKey(operator.add)
    write_counts(counts.collect(), out)


def wordcount_df(spark, inp, out):
    """The DataFrame API: stays in the JVM (no Python workers). Java's `\\s`
    is ASCII whitespace, Python's split() also Unicode spaces: equal on the
    generated ASCII corpus; empty strings from leading blanks dropped."""
    from pyspark.sql import functions as F

    words = spark.read.text(inp).select(F.explode(F.split(F.col("value"), r"\s+")).alias("w")).where(F.col("w") != "")
    rows = words.select(F.lower(F.col("w")).alias("w")).groupBy("w").count().collect()
    write_counts(((r["w"], r["count"]) for r in rows), out)


def tiny(spark, n):
    """n no-op tasks: one partition (so one task) per element."""
    got = spark.sparkContext.parallelize(range(n), n).map(lambda x: x).count()
    if got != n:
        sys.exit(f"spark tiny: counted {got}, want {n}")
    print(got)


def sort_rdd(spark, inp, outdir):
    """sortByKey on the record's 10-byte key; saveAsTextFile writes range
    partitions as part-00000, part-00001, ... so their concatenation in name
    order is the sorted output."""
    lines = spark.sparkContext.textFile(inp)
    lines.map(lambda l: (l[:10], l)).sortByKey().values().saveAsTextFile(outdir)


def sort_df(spark, inp, outdir):
    """The DataFrame equivalent: orderBy the key, written as text parts in
    partition order."""
    from pyspark.sql import functions as F

    spark.read.text(inp).orderBy(F.col("value").substr(1, 10)).write.text(outdir)


def check(spark):
    assert spark.sparkContext.parallelize(range(100), 2).map(lambda x: x * 2).sum() == 9900
    print(f"spark {spark.version} local session ok")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    jobs = {
        "check": (check, 0),
        "wordcount-rdd": (wordcount_rdd, 2),
        "wordcount-df": (wordcount_df, 2),
        "tiny": (lambda s, n: tiny(s, int(n)), 1),
        "sort-rdd": (sort_rdd, 2),
        "sort-df": (sort_df, 2),
    }
    if cmd not in jobs or len(args) != jobs[cmd][1]:
        sys.exit(__doc__)
    spark = session(cmd)
    try:
        jobs[cmd][0](spark, *args)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
