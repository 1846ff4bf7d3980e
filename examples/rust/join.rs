//! A join: `join USERS ORDERS` where both are `id<TAB>...` text files:
//! users are `id<TAB>name`, orders `user_id<TAB>amount`. Prints the total
//! amount per user name, sorted by name.

use shoal::prelude::*;

fn fields(line: &str) -> (u64, String) {
    let (id, rest) = line.split_once('\t').unwrap_or((line, ""));
    (id.trim().parse().unwrap_or_else(|_| panic!("not an id: {id:?}")), rest.to_string())
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let [users, orders] = cx.args() else {
            return Err(Error::Usage("usage: join USERS ORDERS".into()));
        };
        let users = cx.text_file(users)?.map(|l| fields(&l));
        let orders = cx.text_file(orders)?.map(|l| {
            let (id, amount) = fields(&l);
            (id, amount.parse::<u64>().unwrap_or_else(|_| panic!("not an amount: {amount:?}")))
        });
        let totals = users.join(&orders).map(|(_, (name, amount))| (name, amount)).reduce_by_key(|a, b| a + b).sort_by_key().collect()?;
        if cx.is_driver() {
            for (name, total) in totals {
                println!("{name}\t{total}");
            }
        }
        Ok(())
    })
}
