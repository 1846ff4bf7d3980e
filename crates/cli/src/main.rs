//! The `shoal` command: flags in, a validated command out, errors printed
//! once with a deliberate exit code. All the work happens in the `shoal`
//! library crate.

mod cli;
mod commands;
mod oneliner;
mod runs;
mod standing;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let daemon = matches!(args.command, cli::Command::Coordinator { .. } | cli::Command::Worker(_));
    init_tracing(args.verbose, daemon);
    let code = match commands::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", shoal::printable::printable(&chain(&e)));
            exit_code(&e)
        }
    };
    std::process::exit(code);
}

fn init_tracing(verbose: u8, daemon: bool) {
    let level = match verbose {
        // A daemon's log says what it did (joins, sessions, refusals).
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| level.into());
    // Colour only on a terminal: a daemon's stderr is its log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The error and its causes, each once.
fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// The library's error in the chain, if any: it picks the exit code.
fn shoal_error(e: &anyhow::Error) -> Option<&shoal::Error> {
    e.chain().find_map(|c| c.downcast_ref::<shoal::Error>())
}

/// The exit code of the README's table; an error of the binary's own
/// (a file it could not write, say) is 1.
fn exit_code(e: &anyhow::Error) -> i32 {
    shoal_error(e).map_or(1, shoal::Error::exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_come_from_the_library_error_in_the_chain() {
        let internal = anyhow::Error::from(shoal::Error::Internal("no plan".into())).context("shoal run");
        assert_eq!(exit_code(&internal), 70);
        let interrupted = anyhow::Error::from(shoal::Error::Interrupted("interrupted again: exiting at once".into()));
        assert_eq!(exit_code(&interrupted), 130);
        assert_eq!(exit_code(&anyhow::Error::from(shoal::Error::Usage("bad".into()))), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("cannot write out.txt")), 1);
    }

    #[test]
    fn an_internal_error_is_printed_once_with_its_context() {
        let e = anyhow::Error::from(shoal::Error::Internal("no plan".into())).context("shoal run");
        assert_eq!(chain(&e), "shoal run: internal error: no plan; this is a bug in shoal, please report it");
    }
}
