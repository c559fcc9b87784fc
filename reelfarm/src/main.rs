//! `reelfarm`: the one binary. Thin: parses arguments, and each command (one file under `cmd/`)
//! turns them into one library config and makes one call.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
#[cfg(test)]
mod reference;

use anyhow::{bail, Result};
use cli::{Cli, Command, RenderArgs, TemplateCommand};

fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer probes for a display server and complains on headless
    // machines; wgpu picks the adapter itself, so the layer is switched off unless asked for.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    let args = cli::Cli::parse();
    init_logs(&args);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// Log lines on stderr: text with colours on a terminal, else JSON objects (or plain text
/// without escape codes when asked); filtered by REELFARM_LOG, which defaults to `info` for
/// the long-running processes and `warn` for the rest.
fn init_logs(args: &Cli) {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    let default = match args.command {
        Command::Serve(_) | Command::Work(_) => "info",
        _ => "warn",
    };
    let filter = match std::env::var("REELFARM_LOG") {
        Ok(spec) => tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|err| {
            eprintln!(
                "warning: REELFARM_LOG=`{spec}` is not a log filter ({err}); using `{default}`"
            );
            tracing_subscriber::EnvFilter::new(default)
        }),
        Err(_) => tracing_subscriber::EnvFilter::new(default),
    };
    let format = args.log_format.unwrap_or(if terminal {
        cli::LogFormat::Text
    } else {
        cli::LogFormat::Json
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => logs.with_ansi(terminal).init(),
        cli::LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Runs one command.
fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render(RenderArgs {
            command: Some(command),
            ..
        }) => cmd::remote::run(command),
        Command::Render(RenderArgs {
            local: Some(args), ..
        }) => cmd::render::render(args),
        Command::Render(_) => {
            bail!(
                "render: give --template, --lang and --out, or a farm command (see render --help)"
            )
        }
        Command::Still(args) => cmd::render::still(args),
        Command::Lipsync(args) => cmd::lipsync::run(args),
        Command::Template(TemplateCommand::Validate { dir, deep }) => {
            cmd::template::validate(&dir, deep)
        }
        Command::Template(TemplateCommand::Schema) => cmd::template::schema(),
        Command::Template(TemplateCommand::List { json, client }) => {
            cmd::template::list(json, client)
        }
        Command::Template(TemplateCommand::Push {
            dir,
            aliases,
            force,
            client,
        }) => cmd::template::push(dir, aliases, force, client),
        Command::Demo(args) if args.direct => cmd::demo::run(args),
        Command::Demo(args) => cmd::farmdemo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Serve(args) => cmd::serve::serve(args),
        Command::Work(args) => cmd::serve::work(args),
        Command::Tenant(command) => cmd::serve::tenant(command),
        Command::Submit(args) => cmd::submit::run(args),
        Command::Campaign(command) => cmd::campaign::run(command),
        Command::Studio(args) => cmd::studio::run(args),
        Command::Preview(args) => cmd::preview::run(args),
        Command::Event { file, client } => cmd::campaign::send_events(file, client),
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
