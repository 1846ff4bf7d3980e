//! Multi-threaded word count without any framework: what a Rust user writes
//! by hand for N cores, so the benchmark shows the framework's own overhead
//! (Shoal's textbook Rust word count, examples/rust/wordcount.rs, on the same
//! cores is compared to this).
//!
//! usage: wordcount_threads FILE [THREADS]   (THREADS defaults to the
//! number of available cores)
//!
//! The file is split into THREADS byte ranges aligned to lines (a line that
//! straddles a boundary belongs to the range where it starts); each thread
//! reads its range in chunks and counts it into its own
//! `HashMap<String, u64>`, and the maps are merged at the end.
//!
//! Tokenizing is the one every system in bench/run uses, the same as
//! bench/baseline/wordcount.rs: split on whitespace, lowercase each word.
//! It is written the way the textbook Shoal program is (`flat_map` to
//! `str::to_lowercase` words, `reduce_by_key`): every word occurrence
//! becomes a `String` from `to_lowercase` and is counted with
//! `*map.entry(word).or_insert(0) += 1`, so the two rows differ by the
//! framework alone, not by a lookup that avoids allocating.
//! Prints `word<TAB>count` lines in no particular order (the harness
//! compares maps, not line order).
//!
//! bench/run compiles this file with `rustc -O` into bench/.build/; it has
//! no dependencies so that needs no cargo and no network.
use std::collections::HashMap;
use std::env;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::process;
use std::thread;

/// The first line start at or after `offset`: `offset` itself when it is 0
/// or the byte before it is a newline, else the byte after the next newline
/// (or `len` when there is none).
fn line_start(file: &mut File, offset: u64, len: u64) -> io::Result<u64> {
    if offset == 0 || offset >= len {
        return Ok(offset.min(len));
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut skipped = Vec::new();
    let n = reader.read_until(b'\n', &mut skipped)?;
    Ok(offset - 1 + n as u64)
}

/// Counts the words of the lines in `[start, end)` of the file at `path`.
fn count_range(path: &str, start: u64, end: u64) -> io::Result<HashMap<String, u64>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(1 << 20, file.take(end - start));
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        for word in line.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
        line.clear();
    }
    Ok(counts)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: wordcount_threads FILE [THREADS]");
        process::exit(2)
    };
    let path = match args.as_slice() {
        [path] | [path, _] => path.as_str(),
        _ => usage(),
    };
    let threads = match args.get(1) {
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => usage(),
        },
        None => thread::available_parallelism().map_or(1, |n| n.get() as u64),
    };

    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut bounds = Vec::with_capacity(threads as usize + 1);
    for i in 0..threads {
        bounds.push(line_start(&mut file, len / threads * i + len % threads * i / threads, len)?);
    }
    bounds.push(len);

    let mut maps = thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                scope.spawn(move || count_range(path, start, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a counting thread panicked")).collect::<io::Result<Vec<_>>>()
    })?;

    // Merge into the largest map, so the fewest words are moved.
    maps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut maps = maps.into_iter();
    let mut counts = maps.next().unwrap_or_default();
    for map in maps {
        for (word, n) in map {
            *counts.entry(word).or_insert(0) += n;
        }
    }

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (word, n) in &counts {
        writeln!(out, "{word}\t{n}")?;
    }
    out.flush()
}
