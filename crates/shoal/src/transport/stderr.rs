//! Keeps the tail of a child's stderr, read on a task of its own so that a
//! full pipe can never block the child (ssh or an agent).

use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;

const KEEP: usize = 8192;

/// The last few KiB a child wrote to stderr.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// Starts draining `pipe` in the background.
    pub fn spawn(pipe: Option<ChildStderr>) -> Self {
        let tail = StderrTail::default();
        if let Some(mut pipe) = pipe {
            let sink = tail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.push(&buf[..n]);
                }
            });
        }
        tail
    }

    fn push(&self, data: &[u8]) {
        let mut t = self.0.lock().unwrap();
        t.extend_from_slice(data);
        if t.len() > 2 * KEEP {
            let cut = t.len() - KEEP;
            t.drain(..cut);
        }
    }

    /// The kept text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).trim().to_string()
    }

    /// `": <stderr>"` when there is any, for appending to a message.
    pub fn suffix(&self) -> String {
        let t = self.text();
        if t.is_empty() {
            String::new()
        } else {
            format!("; stderr: {t}")
        }
    }
}
