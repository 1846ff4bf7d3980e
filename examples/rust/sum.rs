//! Sum of an array of integers: `sum N [PARTITIONS]` adds 1..=N, doubled
//! by a map, and checks the result against the formula.

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let n: i64 = cx.args().first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
        let partitions: u32 = cx.args().get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
        let numbers: Vec<i64> = (1..=n).collect();
        let total = cx.parallelize(numbers, partitions)?.map(|x| 2 * x).reduce(|a, b| a + b)?.unwrap_or(0);
        let count = cx.range(1..n + 1, partitions).count()?;
        if cx.is_driver() {
            println!("sum {total}");
            println!("count {count}");
            println!("expected {}", n * (n + 1));
        }
        Ok(())
    })
}
