//! A test program for the Dataset API's failure handling (not a tutorial):
//! `faults MODE ...`, used by `tests/dataset*.rs`.
//!
//! - `plan-differs N`: tasks build another plan than the driver.
//! - `panic-on HOST N`: closures panic on one host only; retries elsewhere.
//! - `panic-always N`: closures panic everywhere; the job fails.
//! - `slow N MS`: every record takes MS milliseconds (to kill a host mid-job).
//! - `chatty N`: closures print to stdout, which must not reach the records.
//! - `pids N [MS]`: N tasks of one record each; each prints its record and
//!   the id of the process that ran it (resident executors run many), then
//!   sleeps MS milliseconds (default 0).
//! - `crash-at P N`: N tasks of one record; the task of record P panics.
//! - `exit-at P N`: the same, but the task of record P calls
//!   `std::process::exit(0)`.
//! - `big N KIB`: N tasks whose input and output are each a string of KIB
//!   KiB (they travel inline up to 64 KiB, many written ahead).
//! - `cached N [HOST]`: a cached dataset read by two jobs (`first`, the
//!   sum of `3i`, and `second`, of `3i + 1`), whose second job's closures
//!   panic on HOST; with `$FAULTS_GATE` set, the driver waits between the
//!   two until that file exists.
//! - `text-twice FILE HOST`: two jobs over the lines of FILE (`first`,
//!   their count, and `second`, the same), whose second job's closures
//!   panic on HOST.

use std::time::Duration;

use shoal::prelude::*;

fn num(cx: &Context, i: usize) -> i64 {
    cx.args().get(i).and_then(|a| a.parse().ok()).unwrap_or(100)
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let mode = cx.args().first().cloned().unwrap_or_default();
        match mode.as_str() {
            "plan-differs" => {
                let parts = if cx.is_driver() { 4 } else { 5 };
                let n = cx.range(0..num(cx, 1), parts).count()?;
                println!("count {n}");
            }
            "panic-on" => {
                let host = cx.args().get(1).cloned().unwrap_or_default();
                let sum = cx
                    .range(0..num(cx, 2), 12)
                    .map(move |i| {
                        if std::env::var("SHOAL_HOST").is_ok_and(|h| h == host) && i % 50 == 7 {
                            panic!("boom on {host} at {i}");
                        }
                        2 * i
                    })
                    .reduce(|a, b| a + b)?;
                println!("sum {}", sum.unwrap_or(0));
            }
            "panic-always" => {
                let n = cx.range(0..num(cx, 1), 4).map(|i| if i == 3 { panic!("boom at {i}") } else { i }).count()?;
                println!("count {n}");
            }
            "slow" => {
                let ms = num(cx, 2) as u64;
                let mut groups = cx
                    .range(0..num(cx, 1), 12)
                    .map(move |i| {
                        std::thread::sleep(Duration::from_millis(ms));
                        (i % 7, 1u64)
                    })
                    .reduce_by_key(|a, b| a + b)
                    .collect()?;
                groups.sort();
                println!("groups {groups:?}");
            }
            "chatty" => {
                let n = cx
                    .range(0..num(cx, 1), 4)
                    .map(|i| {
                        println!("noise {i}");
                        i
                    })
                    .count()?;
                println!("count {n}");
            }
            "pids" => {
                let n = num(cx, 1);
                let ms = cx.args().get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
                let count = cx
                    .range(0..n, n as u32)
                    .map(move |i| {
                        eprintln!("record {i} pid {}", std::process::id());
                        std::thread::sleep(Duration::from_millis(ms));
                        i
                    })
                    .count()?;
                println!("count {count}");
            }
            "crash-at" => {
                let (at, n) = (num(cx, 1), num(cx, 2));
                let count = cx.range(0..n, n as u32).map(move |i| if i == at { panic!("crash at {i}") } else { i }).count()?;
                println!("count {count}");
            }
            "exit-at" => {
                let (at, n) = (num(cx, 1), num(cx, 2));
                let count = cx.range(0..n, n as u32).map(move |i| if i == at { std::process::exit(0) } else { i }).count()?;
                println!("count {count}");
            }
            "big" => {
                let (n, kib) = (num(cx, 1), num(cx, 2) as usize);
                // Each string a little under KIB KiB, so that with its
                // framing a partition stays inline at 64.
                let items: Vec<String> = (0..n).map(|i| format!("{i} {}", "x".repeat(kib * 1024 - 64))).collect();
                let out = cx.parallelize(items, n as u32)?.map(|s| s.replace('x', "y")).collect()?;
                let ok = out.iter().filter(|s| s.len() > kib * 1024 - 64 && !s.contains('x')).count();
                println!("big {ok}");
            }
            "cached" => {
                let host = cx.args().get(2).cloned().unwrap_or_default();
                let tripled = cx.range(0..num(cx, 1), 6).map(|i| 3 * i).cache();
                println!("first {}", tripled.reduce(|a, b| a + b)?.unwrap_or(0));
                if let Some(gate) = std::env::var_os("FAULTS_GATE").filter(|_| cx.is_driver()) {
                    while !std::path::Path::new(&gate).exists() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                let second = tripled.map(move |i| {
                    if std::env::var("SHOAL_HOST").is_ok_and(|h| h == host) {
                        panic!("boom on {host}");
                    }
                    i + 1
                });
                println!("second {}", second.reduce(|a, b| a + b)?.unwrap_or(0));
            }
            "text-twice" => {
                let host = cx.args().get(2).cloned().unwrap_or_default();
                let lines = cx.text_file(cx.args().get(1).map_or("", String::as_str))?;
                println!("first {}", lines.count()?);
                let second = lines.filter(move |_| {
                    if std::env::var("SHOAL_HOST").is_ok_and(|h| h == host) {
                        panic!("boom on {host}");
                    }
                    true
                });
                println!("second {}", second.count()?);
            }
            other => return Err(Error::Usage(format!("faults: unknown mode {other:?}"))),
        }
        Ok(())
    })
}
