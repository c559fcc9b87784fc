//! `reelfarm`: the one binary. Thin: parses arguments and calls the libraries.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod campaign;
mod cli;
mod client;
mod commands;
mod demo;
mod dispatch;
mod eventbench;
mod farm;
mod farmdemo;
mod lipsync;
mod loadbench;
mod mouthsheet;

fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer probes for a display server and complains on headless
    // machines; wgpu picks the adapter itself, so the layer is switched off unless asked for.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REELFARM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes that an outer message already quotes.
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
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
