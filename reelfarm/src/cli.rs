//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// reelfarm: personalized video, rendered on the GPU.
#[derive(Debug, Parser)]
#[command(name = "reelfarm", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render one recipient's video to an MP4.
    Render(RenderArgs),
    /// Render one frame to a PNG, for previews and checks.
    Still(StillArgs),
    /// Work with template bundles.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Render the demo template for several recipients into out/ and print per-stage timings.
    Demo(DemoArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// What every render needs: the template, the recipient and the language.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Template folder (holding template.json).
    #[arg(long, value_name = "DIR")]
    pub template: PathBuf,
    /// JSON object of token name to value, e.g. {"first_name": "Priya"}.
    #[arg(long, value_name = "FILE.json")]
    pub tokens: Option<PathBuf>,
    /// Language code, one of the template's (en, hi, ta, ...).
    #[arg(long, value_name = "CODE")]
    pub lang: String,
    /// Voice file for this recipient (any format FFmpeg decodes); default: the template's.
    #[arg(long, value_name = "FILE")]
    pub voice: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Output MP4.
    #[arg(long, value_name = "FILE.mp4")]
    pub out: PathBuf,
    /// Output preset: 1080p (template size), 720p, whatsapp (720p, Main profile, ≤ 16 MB).
    #[arg(long, default_value = "1080p")]
    pub preset: String,
    /// Render only from this time, in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub from: Option<f64>,
    /// Render only up to this time (exclusive), in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub to: Option<f64>,
}

#[derive(Debug, Args)]
pub struct StillArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Time of the frame, in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub at: f64,
    /// Output PNG.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Output preset (sets the size): 1080p, 720p, whatsapp.
    #[arg(long, default_value = "1080p")]
    pub preset: String,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Check a template folder and list every problem found.
    Validate {
        /// Template folder.
        dir: PathBuf,
    },
    /// Print the JSON Schema of template.json.
    Schema,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Template folder; default: the bundled order-delivered demo.
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Output preset.
    #[arg(long, default_value = "720p")]
    pub preset: String,
    /// Render every demo recipient, not only the first three (English, Hindi, Tamil).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The reference workload W1 three ways: reelfarm, an FFmpeg CLI filtergraph, and x264
    /// alone on the same frames.
    W1(W1Args),
}

#[derive(Debug, Args)]
pub struct W1Args {
    /// Template folder; default: the bundled order-delivered demo (laid out as W1).
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
    /// Working folder for outputs.
    #[arg(long, default_value = "out/bench-w1")]
    pub out: PathBuf,
    /// Skip the FFmpeg CLI filtergraph run.
    #[arg(long)]
    pub skip_ffmpeg: bool,
}
