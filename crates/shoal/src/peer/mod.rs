//! Direct data between the agents of one run.
//!
//! A reducer's agent fetches shuffle buckets straight from the agents
//! that hold them instead of through the driver. Every connection is a
//! Noise session (`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`, by the `snow`
//! crate) keyed by the run's [`RunKey`], which the driver makes for each
//! run and hands to every agent over its own ssh link; the run id is the
//! session's prologue. A connection that does not complete the handshake
//! with that key and that run (garbage, a stranger, another run's key) is
//! refused before a single byte it sent is parsed: the handshake's
//! authentication tag is checked by the Noise implementation first.
//!
//! - [`channel`]: the handshake and the encrypted, length-prefixed messages;
//! - [`serve`]: the listener an agent keeps for the length of a run;
//! - [`fetch`]: the client side: reachability probes and block fetches.
//!
//! Inside a session, a request is one message: a kind byte and a block
//! hash. The answer to a fetch is a header (status and size) followed by
//! the block in messages of at most [`channel::MAX_PLAIN`] bytes; the
//! fetcher verifies the block's hash before it stores it.

pub mod channel;
pub mod fetch;
pub mod serve;

pub use shoal_wire::RunKey;

/// The kind byte of a request: are you there?
const PING: u8 = 1;
/// The kind byte of a request: send me this block.
const FETCH: u8 = 2;

/// Status of a fetch answer: the block follows.
const FOUND: u8 = 0;
/// Status of a fetch answer: not here (the message says why).
const NOT_FOUND: u8 = 1;

/// A fresh random key for one run.
pub fn new_key() -> RunKey {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    RunKey(key)
}

/// Set by a standing cluster's worker for the agents it starts: the
/// address of its host on the network the cluster shares.
pub const PEER_IP_ENV: &str = "SHOAL_PEER_IP";

/// The address peers use to reach this agent: the one its worker gave
/// ([`PEER_IP_ENV`]), else the address its driver's ssh connection came
/// in on (`SSH_CONNECTION`), which is on the network the hosts share;
/// loopback for an agent the driver started itself.
pub fn own_ip() -> std::net::IpAddr {
    if let Some(ip) = std::env::var(PEER_IP_ENV).ok().and_then(|v| v.parse().ok()) {
        return ip;
    }
    std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|v| v.split_whitespace().nth(2).and_then(|ip| ip.parse().ok()))
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests;
