//! The one place where strings become shell words.
//!
//! Every argument that reaches a remote shell passes through [`word`] or
//! [`path`]. ssh joins its arguments with spaces and hands the result to the
//! remote user's login shell, so an unquoted path or a host-supplied string
//! could run a second command (compare OpenSSH CVE-2023-51385). Words are
//! single-quoted, with `'` written as `'\''`, which is safe in every POSIX
//! shell. NUL cannot be passed to a process at all, so it is refused.

/// A string that cannot become a shell word.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} contains a NUL byte, which no shell command can carry")]
pub struct QuoteError {
    pub what: String,
}

/// Quotes `s` as one shell word.
pub fn word(s: &str) -> Result<String, QuoteError> {
    if s.contains('\0') {
        return Err(QuoteError { what: format!("{s:?}") });
    }
    if !s.is_empty() && s.bytes().all(is_plain) {
        return Ok(s.to_string());
    }
    Ok(format!("'{}'", s.replace('\'', r"'\''")))
}

/// Quotes a path for a remote shell, keeping a leading `~/` meaningful: it
/// becomes `"$HOME"/` so the remote user's home is used.
pub fn path(p: &str) -> Result<String, QuoteError> {
    if p == "~" {
        return Ok("\"$HOME\"".into());
    }
    match p.strip_prefix("~/") {
        Some("") => Ok("\"$HOME\"".into()),
        Some(rest) => Ok(format!("\"$HOME\"/{}", word(rest)?)),
        None => word(p),
    }
}

/// Quotes every word and joins them with spaces.
pub fn command<S: AsRef<str>>(words: &[S]) -> Result<String, QuoteError> {
    let quoted: Result<Vec<_>, _> = words.iter().map(|w| word(w.as_ref())).collect();
    Ok(quoted?.join(" "))
}

/// Wraps a POSIX sh script so that it runs under `/bin/sh` whatever the
/// remote login shell is (fish and csh parse differently).
pub fn sh_script(script: &str) -> Result<String, QuoteError> {
    Ok(format!("exec /bin/sh -c {}", word(script)?))
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(word("abc-1.2/x").unwrap(), "abc-1.2/x");
        assert_eq!(word("").unwrap(), "''");
        assert_eq!(word("a b").unwrap(), "'a b'");
        assert_eq!(word("it's").unwrap(), r"'it'\''s'");
        assert_eq!(word("$(rm -rf /)").unwrap(), "'$(rm -rf /)'");
    }

    #[test]
    fn home_paths_expand_remotely() {
        assert_eq!(path("~/.shoal").unwrap(), "\"$HOME\"/.shoal");
        assert_eq!(path("~").unwrap(), "\"$HOME\"");
        assert_eq!(path("~/a b").unwrap(), "\"$HOME\"/'a b'");
        assert_eq!(path("/tmp/x").unwrap(), "/tmp/x");
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(word("a\0b").unwrap_err().to_string(), "\"a\\0b\" contains a NUL byte, which no shell command can carry");
    }

    /// Runs `printf '%s\0' ARGS...` through a real `sh -c`, as a remote
    /// login shell would, and returns the arguments printf saw.
    fn through_sh(args: &[String]) -> Vec<String> {
        let mut words = vec!["printf".to_string(), "%s\\0".to_string()];
        words.extend(args.iter().cloned());
        let line = sh_script(&command(&words).unwrap()).unwrap();
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success(), "sh failed on {line:?}");
        let mut seen: Vec<String> = out.stdout.split(|b| *b == 0).map(|s| String::from_utf8(s.to_vec()).unwrap()).collect();
        seen.pop();
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn arbitrary_arguments_round_trip_through_a_shell(
            args in proptest::collection::vec("[^\u{0}]{0,12}", 1..5)
        ) {
            prop_assert_eq!(through_sh(&args), args);
        }
    }

    #[test]
    fn metacharacters_round_trip() {
        let nasty: Vec<String> = ["; touch /tmp/shoal-pwned", "`id`", "$(id)", "a'b\"c", "\n", "*", "~", "-n", "\\", "!"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(through_sh(&nasty), nasty);
        assert!(!std::path::Path::new("/tmp/shoal-pwned").exists());
    }
}
