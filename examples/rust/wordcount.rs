//! Word count with the Dataset API: `wordcount CORPUS [OUT] [--simple]`.
//!
//! Prints the number of distinct words and the ten most frequent; with
//! OUT, also writes every `word<TAB>count` line there, sorted by word.
//! Words are split on whitespace and lowercased.
//!
//! Each partition is first counted in a local `HashMap` that looks words
//! up without allocating (the single-threaded way to write it), then the
//! partial counts are reduced by key. `--simple` runs the textbook form
//! instead, `flat_map` to words and `map` to `(word, 1)`: same answer,
//! about twice the CPU time, because every word becomes a `String`.
//!
//! ```sh
//! cargo run --release --example wordcount -- corpus.txt                        # this machine
//! cargo run --release --example wordcount -- --cluster cluster.toml corpus.txt # a cluster
//! ```

use std::collections::HashMap;

use shoal::prelude::*;

/// Counts the words of one partition's lines.
fn count_words(lines: impl Iterator<Item = String>) -> HashMap<String, u64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for line in lines {
        for word in line.split_whitespace() {
            if word.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
                *counts.entry(word.to_lowercase()).or_insert(0) += 1;
            } else if let Some(n) = counts.get_mut(word) {
                *n += 1;
            } else {
                counts.insert(word.to_owned(), 1);
            }
        }
    }
    counts
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let simple = cx.args().iter().any(|a| a == "--simple");
        let args: Vec<&String> = cx.args().iter().filter(|a| *a != "--simple").collect();
        let Some(corpus) = args.first() else {
            return Err(Error::Usage("usage: wordcount CORPUS [OUT] [--simple]".into()));
        };
        let lines = cx.text_file(corpus)?;
        let pairs = if simple {
            lines.flat_map(|line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()).map(|w| (w, 1u64))
        } else {
            lines.map_partitions(count_words)
        };
        let counts = pairs.reduce_by_key(|a, b| a + b);
        if let Some(out) = args.get(1) {
            counts.sort_by_key().map(|(w, n)| format!("{w}\t{n}")).save_as_text(out)?;
        }
        let mut all = counts.collect()?;
        if cx.is_driver() {
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            println!("{} distinct words, {} in all", all.len(), all.iter().map(|(_, n)| n).sum::<u64>());
            for (w, n) in all.iter().take(10) {
                println!("{n}\t{w}");
            }
        }
        Ok(())
    })
}
