//! Files and directories of the agent that only this user can reach: the
//! check of the work dir itself, exclusive creation of files, and private
//! copies of cached blocks for tasks.
//!
//! The work dir is the agent's trust anchor: the ssh bootstrap executes
//! the binary in it, and blocks in it are handed to later runs. So it must
//! belong to this user and be closed to everyone else (0700); then no
//! other user can plant a file or symlink where the agent will write.
//! Files the agent creates are opened with `O_EXCL|O_NOFOLLOW` anyway, so
//! that a name that already exists (a symlink a task left in its scratch,
//! say) is an error, never a write through it.
//!
//! A task gets its own copy of a block (a reflink where the file system
//! shares extents, a plain copy elsewhere), never a link to the cached
//! file: it runs as the same user, so a read-only mode would not stop it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the files the agent creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the executables it places, and of its directories.
pub const EXEC_MODE: u32 = 0o700;

/// Why a work dir is refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    #[error("cannot create the work dir {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "the work dir {path} belongs to uid {owner}, not to this user (uid {me}); another user could replace the agent or its cached blocks: use a work dir of your own (the host's `workdir` in the cluster file)"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "the work dir {path} is writable by other users (mode {mode:o}); they could replace the agent or its cached blocks: run `chmod 700 {path}` on that host, or use another work dir"
    )]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error("{path} in the work dir is not a directory; remove it, and the agent makes it again")]
    NotADirectory { path: PathBuf },
}

/// Makes sure `root` exists, is ours and only ours, and closes it (and
/// the given sub-directories, made if missing) to other users (0700).
/// A work dir that others can write is refused, not repaired: whatever
/// they planted there may already be in it.
pub fn secure_workdir(root: &Path, subdirs: &[&str]) -> Result<(), WorkdirError> {
    create_dir(root).map_err(|source| WorkdirError::Create { path: root.to_path_buf(), source })?;
    // The root itself may be a symlink (a work dir on another disk): what
    // counts is the directory it leads to.
    let meta = fs::metadata(root).map_err(|source| WorkdirError::Create { path: root.to_path_buf(), source })?;
    check_owner(root, &meta)?;
    for sub in subdirs {
        let dir = root.join(sub);
        create_dir(&dir).map_err(|source| WorkdirError::Create { path: dir.clone(), source })?;
        let meta = fs::symlink_metadata(&dir).map_err(|source| WorkdirError::Create { path: dir.clone(), source })?;
        if !meta.is_dir() {
            return Err(WorkdirError::NotADirectory { path: dir });
        }
        check_owner(&dir, &meta)?;
        close(&dir)?;
    }
    close(root)
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<(), WorkdirError> {
    let me = euid();
    if meta.uid() != me {
        return Err(WorkdirError::NotOwned { path: path.to_path_buf(), owner: meta.uid(), me });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(WorkdirError::OpenToOthers { path: path.to_path_buf(), mode });
    }
    Ok(())
}

fn close(dir: &Path) -> Result<(), WorkdirError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(EXEC_MODE))
        .map_err(|source| WorkdirError::Create { path: dir.to_path_buf(), source })
}

fn euid() -> u32 {
    // SAFETY: a plain getter without side effects.
    unsafe { libc::geteuid() }
}

/// Creates `dir` and its missing parents, each new one 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(EXEC_MODE).create(dir)
}

/// Creates `dir` (0700), which must not exist yet: what is in it was put
/// there by us or by the task we give it to, never planted beforehand.
pub fn create_fresh_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        create_dir(parent)?;
    }
    DirBuilder::new().mode(EXEC_MODE).create(dir)
}

/// Creates (or empties) a file of ours for writing, 0600, without
/// following a symlink at its name.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Creates a new file for writing, 0600; fails if the name exists in any
/// form (file, directory, symlink), so nothing is written through a link.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Opens a file for reading without following a symlink at its name.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Makes `dest` (a new file) a private copy of `src` with `mode`: a
/// reflink (no bytes copied; the file system unshares on write) where the
/// file system can, a copy elsewhere. Either way, writing to `dest` never
/// changes `src`.
pub fn copy(src: &Path, dest: &Path, mode: u32) -> io::Result<()> {
    let from = open_nofollow(src)?;
    let to = create_new(dest)?;
    let copied = clone_or_copy(&from, &to);
    let finished = copied.and_then(|_| to.set_permissions(fs::Permissions::from_mode(mode)));
    if finished.is_err() {
        let _ = fs::remove_file(dest);
    }
    finished
}

fn clone_or_copy(from: &File, mut to: &File) -> io::Result<()> {
    if reflink(from, to).is_ok() {
        return Ok(());
    }
    // std's copy between files uses copy_file_range (in-kernel, and a
    // server-side or shared-extent copy where the file system offers one).
    let mut from = from;
    io::copy(&mut from, &mut to).map(|_| ())
}

/// Shares `from`'s extents with `to` (FICLONE): btrfs, XFS, bcachefs,
/// OCFS2; fails with EOPNOTSUPP or EXDEV elsewhere.
#[cfg(target_os = "linux")]
fn reflink(from: &File, to: &File) -> io::Result<()> {
    // SAFETY: both descriptors are open for the duration of the call;
    // FICLONE takes the source descriptor as its argument.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn reflink(_from: &File, _to: &File) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_copy_is_its_own_file_with_the_asked_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        fs::write(&src, b"original").unwrap();
        copy(&src, &dest, 0o700).unwrap();
        OpenOptions::new().append(true).open(&dest).unwrap().write_all(b" changed").unwrap();
        assert_eq!(fs::read(&src).unwrap(), b"original");
        assert_eq!(fs::read(&dest).unwrap(), b"original changed");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn nothing_is_written_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let planted = dir.path().join("output");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert_eq!(create_new(&planted).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert!(copy(&dir.path().join("victim"), &planted, 0o600).is_err());
        assert!(open_nofollow(&planted).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        create_new(&dir.path().join("f")).unwrap();
        assert_eq!(fs::metadata(dir.path().join("f")).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_work_dir_is_closed_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        secure_workdir(&root, &["blocks", "runs"]).unwrap();
        for d in [&root, &root.join("blocks"), &root.join("runs")] {
            assert_eq!(fs::metadata(d).unwrap().mode() & 0o777, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn a_work_dir_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let err = secure_workdir(&root, &[]).unwrap_err().to_string();
        let p = root.display();
        assert_eq!(
            err,
            format!("the work dir {p} is writable by other users (mode 777); they could replace the agent or its cached blocks: run `chmod 700 {p}` on that host, or use another work dir")
        );
    }

    #[test]
    fn a_work_dir_of_another_user_is_refused() {
        if euid() != 0 {
            return; // only root can give a directory away
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
        let err = secure_workdir(&root, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("the work dir {} belongs to uid 65534, not to this user (uid 0); another user could replace the agent or its cached blocks: use a work dir of your own (the host's `workdir` in the cluster file)", root.display())
        );
    }

    #[test]
    fn a_symlink_in_place_of_a_sub_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        create_dir(&root).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("blocks")).unwrap();
        let err = secure_workdir(&root, &["blocks"]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{} in the work dir is not a directory; remove it, and the agent makes it again", root.join("blocks").display())
        );
    }
}
