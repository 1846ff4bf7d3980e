//! Single-threaded word count: the floor a Rust user gets without any
//! framework, so the benchmark shows what Shoal's distribution costs or buys.
//!
//! usage: wordcount [FILE]   (stdin when no FILE)
//!
//! Tokenizing is the one every system in bench/run uses: split on
//! whitespace, lowercase each word. Prints `word<TAB>count` lines in no
//! particular order (the harness compares maps, not line order).
//!
//! bench/run compiles this file with `rustc -O` into bench/.build/; it has
//! no dependencies so that needs no cargo and no network.
use std::collections::HashMap;
use std::env;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

fn main() -> io::Result<()> {
    let input: Box<dyn Read> = match env::args_os().nth(1) {
        Some(path) => Box::new(File::open(path)?),
        None => Box::new(io::stdin()),
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        for word in line.split_whitespace() {
            // `to_lowercase` allocates; skip it for words it would not
            // change (all the corpus's words but a few), with the same result.
            let needs_lowering = word.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii());
            if needs_lowering {
                *counts.entry(word.to_lowercase()).or_insert(0) += 1;
            } else if let Some(n) = counts.get_mut(word) {
                *n += 1;
            } else {
                counts.insert(word.to_owned(), 1);
            }
        }
        line.clear();
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (word, n) in &counts {
        writeln!(out, "{word}\t{n}")?;
    }
    out.flush()
}
