//! Sorts a file of records by their first 10 bytes: `sort INPUT OUTPUT`.
//!
//! Records are lines (for example 10-byte keys and 89-byte payloads, as in
//! the sort benchmark); the output has the same lines in key order (ties
//! by the rest of the line), written to OUTPUT on the driver.

use shoal::prelude::*;

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let [input, output] = cx.args() else {
            return Err(Error::Usage("usage: sort INPUT OUTPUT".into()));
        };
        let records = cx.text_file(input)?.map(|line| {
            let cut = line.char_indices().nth(10).map_or(line.len(), |(i, _)| i);
            let (key, rest) = line.split_at(cut);
            (key.to_string(), rest.to_string())
        });
        records.sort_by_key().map(|(k, v)| format!("{k}{v}")).save_as_text(output)?;
        Ok(())
    })
}
