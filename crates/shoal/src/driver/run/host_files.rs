//! Inputs that live on the hosts: `[input] path = "/data/{host}/events.log"`
//! names a file (or, with `split = "files"`, a directory of files) in each
//! host's own file system. Once connected, the driver asks every host for
//! the sizes of its files (nothing else crosses), cuts each file into byte
//! ranges, and pins every range to its host, which reads it in place. The
//! ranges are cut blind and aligned on the host: a line belongs to the
//! range its first byte falls in (`InputFile::lines`).

use std::sync::Arc;

use shoal_core::job::{InputPart, JobSpec, Split, HOST_PATTERN};

use super::prepare::PARTITIONS_PER_SLOT;
use crate::driver::Host;
use crate::{Error, Result};

/// One file on one host, as its host reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostFile {
    host: String,
    slots: u32,
    path: String,
    size: u64,
    mtime: u64,
}

/// The job with its input cut into partitions pinned to the hosts that
/// hold them (`InputSpec::parts`, read in place).
pub async fn expand(job: &JobSpec, hosts: &[Arc<Host>]) -> Result<JobSpec> {
    let pattern = job.input.path.clone().unwrap_or_default();
    let dirs = job.input.split == Some(Split::Files);
    let mut asks = tokio::task::JoinSet::new();
    for h in hosts {
        let (h, path) = (h.clone(), pattern.replace(HOST_PATTERN, h.name()));
        asks.spawn(async move { list(&h, &path, dirs).await });
    }
    let mut files = Vec::new();
    while let Some(answer) = asks.join_next().await {
        files.extend(answer.map_err(|e| Error::Usage(e.to_string()))??);
    }
    // The hosts' order, then each host's files by name: the plan does
    // not depend on which host answered first.
    let order = |f: &HostFile| hosts.iter().position(|h| h.name() == f.host);
    files.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.path.cmp(&b.path)));
    if files.iter().all(|f| f.size == 0) {
        return Err(Error::Usage(format!("[input] path = {pattern:?}: every host's file is empty")));
    }
    let mut expanded = job.clone();
    expanded.input.parts = Some(cut(&files, job, dirs));
    Ok(expanded)
}

/// Asks `h` for the file (or the files of the directory) at `path`: size,
/// modification time and absolute path of each, relative paths starting in
/// the home directory.
async fn list(h: &Host, path: &str, dirs: bool) -> Result<Vec<HostFile>> {
    let quoted = crate::quote::path(path).map_err(|e| Error::Usage(e.to_string()))?;
    let script = if dirs {
        format!("cd && p=$(realpath -e -- {quoted}) && find \"$p\" -mindepth 1 -maxdepth 1 -type f ! -name '.*' -exec stat -L -c '%s %Y %n' -- {{}} +")
    } else {
        format!("cd && p=$(realpath -e -- {quoted}) && {{ [ -f \"$p\" ] || {{ echo \"$p is not a regular file\" >&2; exit 1; }}; }} && stat -L -c '%s %Y %n' -- \"$p\"")
    };
    let command = crate::quote::sh_script(&script).map_err(|e| Error::Usage(e.to_string()))?;
    let gone = |_| Error::Unreachable(format!("host `{}` went away while listing its input", h.name()));
    let (ok, out, err) = h.exec_output(command).await.map_err(gone)?;
    let what = if dirs { "directory" } else { "file" };
    if !ok {
        let why = crate::printable::printable(err.lines().last().unwrap_or("it does not exist"));
        return Err(Error::Usage(format!(
            "host `{}` has no input {what} {path} ([input] path with {HOST_PATTERN}): {why}; every host needs its own",
            h.name()
        )));
    }
    let mut files = Vec::new();
    for line in out.lines() {
        let mut f = line.splitn(3, ' ');
        let (size, mtime, name) = (f.next().and_then(|s| s.parse().ok()), f.next().and_then(|s| s.parse().ok()), f.next());
        let (Some(size), Some(mtime), Some(name)) = (size, mtime, name) else {
            return Err(Error::Usage(format!("host `{}` described its input {path} in a form Shoal cannot read: {line:?}", h.name())));
        };
        files.push(HostFile { host: h.name().to_string(), slots: h.slots(), path: name.to_string(), size, mtime });
    }
    if dirs && files.is_empty() {
        return Err(Error::Usage(format!("host `{}`: the input directory {path} holds no files", h.name())));
    }
    Ok(files)
}

/// The partitions: whole files with `split = "files"`; otherwise each
/// host's bytes cut into `partitions` across the cluster (by each host's
/// share of the bytes), `chunk`-sized pieces, or a few per slot.
fn cut(files: &[HostFile], job: &JobSpec, dirs: bool) -> Vec<InputPart> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut parts = Vec::new();
    for f in files {
        let pieces = if dirs || f.size == 0 {
            1
        } else if let Some(chunk) = job.input.chunk {
            f.size.div_ceil(chunk.max(1))
        } else if let Some(n) = job.input.partitions {
            ((u64::from(n) * f.size).div_ceil(total.max(1))).max(1)
        } else {
            let host_bytes: u64 = files.iter().filter(|g| g.host == f.host).map(|g| g.size).sum();
            (u64::from(f.slots * PARTITIONS_PER_SLOT) * f.size).div_ceil(host_bytes.max(1)).max(1)
        }
        .min(f.size.max(1));
        for i in 0..pieces {
            let (offset, end) = (f.size * i / pieces, f.size * (i + 1) / pieces);
            let mut id = blake3::Hasher::new();
            id.update(b"host-file\0");
            for s in [&f.host, &f.path] {
                id.update(s.as_bytes());
                id.update(b"\0");
            }
            for n in [f.size, f.mtime, offset, end] {
                id.update(&n.to_le_bytes());
            }
            parts.push(InputPart {
                data: None,
                path: f.path.clone().into(),
                offset,
                len: end - offset,
                name: std::path::Path::new(&f.path).file_name().map_or(f.path.clone(), |n| n.to_string_lossy().into_owned()),
                hash: Some(*id.finalize().as_bytes()),
                host: Some(f.host.clone()),
                file_size: Some(f.size),
                held_on: None,
            });
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(host: &str, path: &str, size: u64) -> HostFile {
        HostFile { host: host.into(), slots: 2, path: path.into(), size, mtime: 1 }
    }

    fn job(partitions: Option<u32>) -> JobSpec {
        let mut j = JobSpec::parse(
            "[input]\npath = \"/d/{host}.txt\"\n[map]\ncommand = \"cat\"\n[output]\npath = \"o\"\n",
            std::path::Path::new("j.toml"),
        )
        .unwrap();
        j.input.partitions = partitions;
        j
    }

    #[test]
    fn every_byte_of_every_host_is_in_exactly_one_partition_on_its_host() {
        let files = [file("a", "/d/a.txt", 1000), file("b", "/d/b.txt", 3001), file("c", "/d/c.txt", 0)];
        for parts in [cut(&files, &job(Some(8)), false), cut(&files, &job(None), false)] {
            for f in &files {
                let mine: Vec<&InputPart> = parts.iter().filter(|p| p.host.as_deref() == Some(&f.host)).collect();
                assert!(mine.iter().all(|p| p.path.to_str() == Some(&f.path)));
                let mut at = 0;
                for p in &mine {
                    assert_eq!(p.offset, at, "{mine:?}");
                    at += p.len;
                }
                assert_eq!(at, f.size);
            }
        }
        // 8 across the cluster, by each host's share: 2 for a, 6 for b, 1 (empty) for c.
        let counts: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|h| cut(&files, &job(Some(8)), false).iter().filter(|p| p.host.as_deref() == Some(*h)).count())
            .collect();
        assert_eq!(counts, [2, 7, 1]);
        // A few per slot, per host: 2 slots x 4.
        assert_eq!(cut(&files, &job(None), false).iter().filter(|p| p.host.as_deref() == Some("a")).count(), 8);
    }

    #[test]
    fn partitions_are_named_by_host_file_and_range() {
        let a = cut(&[file("a", "/d/x.txt", 100)], &job(Some(2)), false);
        let b = cut(&[file("b", "/d/x.txt", 100)], &job(Some(2)), false);
        assert_ne!(a[0].hash, a[1].hash);
        assert_ne!(a[0].hash, b[0].hash, "the same path on two hosts is two inputs");
        let mut moved = file("a", "/d/x.txt", 100);
        moved.mtime = 2;
        assert_ne!(cut(&[moved], &job(Some(2)), false)[0].hash, a[0].hash, "a changed file is a new input");
    }
}
