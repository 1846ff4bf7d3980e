//! Bounded text: what a process printed, cut to its last bytes, so that
//! output a user controls (exec output, a failure's stderr) always fits in
//! a message, whatever its size.
//!
//! The tail is kept, not the head: the end of an output is where the
//! error, the summary or the last progress line is. Whoever cuts says so
//! (the counts are kept), so that a reader never takes a tail for the
//! whole.

/// Most bytes of a failure's stderr that a report carries.
pub const STDERR_TAIL_MAX: usize = 64 << 10;

/// Most bytes of each of stdout and stderr that a `shoal exec` reply
/// carries.
pub const EXEC_OUTPUT_MAX: usize = 1 << 20;

/// The last `max` bytes of a stream, read in pieces, and how long the
/// stream was. Memory stays under twice `max` whatever the stream's size.
#[derive(Clone, Debug)]
pub struct Tail {
    buf: Vec<u8>,
    max: usize,
    total: u64,
}

impl Tail {
    pub fn new(max: usize) -> Self {
        Tail { buf: Vec::new(), max, total: 0 }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.buf.extend_from_slice(data);
        // Drained in halves, not on every push: a stream of small pieces
        // would otherwise move the whole tail each time.
        if self.buf.len() > 2 * self.max {
            self.buf.drain(..self.buf.len() - self.max);
        }
    }

    /// How many bytes came in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes (the last `max`) and how many were cut from the front.
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        let start = self.buf.len().saturating_sub(self.max);
        self.buf.drain(..start);
        let cut = self.total - self.buf.len() as u64;
        (self.buf, cut)
    }
}

/// `text` cut to about its last `max` bytes (at a character boundary),
/// with a line in front saying how much was cut; unchanged when it fits.
pub fn tail_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("(the first {start} of {} bytes are cut)\n{}", text.len(), &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_bytes_and_counts_the_rest() {
        let mut t = Tail::new(4);
        for piece in [&b"abc"[..], b"defgh", b"", b"ij"] {
            t.push(piece);
        }
        assert_eq!(t.total(), 10);
        assert_eq!(t.finish(), (b"ghij".to_vec(), 6));
    }

    #[test]
    fn a_short_stream_is_whole() {
        let mut t = Tail::new(4);
        t.push(b"ab");
        assert_eq!(t.finish(), (b"ab".to_vec(), 0));
    }

    #[test]
    fn a_tail_stays_bounded_in_memory() {
        let mut t = Tail::new(1000);
        for _ in 0..10_000 {
            t.push(&[b'x'; 300]);
            assert!(t.buf.len() <= 2000 + 300);
        }
        assert_eq!(t.finish().1, 3_000_000 - 1000);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary_with_a_note() {
        assert_eq!(tail_text("short", 10), "short");
        // "é" is two bytes: cutting inside it moves the cut past it.
        assert_eq!(tail_text("aaaaéb", 2), "(the first 6 of 7 bytes are cut)\nb");
    }
}
