//! The `learnchain` binary.

use clap::Parser;
use learnchain_node::cli::{Cli, Command};
use learnchain_node::commands;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Devnet(_)
        | Command::Status(_)
        | Command::Data(_)
        | Command::Model(_)
        | Command::Predict(_)
        | Command::Plot(_) => "warn",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(cli.log.as_deref().unwrap_or(default)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(a) => commands::run(*a).await,
            Command::Devnet(a) => commands::devnet(a).await,
            Command::Genesis(c) => commands::genesis(c),
            Command::Keys(c) => commands::keys_cmd(c),
            Command::Members(c) => commands::members_cmd(c).await,
            Command::Privacy(c) => commands::privacy(c),
            Command::Status(a) => commands::status(a).await,
            Command::Data(c) => commands::data_cmd(c),
            Command::Model(c) => commands::model_cmd(c).await,
            Command::Predict(a) => commands::predict(a),
            Command::Plot(a) => commands::plot(a),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, outermost first, joined by `: ` as `{:#}` does, leaving out a
/// cause whose text an outer message already quotes (errors that print their source, such
/// as an I/O error inside "cannot read FILE: …", would otherwise say it twice).
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
