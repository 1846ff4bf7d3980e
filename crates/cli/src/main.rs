//! The `shoal` command: flags in, a validated command out, errors printed
//! once with a deliberate exit code. All the work happens in the `shoal`
//! library crate.

mod cli;
mod commands;
mod oneliner;
mod runs;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let code = match commands::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", shoal::printable::printable(&chain(&e)));
            exit_code(&e)
        }
    };
    std::process::exit(code);
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| level.into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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

fn exit_code(e: &anyhow::Error) -> i32 {
    e.chain().find_map(|c| c.downcast_ref::<shoal::Error>()).map_or(1, shoal::Error::exit_code)
}
