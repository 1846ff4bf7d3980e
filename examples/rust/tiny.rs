//! Many tiny tasks: `tiny N` runs N tasks that each pass one number
//! through `map`, then counts them: Spark's
//! `parallelize(range(n), n).map(lambda x: x).count()`, the measure of
//! what one task costs (bench/run's tiny-task scenario).
//!
//! ```sh
//! cargo run --release --example tiny -- 10000
//! ```

use shoal::prelude::*;

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let n: u32 = match cx.args().first().map(|a| a.parse()) {
            Some(Ok(n)) if n > 0 => n,
            _ => return Err(Error::Usage("usage: tiny N (N tasks, N > 0)".into())),
        };
        let counted = cx.range(0..i64::from(n), n).map(|x| x).count()?;
        if cx.is_driver() {
            println!("{counted} tasks");
        }
        Ok(())
    })
}
