//! `reelfarm bench …`: the arguments as a benchmark's config, then the benchmark
//! (see the `benches` crate and `BENCHMARKS.md`).

use anyhow::Result;

use super::parse_preset;
use crate::cli::{BenchArgs, BenchCommand};

/// Runs the benchmark `args` names.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.command {
        Some(BenchCommand::W1(a)) => benches::w1::run(&benches::w1::Config {
            template: a.template,
            out: a.out,
            skip_ffmpeg: a.skip_ffmpeg,
            skip_smart: a.skip_smart,
        }),
        Some(BenchCommand::Events(a)) => benches::events::run(&benches::events::Config {
            rate: a.rate,
            seconds: a.seconds,
            batch: a.batch,
            http: a.http,
            api_key: a.api_key,
            store: a.store,
            json: a.json,
        }),
        Some(BenchCommand::Lipsync(a)) => benches::lipsync::run(a.lang.as_deref()),
        None => {
            let a = args.farm;
            benches::load::run(&benches::load::Config {
                jobs: a.jobs,
                concurrency: a.concurrency,
                coordinator: a.coordinator,
                api_key: a.api_key,
                tls_ca: a.tls_ca,
                template: a.template,
                lang: a.lang,
                preset: parse_preset(&a.preset)?,
                store: a.store,
                workers: a.workers,
                slots: a.slots,
                json: a.json,
                recipients: a.recipients,
                tokens: a.tokens,
            })
        }
    }
}
