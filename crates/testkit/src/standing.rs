//! A standing cluster of the tests' own: `shoal cluster up` with `HOME`
//! in a temp dir (so its keys, `~/.shoal/clusters/NAME/`, are the test's),
//! and `shoal cluster down` when it is dropped, whatever the test did.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::{Ran, Shoal};

pub struct Standing {
    pub name: String,
    /// `HOME` of every command run through [`Standing::shoal`].
    pub home: Rc<tempfile::TempDir>,
}

impl Standing {
    /// A cluster named `name` whose commands run with a fresh `HOME`;
    /// nothing is started yet.
    pub fn new(name: &str) -> Standing {
        Standing { name: name.into(), home: Rc::new(tempfile::tempdir().expect("a temp dir")) }
    }

    /// Another cluster, `name`, in the same `HOME` (another cluster's keys).
    pub fn sibling(&self, name: &str) -> Standing {
        Standing { name: name.into(), home: self.home.clone() }
    }

    /// The `shoal` command with this cluster's `HOME`.
    pub fn shoal(&self) -> Shoal {
        Shoal::new().env("HOME", self.home.path())
    }

    /// `shoal cluster up --name NAME --json ARGS` (asserted to succeed).
    #[track_caller]
    pub fn up(&self, args: &[&str]) -> serde_json::Value {
        self.shoal().args(["cluster", "up", "--name", &self.name, "--json"]).args(args).run().success().json()
    }

    /// `shoal cluster status --name NAME --json`.
    #[track_caller]
    pub fn status(&self) -> serde_json::Value {
        self.shoal().args(["cluster", "status", "--name", &self.name, "--json"]).run().success().json()
    }

    /// `shoal cluster down --name NAME --json`.
    pub fn down(&self) -> Ran {
        self.shoal().args(["cluster", "down", "--name", &self.name, "--json"]).run()
    }

    /// The cluster's directory of keys and logs.
    pub fn dir(&self) -> PathBuf {
        self.home.path().join(".shoal/clusters").join(&self.name)
    }

    /// A file of the cluster's directory, as text.
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir().join(file)).unwrap_or_default()
    }

    /// Writes an access file (0600) at `path`.
    pub fn write_access(path: &Path, text: &str) {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(path);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).expect("create the access file");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write the access file");
    }
}

impl Drop for Standing {
    fn drop(&mut self) {
        let _ = self.down();
    }
}
