//! The configuration reference (docs/configuration.md), generated from the clap definitions
//! of `serve` and `work` so that it cannot drift from them: the test below compares the
//! committed file with what this writes, and `make bless` rewrites it. Compiled for tests only.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, CommandFactory};

use crate::cli::Cli;

/// The processes an operator runs, in the order the reference lists them.
const PROCESSES: [(&str, &str); 2] = [
    (
        "serve",
        "The coordinator: gRPC and HTTP APIs, the job store, the blob store, the trigger layer.",
    ),
    (
        "work",
        "A render worker: pulls renders from a coordinator and renders them on its GPU.",
    ),
];

/// Variables read outside the flags.
const OTHER_VARIABLES: &[(&str, &str)] = &[
    (
        "REELFARM_LOG",
        "Which log lines to write, in tracing's filter syntax: `info`, `warn`, `debug`, or per \
         module such as `info,worker=debug,sqlx=warn`. Default `info` for `serve` and `work`, \
         `warn` for the other commands.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Credentials of an `s3://` blob store.",
    ),
    (
        "AWS_REGION (or AWS_DEFAULT_REGION)",
        "Region of an `s3://` blob store (S3-compatible servers usually accept any).",
    ),
    (
        "AWS_ENDPOINT (or AWS_ENDPOINT_URL)",
        "Endpoint of an S3-compatible server, e.g. `http://minio:9000`; unset for AWS S3.",
    ),
    (
        "AWS_ALLOW_HTTP",
        "`true` to allow a plain-HTTP `AWS_ENDPOINT` (a server inside the cluster).",
    ),
    (
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        "`true` for bucket-in-host-name requests; path-style by default.",
    ),
    (
        "NODEVICE_SELECT",
        "Set to `1` by reelfarm unless set: switches off Mesa's Vulkan device-select layer, \
         which probes for a display server on headless machines.",
    ),
];

/// The whole reference, in Markdown.
pub fn markdown() -> String {
    let cli = Cli::command();
    let mut out = String::new();
    out.push_str(
        "# Configuration reference\n\n\
         <!-- Generated from the command-line definitions (reelfarm/src/cli.rs); do not edit.\n\
         \x20    `make bless` rewrites it, and a test fails when it is out of date. -->\n\n\
         Every flag of the two long-running processes, with the environment variable that sets \
         it when the flag is absent (a flag wins over its variable). Secrets (keys, tokens, \
         store URLs with passwords) are never printed back by `--help`.\n\n",
    );
    for (name, about) in PROCESSES {
        let sub = cli
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("no `{name}` command"));
        let _ = writeln!(out, "## `reelfarm {name}`\n\n{about}\n");
        table(&mut out, sub.get_arguments().filter(|a| !a.is_global_set()));
    }
    out.push_str("## Every command\n\n");
    table(&mut out, cli.get_arguments().filter(|a| a.is_global_set()));
    out.push_str("## Other environment variables\n\n| Variable | Meaning |\n|---|---|\n");
    for (name, meaning) in OTHER_VARIABLES {
        let _ = writeln!(out, "| `{name}` | {meaning} |");
    }
    out
}

fn table<'a>(out: &mut String, args: impl Iterator<Item = &'a Arg>) {
    out.push_str("| Flag | Variable | Default | Meaning |\n|---|---|---|---|\n");
    for arg in args {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if long == "help" || long == "version" || arg.is_hide_set() {
            continue;
        }
        let flag = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count => format!("`--{long}`"),
            _ => {
                let value = arg
                    .get_value_names()
                    .and_then(|names| names.first())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| long.to_ascii_uppercase().replace('-', "_"));
                format!("`--{long} {value}`")
            }
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "—".to_owned());
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() {
            "—".to_owned()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let mut meaning = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replace('\n', " ")
            .replace('|', "\\|");
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !choices.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            let _ = write!(meaning, " One of {}.", choices.join(", "));
        }
        let _ = writeln!(out, "| {flag} | {env} | {default} | {} |", meaning.trim());
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");

    #[test]
    fn configuration_reference_is_current() {
        let generated = markdown();
        if std::env::var_os("REELFARM_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(PATH, &generated).expect("write docs/configuration.md");
            return;
        }
        let committed = std::fs::read_to_string(PATH).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is out of date with the flags in reelfarm/src/cli.rs; run\n  \
             REELFARM_BLESS=1 cargo test --release -p reelfarm --bin reelfarm reference\n\
             (or `make bless`) and commit the result"
        );
    }

    #[test]
    fn every_flag_of_serve_and_work_has_a_variable() {
        let cli = Cli::command();
        for (name, _) in PROCESSES {
            let sub = cli.find_subcommand(name).expect("command");
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                // Benchmark switches are not configuration.
                if ["help", "noop", "noop-ms", "noop-workers"].contains(&long) {
                    continue;
                }
                assert!(
                    arg.get_env().is_some(),
                    "`reelfarm {name} --{long}` has no environment variable"
                );
                assert!(
                    markdown().contains(&format!("`--{long}")),
                    "`--{long}` missing from the reference"
                );
            }
        }
    }
}
