//! Length-prefixed frames: a 4-byte little-endian length, then that many
//! bytes of payload.
//!
//! The parser never panics and never trusts the length: a length above
//! [`MAX_FRAME`] is invalid at once, before any allocation, so a peer that
//! sends garbage (or a login banner printed by a remote shell) is refused
//! instead of making us wait for gigabytes.

/// Largest payload we accept. Bulk data travels in chunks of at most
/// [`CHUNK`] bytes, so anything much larger is a corrupt stream.
pub const MAX_FRAME: usize = 4 << 20;

/// Size of the chunks bulk payloads are cut into, so that heartbeats and
/// cancels never wait behind a big transfer.
pub const CHUNK: usize = 1 << 20;

const HEADER: usize = 4;

/// Why a frame could not be parsed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge { len: usize },
}

/// Result of looking at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not enough bytes yet: wait for more.
    Incomplete,
    /// A whole frame: its payload and how many bytes it used.
    Frame { payload: &'a [u8], used: usize },
}

/// Looks for one whole frame at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed<'_>, FrameError> {
    let Some(head) = buf.get(..HEADER) else {
        return Ok(Parsed::Incomplete);
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    match buf.get(HEADER..HEADER + len) {
        Some(payload) => Ok(Parsed::Frame { payload, used: HEADER + len }),
        None => Ok(Parsed::Incomplete),
    }
}

/// Appends one frame holding `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge { len: payload.len() });
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(payload, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let buf = framed(b"hello");
        assert_eq!(parse(&buf), Ok(Parsed::Frame { payload: b"hello", used: 9 }));
    }

    #[test]
    fn incomplete_header_and_body() {
        let buf = framed(b"hello");
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_length_is_invalid_not_incomplete() {
        // "SSH-" as a little-endian length is about 760 MB: a banner, not a frame.
        assert_eq!(parse(b"SSH-2.0"), Err(FrameError::TooLarge { len: 0x2d48_5353 }));
    }

    #[test]
    fn empty_payload() {
        assert_eq!(parse(&framed(b"")), Ok(Parsed::Frame { payload: b"", used: 4 }));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn concatenated_frames_split_back(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let mut buf = Vec::new();
            for p in &payloads { encode(p, &mut buf).unwrap(); }
            let mut rest = &buf[..];
            for p in &payloads {
                match parse(rest).unwrap() {
                    Parsed::Frame { payload, used } => { prop_assert_eq!(payload, &p[..]); rest = &rest[used..]; }
                    Parsed::Incomplete => prop_assert!(false, "lost a frame"),
                }
            }
            prop_assert!(rest.is_empty());
        }
    }
}
