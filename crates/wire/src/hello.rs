//! The handshake: the first message each side sends.
//!
//! It carries a magic string (so that a peer which is not Shoal at all is a
//! readable error rather than a decode failure somewhere later), the
//! protocol version, and the hash of the sender's executable, which lets the
//! driver notice an agent built from other code.

use serde::{Deserialize, Serialize};

use crate::WireError;

/// Bumped whenever [`crate::Message`] changes shape.
pub const PROTOCOL_VERSION: u32 = 5;

/// Constant first field of every `Hello`.
pub const MAGIC: [u8; 8] = *b"SHOAL\x00\x01\x00";

/// Which end of a link sent the `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Driver,
    Agent,
}

/// The first message on every link, both ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 8],
    pub version: u32,
    pub role: Role,
    /// BLAKE3 of the sender's executable, hex.
    pub binary_hash: String,
}

impl Hello {
    pub fn new(role: Role, binary_hash: String) -> Self {
        Hello { magic: MAGIC, version: PROTOCOL_VERSION, role, binary_hash }
    }

    /// Checks a peer's `Hello` against ours.
    pub fn check(&self) -> Result<(), WireError> {
        if self.magic != MAGIC {
            return Err(WireError::NotShoal("bad magic in hello".into()));
        }
        if self.version != PROTOCOL_VERSION {
            return Err(WireError::Version { ours: PROTOCOL_VERSION, theirs: self.version });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_mismatch_is_readable() {
        let mut h = Hello::new(Role::Agent, "ab".into());
        h.version = 99;
        let err = h.check().unwrap_err().to_string();
        assert_eq!(err, format!("protocol version mismatch: we speak {PROTOCOL_VERSION}, the peer speaks 99"));
    }

    #[test]
    fn good_hello_passes() {
        Hello::new(Role::Driver, "ab".into()).check().unwrap();
    }
}
