//! `reelfarm bench events`: event ingestion at a fixed rate (written next).

use anyhow::Result;

use crate::cli::EventBenchArgs;

pub fn run(args: EventBenchArgs) -> Result<()> {
    anyhow::bail!("bench events is not built yet ({} events/s requested)", args.rate)
}
