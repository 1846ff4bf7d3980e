//! A finished command: its exit code, stdout and stderr, and assertions
//! that show all of it, and the command line, when they fail. Every
//! assertion is `#[track_caller]`, so a failure points at the test's line.

/// What a command did. `code` is -1 when a signal ended it.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub(crate) line: String,
}

impl Ran {
    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "`{}` exited {}, wanted {want}\n--- stdout\n{}\n--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// Asserts the exit code and that stderr contains `text`.
    #[track_caller]
    pub fn fails_with(self, code: i32, text: &str) -> Self {
        self.code(code).stderr_has(text)
    }

    #[track_caller]
    pub fn stdout_has(self, s: &str) -> Self {
        assert!(self.stdout.contains(s), "`{}`: stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}", self.line, self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn stderr_has(self, s: &str) -> Self {
        assert!(self.stderr.contains(s), "`{}`: stderr lacks {s:?}\n--- stderr\n{}", self.line, self.stderr);
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}):\n{}", self.line, self.stdout))
    }

    /// The value after `word ` on a line of stdout.
    #[track_caller]
    pub fn value(&self, word: &str) -> String {
        let prefix = format!("{word} ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("`{}`: no `{word}` line\n--- stdout\n{}\n--- stderr\n{}", self.line, self.stdout, self.stderr))
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::Ran;

    fn ran(code: i32, stdout: &str, stderr: &str) -> Ran {
        Ran { code, stdout: stdout.into(), stderr: stderr.into(), line: "shoal run job.toml".into() }
    }

    fn panic_text(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("the assertion should fail");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn a_wrong_exit_code_shows_the_command_and_both_streams() {
        let text = panic_text(|| {
            ran(1, "out", "err").success();
        });
        assert!(
            text.starts_with("assertion `left == right` failed: `shoal run job.toml` exited 1, wanted 0\n--- stdout\nout\n--- stderr\nerr"),
            "{text}"
        );
    }

    #[test]
    fn fails_with_checks_the_code_and_the_stderr_text() {
        ran(2, "", "error: no such file\n").fails_with(2, "no such file");
        let text = panic_text(|| {
            ran(2, "", "error: other\n").fails_with(2, "no such file");
        });
        assert_eq!(text, "`shoal run job.toml`: stderr lacks \"no such file\"\n--- stderr\nerror: other\n");
        let text = panic_text(|| {
            ran(0, "", "no such file").fails_with(2, "no such file");
        });
        assert!(text.contains("exited 0, wanted 2"), "{text}");
    }

    #[test]
    fn value_finds_the_word_at_the_start_of_a_line() {
        let r = ran(0, "sum 55\ncount 10\n", "");
        assert_eq!((r.value("sum"), r.value("count")), ("55".to_string(), "10".to_string()));
        let text = panic_text(|| {
            ran(0, "summary 1\n", "").value("sum");
        });
        assert!(text.starts_with("`shoal run job.toml`: no `sum` line"), "{text}");
    }
}
