//! The running executable and its content hash, which names it on every
//! host (`<workdir>/bin/shoal-<hash>`): two drivers built from the same
//! code share one deployed copy, and a rebuilt driver never runs an old
//! agent by mistake.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Path and BLAKE3 hash (hex) of an executable.
#[derive(Clone, Debug)]
pub struct Binary {
    pub path: PathBuf,
    pub hash: String,
    pub size: u64,
}

static CURRENT: OnceLock<Binary> = OnceLock::new();

/// The current executable, hashed once per process; or the agent set by
/// [`set_agent`] (a driver that is not itself a `shoal` build, such as
/// the Python interpreter, deploys the `shoal` command instead).
pub fn current() -> std::io::Result<&'static Binary> {
    if let Some(b) = CURRENT.get() {
        return Ok(b);
    }
    let b = hash_file(std::env::current_exe()?)?;
    Ok(CURRENT.get_or_init(|| b))
}

/// Makes [`current`] return `path` (hashed now): the binary every host
/// runs as its agent. Call it before anything asks for [`current`];
/// afterwards it is refused.
pub fn set_agent(path: PathBuf) -> std::io::Result<()> {
    let b = hash_file(path)?;
    let shown = b.path.display().to_string();
    CURRENT.set(b).map_err(|_| std::io::Error::other(format!("the agent binary is already chosen; {shown} was set too late")))
}

/// Hashes an executable file (used for `agent_binary` overrides too).
pub fn hash_file(path: PathBuf) -> std::io::Result<Binary> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(&path)?;
    let size = file.metadata()?.len();
    hasher.update_reader(file)?;
    Ok(Binary { path, hash: hasher.finalize().to_hex().to_string(), size })
}
