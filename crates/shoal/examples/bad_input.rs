//! A test program for the Dataset API's errors on bad input (not a
//! tutorial): `bad_input MODE ...`, used by `tests/dataset_errors.rs`.
//!
//! - `unencodable N`: `parallelize` of N records whose `Serialize` fails
//!   for record 3; the call returns an error on the driver.
//! - `host-file PATH`: counts the lines of each host's own PATH
//!   (`text_file_on_hosts`); a host without it fails the job.

use serde::{Deserialize, Serialize, Serializer};
use shoal::prelude::*;

/// A record whose `Serialize` refuses the number 3.
#[derive(Clone, Deserialize)]
struct NoThree(u32);

impl Serialize for NoThree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(serde::ser::Error::custom("three is not allowed"));
        }
        s.serialize_u32(self.0)
    }
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let args = cx.args();
        match (args.first().map(String::as_str), args.get(1)) {
            (Some("unencodable"), Some(n)) => {
                let n: u32 = n.parse().map_err(|_| Error::Usage(format!("{n:?} is not a number")))?;
                let items = (0..n).map(NoThree).collect();
                let count = cx.parallelize(items, 2)?.count()?;
                println!("count {count}");
            }
            (Some("host-file"), Some(path)) => {
                let count = cx.text_file_on_hosts(path).count()?;
                println!("lines {count}");
            }
            _ => return Err(Error::Usage("usage: bad_input unencodable N | host-file PATH".into())),
        }
        Ok(())
    })
}
