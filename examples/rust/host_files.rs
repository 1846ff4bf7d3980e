//! Data that already lives on the hosts: `host_files PATH` counts the
//! lines and words of each host's own copy of PATH (`{host}` in PATH is
//! replaced by the host's name), reading every file where it is, and
//! prints the totals and the ten most frequent words.
//!
//! ```sh
//! cargo run --release --example host_files -- --cluster cluster.toml '/data/logs/{host}.log'
//! ```

use shoal::prelude::*;

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let Some(path) = cx.args().first() else {
            return Err(Error::Usage("usage: host_files PATH (with {host} for the host's name)".into()));
        };
        let lines = cx.text_file_on_hosts(path);
        let n_lines = lines.count()?;
        let mut words = lines
            .flat_map(|l: String| l.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .collect()?;
        if cx.is_driver() {
            words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            println!("lines {n_lines}");
            println!("words {}", words.iter().map(|(_, n)| n).sum::<u64>());
            for (w, n) in words.iter().take(10) {
                println!("{n}\t{w}");
            }
        }
        Ok(())
    })
}
