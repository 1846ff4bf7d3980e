//! Making sure every host that will run a containerized step has its image.
//!
//! Before any task starts: hosts where Docker is not usable are left out of
//! the run (and the user is told); each remaining host is asked for the
//! image by `docker image inspect`. A host that lacks it gets the job's
//! `docker save` archive from `[images]`, synced like any file (by content
//! hash: a host that has the archive already is sent nothing) and loaded
//! with `docker load`. Without an archive the run stops with an error that
//! names the image and the hosts and says how to fix it.

use std::collections::BTreeSet;
use std::sync::Arc;

use shoal_core::job::JobSpec;
use shoal_wire::hex;
use tokio::task::JoinSet;

use crate::driver::blocks;
use crate::driver::host::docker_usable;
use crate::driver::input::whole_file;
use crate::driver::{Cluster, Host};
use crate::{quote, Error, Result};

/// The images the job's steps name.
pub fn images(job: &JobSpec) -> BTreeSet<String> {
    let reduce = job.reduce.as_ref().and_then(|r| r.step.image.clone());
    job.map.image.iter().cloned().chain(reduce).collect()
}

/// Drops hosts without Docker and loads missing images; returns a line
/// per image loaded.
pub async fn ensure(cluster: &mut Cluster, job: &JobSpec) -> Result<Vec<String>> {
    let wanted = images(job);
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    drop_hosts_without_docker(cluster, &wanted).await?;
    let mut notes = Vec::new();
    for image in &wanted {
        notes.extend(ensure_image(&cluster.hosts, job, image).await?);
    }
    Ok(notes)
}

async fn drop_hosts_without_docker(cluster: &mut Cluster, wanted: &BTreeSet<String>) -> Result<()> {
    let usable = docker_usable(&cluster.hosts).await;
    let without: Vec<Arc<Host>> = cluster.hosts.iter().filter(|h| !usable.contains(&h.index)).cloned().collect();
    for h in &without {
        eprintln!("shoal: host `{}` has no usable docker (`docker info` failed there); containerized steps do not run on it", h.name());
        h.close().await;
    }
    cluster.hosts.retain(|h| usable.contains(&h.index));
    if cluster.hosts.is_empty() {
        let names: Vec<String> = without.iter().map(|h| h.name().to_string()).collect();
        return Err(Error::JobFailed(format!(
            "the job runs in {} but docker is not usable on any host ({}); install Docker there and let this user reach its socket (`docker info` must work)",
            wanted.iter().cloned().collect::<Vec<_>>().join(", "),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Why a host could not be asked for an image.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Quote(#[from] quote::QuoteError),
    #[error(transparent)]
    Gone(#[from] crate::driver::host::HostGone),
}

async fn has_image(h: &Host, image: &str) -> std::result::Result<bool, ProbeError> {
    let q = quote::word(image)?;
    Ok(h.exec(format!("docker image inspect --format '{{{{.Id}}}}' {q}")).await.map(|(ok, _)| ok)?)
}

async fn ensure_image(hosts: &[Arc<Host>], job: &JobSpec, image: &str) -> Result<Vec<String>> {
    let archive = job.images.get(image).map(|i| job.resolve(&i.file));
    let mut set = JoinSet::new();
    for h in hosts {
        let h = Arc::clone(h);
        let (image, archive) = (image.to_string(), archive.clone());
        set.spawn(async move {
            match has_image(&h, &image).await {
                Ok(true) => Ok(None),
                Ok(false) => match archive {
                    Some(file) => load(&h, &image, &file).await.map(Some),
                    None => Err(Missing(h.name().to_string())),
                },
                Err(e) => Err(Missing(format!("{} ({e})", h.name()))),
            }
        });
    }
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(Some(note))) => notes.push(note),
            Ok(Ok(None)) => {}
            Ok(Err(Missing(h))) => missing.push(h),
            Err(e) => missing.push(e.to_string()),
        }
    }
    if missing.is_empty() {
        return Ok(notes);
    }
    missing.sort();
    Err(Error::JobFailed(format!(
        "image `{image}` is missing on host{} {} and the job gives no archive for it; load it there (docker save {image} | ssh HOST docker load), or add to the job file:\n  [images]\n  \"{image}\" = {{ file = \"{}.tar\" }}   # made with: docker save -o {}.tar {image}",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        image.replace(['/', ':'], "-"),
        image.replace(['/', ':'], "-"),
    )))
}

struct Missing(String);

/// Ships the archive (skipped when the host has it) and loads it.
async fn load(h: &Host, image: &str, file: &std::path::Path) -> std::result::Result<String, Missing> {
    let fail = |why: String| Missing(format!("{} (loading {}: {why})", h.name(), file.display()));
    let part = whole_file(file).map_err(|e| fail(e.to_string()))?;
    let (sent, _) = blocks::ensure(h, &[&part.source]).await.map_err(|e| fail(e.to_string()))?;
    let block = format!("{}/blocks/{}", h.info.workdir, hex(&part.source.hash));
    let q = quote::path(&block).map_err(|e| fail(e.to_string()))?;
    let (ok, stderr) = h.exec(format!("docker load -q -i {q}")).await.map_err(|e| fail(e.to_string()))?;
    if !ok {
        return Err(fail(format!("docker load failed: {stderr}")));
    }
    match has_image(h, image).await {
        Ok(true) => Ok(format!("host `{}`: loaded image `{image}` from {} ({sent} bytes sent)", h.name(), file.display())),
        _ => Err(fail(format!("the archive does not contain `{image}`"))),
    }
}
