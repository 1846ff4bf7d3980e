//! How an argument of an `[input] args` job reaches its command: as data,
//! never as command text.
//!
//! The argument travels in the task's environment as `$SHOAL_ARG`, and
//! every `{}` of the command is rewritten into a reference to that
//! variable that fits the quoting around it: `"$SHOAL_ARG"` outside quotes,
//! `${SHOAL_ARG}` inside double quotes, and `'"$SHOAL_ARG"'` inside single
//! quotes (close the quote, expand, reopen). The shell then expands the
//! variable as one word and never parses its text, so `echo '{}'` with the
//! argument `a'; touch pwned` prints that argument and runs nothing.
//!
//! Pasting the argument in, even shell-quoted, cannot be made safe: the
//! quoting of the result depends on the quotes the user's command already
//! has around `{}` (a quoted `'x'` inside `'{}'` flips every quote).
//!
//! The scanner knows POSIX sh quoting: backslash escapes, single and double
//! quotes, and `$(...)` and backticks, which start a fresh quoting context
//! even inside double quotes. A `{}` in a comment or a here-document becomes
//! a harmless variable reference (a here-document shows the quotes).

/// The variable that holds a task's argument.
pub const ARG_ENV: &str = "SHOAL_ARG";

/// The quoting context at a point of a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    Plain,
    Single,
    Double,
    /// Inside `$(...)`: plain quoting until the matching `)`.
    Subst,
    /// Inside backticks: plain quoting until the closing backtick.
    Backtick,
}

/// The command of one argument task: `template` with every `{}` turned
/// into a reference to [`ARG_ENV`], or with the reference appended as the
/// last word when the template has no `{}`.
pub fn bind(template: &str) -> String {
    if !template.contains("{}") {
        return format!("{template} \"${ARG_ENV}\"");
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut stack = vec![Ctx::Plain];
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        let ctx = *stack.last().unwrap_or(&Ctx::Plain);
        if c == '{' && chars.peek() == Some(&'}') {
            chars.next();
            out.push_str(reference(ctx));
            continue;
        }
        out.push(c);
        match (ctx, c) {
            (Ctx::Single, '\'') => {
                stack.pop();
            }
            (Ctx::Single, _) => {}
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (Ctx::Double, '"') => {
                stack.pop();
            }
            (Ctx::Plain | Ctx::Subst | Ctx::Backtick, '\'') => stack.push(Ctx::Single),
            (Ctx::Plain | Ctx::Subst | Ctx::Backtick, '"') => stack.push(Ctx::Double),
            (_, '$') if chars.peek() == Some(&'(') => {
                out.push('(');
                chars.next();
                stack.push(Ctx::Subst);
            }
            (Ctx::Subst, ')') => {
                stack.pop();
            }
            (Ctx::Backtick, '`') => {
                stack.pop();
            }
            (_, '`') => stack.push(Ctx::Backtick),
            _ => {}
        }
    }
    out
}

fn reference(ctx: Ctx) -> &'static str {
    match ctx {
        Ctx::Plain | Ctx::Subst | Ctx::Backtick => "\"$SHOAL_ARG\"",
        Ctx::Double => "${SHOAL_ARG}",
        Ctx::Single => "'\"$SHOAL_ARG\"'",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    /// Runs `bind(template)` through a real `sh -c` with the argument in
    /// the environment, in a scratch dir, and returns its stdout.
    fn run(template: &str, arg: &str) -> (String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh").arg("-c").arg(bind(template)).env(ARG_ENV, arg).current_dir(dir.path()).output().unwrap();
        (String::from_utf8(out.stdout).unwrap(), dir)
    }

    #[test]
    fn rewrites_fit_the_quotes_around_them() {
        assert_eq!(bind("echo {}"), r#"echo "$SHOAL_ARG""#);
        assert_eq!(bind("echo '{}'"), r#"echo ''"$SHOAL_ARG"''"#);
        assert_eq!(bind("echo \"{}\""), r#"echo "${SHOAL_ARG}""#);
        assert_eq!(bind("echo x"), r#"echo x "$SHOAL_ARG""#);
        assert_eq!(bind(r#"echo "$(cat '{}')""#), r#"echo "$(cat ''"$SHOAL_ARG"'')""#);
        assert_eq!(bind(r"echo \{} {}"), r#"echo \{} "$SHOAL_ARG""#);
    }

    #[test]
    fn quoted_templates_do_not_run_the_argument() {
        // The reproductions of the report: each created `pwned`.
        for (template, arg) in [
            ("echo '{}'", "my file'; touch pwned; echo '"),
            ("echo '{}'", "my file; touch pwned"),
            ("echo \"{}\"", "$(touch pwned)"),
            ("echo \"{}\"", "`touch pwned`"),
            ("echo {}", "a; touch pwned"),
            ("echo $(echo '{}')", "'; touch pwned; '"),
            ("echo `echo \"{}\"`", "\"; touch pwned; \""),
        ] {
            let (out, dir) = run(template, arg);
            assert!(!dir.path().join("pwned").exists(), "{template:?} with {arg:?} ran the argument");
            assert_eq!(out.trim_end(), arg.trim_end(), "{template:?} with {arg:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_argument_arrives_as_one_word(arg in "[^\u{0}]{0,16}", quote in 0..3usize) {
            let template = ["printf %s {}", "printf %s '{}'", "printf %s \"{}\""][quote];
            let (out, dir) = run(template, &arg);
            prop_assert!(dir.path().read_dir().unwrap().next().is_none());
            prop_assert_eq!(out, arg);
        }
    }
}
