//! Misbehaviour on purpose, for tests of the driver's defences: compiled
//! into debug builds only, and switched on by `SHOAL_FAILPOINT` in the
//! agent's environment. A release binary has none of it.
//!
//! - `forge-reports:DIR`: every agent notes the attempts it is sent in a
//!   file of its own under DIR; with every real task report, an agent also
//!   reports success, with made-up output, for every attempt the other
//!   agents were sent, and again for the attempt just reported. The driver
//!   must believe only the host it sent an attempt to, and only once.

use shoal_wire::{Message, TaskReport};

/// The output a forged report claims.
#[cfg(debug_assertions)]
const FORGED: &[u8] = b"forged\n";

#[cfg(debug_assertions)]
fn forge_dir() -> Option<std::path::PathBuf> {
    std::env::var("SHOAL_FAILPOINT").ok()?.strip_prefix("forge-reports:").map(Into::into)
}

/// Notes an attempt the driver sent to this agent.
#[cfg(debug_assertions)]
pub fn received(attempt: u32) {
    use std::io::Write;
    let Some(dir) = forge_dir() else { return };
    let path = dir.join(std::process::id().to_string());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{attempt}");
    }
}

#[cfg(not(debug_assertions))]
pub fn received(_: u32) {}

/// The forged reports that go after `real`, when asked to.
#[cfg(debug_assertions)]
pub fn forged_reports(real: &TaskReport) -> Vec<Message> {
    let Some(dir) = forge_dir() else { return vec![] };
    let me = std::process::id().to_string();
    let mut theirs: Vec<u32> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str() != Some(me.as_str()))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| text.lines().filter_map(|l| l.parse().ok()).collect::<Vec<u32>>())
        .collect();
    theirs.push(real.attempt);
    theirs
        .into_iter()
        .map(|attempt| {
            let mut forged = TaskReport { attempt, status: shoal_wire::ExitStatus::Code(0), ..real.clone() };
            forged.stderr_tail.clear();
            super::task::inline_output(&mut forged, FORGED.to_vec());
            Message::TaskDone(forged)
        })
        .collect()
}

#[cfg(not(debug_assertions))]
pub fn forged_reports(_: &TaskReport) -> Vec<Message> {
    vec![]
}
