//! Reading the cluster and job files. `shoal-core` parses and validates
//! their text and reads no file; this module is where the text comes from:
//! the file named, else `./cluster.toml`, else this machine alone. The
//! `shoal` commands and a Dataset program's driver both find their
//! cluster here, so the two cannot drift apart.

use std::path::Path;

use shoal_core::cluster::ClusterSpec;
use shoal_core::job::JobSpec;
use shoal_core::spec_error::SpecError;

use crate::Result;

/// The cluster of a command: the file at `path` when one is named
/// (`--cluster`, `SHOAL_CLUSTER`), else `./cluster.toml` if it exists, else
/// this machine alone.
pub fn find_cluster(path: Option<&Path>) -> Result<ClusterSpec> {
    let default = Path::new("cluster.toml");
    match path {
        Some(path) => read_cluster(path),
        None if default.exists() => read_cluster(default),
        None => Ok(ClusterSpec::local()),
    }
}

/// Reads and validates a cluster file.
pub fn read_cluster(path: &Path) -> Result<ClusterSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(&path.display().to_string(), format!("cannot read the cluster file: {e}"))
            .hint("check the path given to --cluster or SHOAL_CLUSTER, or run `shoal init` to write one")
    })?;
    Ok(ClusterSpec::parse(&text, path)?)
}

/// Reads and validates a job file after applying `--set section.key=value`
/// overrides in order (see [`JobSpec::parse_with_overrides`]).
pub fn read_job(path: &Path, sets: &[String]) -> Result<JobSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(&path.display().to_string(), format!("cannot read the job file: {e}"))
            .hint("check the path, or run `shoal init` to write a template")
    })?;
    Ok(JobSpec::parse_with_overrides(&text, path, sets)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cluster_file_says_where_to_look() {
        let e = find_cluster(Some(Path::new("/nonexistent/cluster.toml"))).unwrap_err().to_string();
        assert_eq!(e, "/nonexistent/cluster.toml: cannot read the cluster file: No such file or directory (os error 2)\n  hint: check the path given to --cluster or SHOAL_CLUSTER, or run `shoal init` to write one");
    }

    #[test]
    fn a_missing_job_file_says_what_to_do() {
        let e = read_job(Path::new("/nonexistent/job.toml"), &[]).unwrap_err().to_string();
        assert_eq!(e, "/nonexistent/job.toml: cannot read the job file: No such file or directory (os error 2)\n  hint: check the path, or run `shoal init` to write a template");
    }

    #[test]
    fn files_are_read_parsed_and_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("c.toml");
        std::fs::write(&cluster, "[hosts.a]\ntransport = \"local\"\nslots = 3\n").unwrap();
        let spec = find_cluster(Some(&cluster)).unwrap();
        assert_eq!((spec.hosts[0].name.as_str(), spec.hosts[0].slots), ("a", Some(3)));
        assert_eq!(spec.source.as_deref(), Some(cluster.as_path()));
        let job = dir.path().join("j.toml");
        std::fs::write(&job, "[input]\nargs = [\"1\"]\n[map]\ncommand = \"cat\"\n[output]\npath = \"out\"\n").unwrap();
        let spec = read_job(&job, &["map.command=wc -l".into()]).unwrap();
        assert_eq!(spec.map.command, "wc -l");
        assert_eq!(spec.base_dir, dir.path());
    }
}
