//! Word count with the Dataset API: `wordcount CORPUS [OUT]`.
//!
//! Prints the number of distinct words and the ten most frequent; with
//! OUT, also writes every `word<TAB>count` line there (sorted by word).
//!
//! ```sh
//! cargo run --release --example wordcount -- corpus.txt                        # this machine
//! cargo run --release --example wordcount -- --cluster cluster.toml corpus.txt # a cluster
//! ```

use shoal::prelude::*;

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let Some(corpus) = cx.args().first() else {
            return Err(Error::Usage("usage: wordcount CORPUS [OUT]".into()));
        };
        let counts = cx
            .text_file(corpus)?
            .flat_map(|line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b);
        if let Some(out) = cx.args().get(1) {
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
