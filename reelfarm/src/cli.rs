//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use ::template::Preset;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// reelfarm: personalized video, rendered on the GPU.
#[derive(Debug, Parser)]
#[command(name = "reelfarm", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr: `text`, or `json` (one object per line). Default: text on a
    /// terminal, JSON otherwise. REELFARM_LOG filters the lines (e.g. `info`,
    /// `warn,worker=debug`); default `info` for serve and work, `warn` for other commands.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        env = "REELFARM_LOG_FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render one recipient's video to an MP4 on this machine; or, with a subcommand, look at
    /// and manage the renders of a farm.
    Render(RenderArgs),
    /// Render one frame to a PNG, for previews and checks.
    Still(StillArgs),
    /// The mouth track of a voice recording: Rhubarb-compatible shapes A–H and X over time.
    Lipsync(LipsyncArgs),
    /// Work with template bundles.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Run a local farm (coordinator and two worker processes), render the demo recipients
    /// through it over gRPC into out/, and print per-stage timings.
    Demo(DemoArgs),
    /// Benchmarks: `bench --jobs N --concurrency C` drives a farm; `bench w1` is the render
    /// reference workload.
    Bench(BenchArgs),
    /// Run the coordinator: gRPC services on SQLite and local blobs by default.
    Serve(ServeArgs),
    /// Run a render worker that pulls work from a coordinator.
    Work(WorkArgs),
    /// Create tenants and their API keys (directly on the coordinator's store).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Submit a render to a farm; optionally wait for it and download the video.
    Submit(SubmitArgs),
    /// Campaigns: business events → videos → webhooks.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// A template studio in the browser: frames with a scrubber, layer boxes, the contact
    /// sheet of every language, problems inline, reload on save, preview MP4s.
    Studio(StudioArgs),
    /// Write the contact sheet (languages × sample recipients × times) of a template to a PNG.
    Preview(PreviewArgs),
    /// Send business events (a JSON event, an array, or {"events": [...]}) to a farm.
    Event {
        /// JSON file.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign or store a new version of it from a JSON definition.
    Put {
        /// Campaign definition (JSON).
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The tenant's campaigns.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Counters per variant: events, suppressions by reason, renders, deliveries, failures.
    Stats {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pause a campaign (it ignores new events).
    Pause {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resume a paused campaign.
    Resume {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// How to reach a coordinator as a tenant.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Coordinator URL (http:// or https://).
    #[arg(
        long,
        env = "REELFARM_COORDINATOR",
        default_value = "http://127.0.0.1:7600"
    )]
    pub coordinator: String,
    /// Tenant API key (`rf_…`), from `reelfarm tenant create`.
    #[arg(long, env = "REELFARM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM certificate authority to trust for an https:// coordinator.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Where a coordinator keeps its state.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data folder: the SQLite store, local blobs and the join token live here unless
    /// --store / --blobs say otherwise.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "reelfarm-data",
        env = "REELFARM_DATA"
    )]
    pub data: PathBuf,
    /// Job store URL: sqlite://PATH or postgres://USER:PASS@HOST/DB. Default: sqlite in --data.
    #[arg(
        long,
        value_name = "URL",
        env = "REELFARM_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:7600", env = "REELFARM_LISTEN")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataArgs,
    /// Blob store: a folder, file:///path or s3://bucket/prefix (AWS_* variables configure S3).
    /// Default: blobs/ in --data.
    #[arg(long, value_name = "URL", env = "REELFARM_BLOBS")]
    pub blobs: Option<String>,
    /// Secret workers join with. Default: read from (or generated into) DATA/join-token.
    #[arg(long, env = "REELFARM_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Key that signs download links; every coordinator of a farm needs the same one.
    /// Default: read from (or generated into) DATA/url-key.
    #[arg(long, env = "REELFARM_URL_KEY", hide_env_values = true)]
    pub url_key: Option<String>,
    /// Master key of webhook signatures; every coordinator of a farm needs the same one.
    /// Default: read from (or generated into) DATA/webhook-key.
    #[arg(long, env = "REELFARM_WEBHOOK_KEY", hide_env_values = true)]
    pub webhook_key: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR", env = "REELFARM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Public HTTP endpoint: the render API, `POST /v1/events`, signed download links, and
    /// `/healthz` and `/readyz` for probes.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7601",
        env = "REELFARM_HTTP_LISTEN"
    )]
    pub http_listen: SocketAddr,
    /// Base of download links as senders reach the HTTP endpoint (behind a proxy, say).
    #[arg(long, value_name = "URL", env = "REELFARM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Trigger store URL; default: trigger.db in --data, or --store when it is PostgreSQL.
    #[arg(
        long,
        value_name = "URL",
        env = "REELFARM_TRIGGER_STORE",
        hide_env_values = true
    )]
    pub trigger_store: Option<String>,
    /// Do not run the trigger layer (events, campaigns, webhooks) in this process.
    #[arg(long, env = "REELFARM_NO_TRIGGER")]
    pub no_trigger: bool,
    /// Let webhooks go to loopback and private addresses (local tests and demos only).
    #[arg(long, env = "REELFARM_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// TLS certificate chain (PEM); with --tls-key, serve gRPC over TLS.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "REELFARM_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "REELFARM_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,
    /// Start this many workers inside this process.
    #[arg(long, default_value_t = 0, env = "REELFARM_WORKERS")]
    pub workers: u32,
    /// Slots of each in-process worker.
    #[arg(long, default_value_t = 1, env = "REELFARM_WORKER_SLOTS")]
    pub worker_slots: u32,
    /// In-process workers complete renders without rendering (to measure the coordinator).
    #[arg(long)]
    pub noop_workers: bool,
    /// Lease time-to-live in milliseconds.
    #[arg(
        long,
        default_value_t = 30_000,
        value_name = "MS",
        env = "REELFARM_LEASE_TTL_MS"
    )]
    pub lease_ttl_ms: u32,
    /// Worker heartbeat interval in milliseconds.
    #[arg(
        long,
        default_value_t = 5_000,
        value_name = "MS",
        env = "REELFARM_HEARTBEAT_MS"
    )]
    pub heartbeat_ms: u32,
}

#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Coordinator URL (http:// or https://).
    #[arg(
        long,
        env = "REELFARM_COORDINATOR",
        default_value = "http://127.0.0.1:7600"
    )]
    pub coordinator: String,
    /// The farm's join token.
    #[arg(
        long,
        env = "REELFARM_JOIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "join_token_file"
    )]
    pub join_token: Option<String>,
    /// File holding the join token (e.g. the coordinator's DATA/join-token).
    #[arg(long, value_name = "FILE", env = "REELFARM_JOIN_TOKEN_FILE")]
    pub join_token_file: Option<PathBuf>,
    /// Renders at once.
    #[arg(long, default_value_t = 1, env = "REELFARM_SLOTS")]
    pub slots: u32,
    /// Worker name (stable across restarts); default: host name and process id.
    #[arg(long, env = "REELFARM_WORKER_NAME")]
    pub name: Option<String>,
    /// Complete every render at once without rendering (coordinator benchmarks).
    #[arg(long)]
    pub noop: bool,
    /// With --noop, hold each render this many milliseconds before completing it, as a real
    /// render would hold its slot and lease (failure tests).
    #[arg(long, value_name = "MS", requires = "noop", default_value_t = 0)]
    pub noop_ms: u64,
    /// Folder for cached templates and work files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "reelfarm-worker",
        env = "REELFARM_CACHE"
    )]
    pub cache: PathBuf,
    /// PEM certificate authority to trust for an https:// coordinator.
    #[arg(long, value_name = "FILE", env = "REELFARM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics, and `/healthz` and `/readyz` for
    /// probes.
    #[arg(long, value_name = "ADDR", env = "REELFARM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Size limit of the segment cache under the cache folder, in MiB; 0 turns it off (and
    /// with it the reuse of segments other workers rendered).
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = farm::DEFAULT_SEGMENT_CACHE_BYTES >> 20,
        env = "REELFARM_SEGMENT_CACHE_MIB"
    )]
    pub segment_cache_mib: u64,
    /// Segment encoders running at once, shared by all slots; 0: one per CPU core.
    #[arg(long, value_name = "N", default_value_t = 0, env = "REELFARM_ENCODERS")]
    pub encoders: usize,
    /// On SIGTERM or Ctrl-C the worker takes no new work and lets its renders finish for at
    /// most this many seconds; then it gives the rest back to be rendered again elsewhere and
    /// exits. A second signal gives them back at once.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 900,
        env = "REELFARM_DRAIN_TIMEOUT"
    )]
    pub drain_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create {
        /// Tenant name: 1 to 64 of a-z, 0-9 and -.
        name: String,
        /// Most renders of this tenant running at once.
        #[arg(long, default_value_t = 1000)]
        max_running: u32,
        #[command(flatten)]
        data: DataArgs,
    },
    /// A tenant's API keys: issue another, list them, revoke one.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue another API key for a tenant (shown once) and print its id.
    Add {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a tenant's API keys: id and creation time (keys themselves are not stored).
    List {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke one of a tenant's API keys; every coordinator refuses it from its next call.
    Revoke {
        /// Tenant name.
        name: String,
        /// The key's id (as `tenant key list` shows it) or the key itself.
        key: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Template: NAME, NAME@VERSION or NAME@ALIAS.
    #[arg(long)]
    pub template: String,
    /// JSON object of token name to value.
    #[arg(long, value_name = "FILE.json")]
    pub tokens: Option<PathBuf>,
    /// Language code; default: the template's default language.
    #[arg(long, value_name = "CODE", default_value = "")]
    pub lang: String,
    /// Idempotency key; default: a new random key (resubmitting then creates a new render).
    #[arg(long)]
    pub key: Option<String>,
    /// Output preset: 720p, 1080p, whatsapp.
    #[arg(long, default_value = Preset::DEFAULT.name())]
    pub preset: String,
    /// Lane: realtime or bulk.
    #[arg(long, default_value = "realtime")]
    pub lane: String,
    /// Give up after this many seconds (0: 3600).
    #[arg(long, default_value_t = 0)]
    pub deadline_s: u32,
    /// A label kept with the render, returned on it and in its callback (an order id, a
    /// campaign): KEY=VALUE; repeat for more.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    pub metadata: Vec<(String, String)>,
    /// POST a signed webhook here when the render succeeds, fails or is cancelled (verify it
    /// with the secret of `reelfarm render callback-secret`).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Follow the render until it finishes, with its state, stage and progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// Download the finished video here (implies --wait).
    #[arg(long, value_name = "FILE.mp4")]
    pub out: Option<PathBuf>,
    /// Download the finished poster here (implies --wait).
    #[arg(long, value_name = "FILE.jpg")]
    pub poster: Option<PathBuf>,
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

/// `reelfarm render`: a local render (`render --template DIR --lang L --out F.mp4`), or one of
/// the farm subcommands (`render list`, `render get ID`, ...).
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    subcommand_value_name = "FARM COMMAND",
    subcommand_help_heading = "Farm commands"
)]
pub struct RenderArgs {
    #[command(subcommand)]
    pub command: Option<RenderCommand>,
    #[command(flatten)]
    pub local: Option<LocalRenderArgs>,
}

/// A render on this machine. The fields of [`JobArgs`] are repeated here rather than
/// flattened: clap fills an optional flattened group only from its own arguments.
#[derive(Debug, Args)]
pub struct LocalRenderArgs {
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
    /// Output MP4.
    #[arg(long, value_name = "FILE.mp4")]
    pub out: PathBuf,
    /// Output preset: 720p (1280 wide), 1080p (template size), whatsapp (720p, Main profile,
    /// ≤ 16 MB).
    #[arg(long, default_value = Preset::DEFAULT.name())]
    pub preset: String,
    /// Render only from this time, in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub from: Option<f64>,
    /// Render only up to this time (exclusive), in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub to: Option<f64>,
    /// Segment cache folder: segments found there are not rendered again, and the segments
    /// rendered are kept there for the next render. Default: no cache.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Most the segment cache keeps on disk, least recently used out first: bytes, or a number
    /// with KB, MB, GB, KiB, MiB or GiB.
    #[arg(long, value_name = "SIZE", default_value = "2GiB", requires = "cache")]
    pub cache_limit: String,
    /// Segments encoded at once; default: one per CPU core.
    #[arg(long, value_name = "N")]
    pub encoders: Option<usize>,
    /// Write the video as a live HLS stream into this folder too (`index.m3u8` and one `.ts`
    /// per segment, each added as soon as every segment before it is done).
    #[arg(long, value_name = "DIR")]
    pub stream: Option<PathBuf>,
    /// Render with one encoder for the whole video, without segments (the reference render,
    /// for comparisons).
    #[arg(long, conflicts_with_all = ["cache", "encoders", "stream"])]
    pub one_encoder: bool,
}

impl LocalRenderArgs {
    /// The template, recipient and language, as `still` takes them.
    pub fn job(&self) -> JobArgs {
        JobArgs {
            template: self.template.clone(),
            tokens: self.tokens.clone(),
            lang: self.lang.clone(),
            voice: self.voice.clone(),
        }
    }
}

/// `reelfarm render get|list|cancel|watch|callback-secret`: renders on a farm.
#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// One render on a farm: state, stage, progress, output, failure, tokens, metadata and
    /// callback URL.
    Get {
        /// Render id.
        id: String,
        /// Print the render as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The tenant's renders on a farm, newest first.
    List {
        /// Only renders in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Most renders to list.
        #[arg(long, value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Print one JSON array of renders instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a render that has not finished, and print the state it is in afterwards.
    Cancel {
        /// Render id.
        id: String,
        /// Print the render as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follow a render until it ends: a line per change of state or stage and every 10 %;
    /// exits non-zero when the render failed or was cancelled.
    Watch {
        /// Render id.
        id: String,
        /// Print the final render as one JSON object (the progress lines go to stderr).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The secret that signs per-render callbacks (`submit --callback-url`).
    CallbackSecret {
        /// Print {"secret": "..."}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A render state, as `render list --state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// `--metadata KEY=VALUE`: split at the first `=`; the key must not be empty.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        Some(_) => Err(format!("`{s}`: the key before `=` is empty")),
        None => Err(format!("`{s}`: expected KEY=VALUE")),
    }
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
    /// Output preset (sets the size): 720p, 1080p, whatsapp.
    #[arg(long, default_value = Preset::DEFAULT.name())]
    pub preset: String,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Check a template folder and list every problem found.
    Validate {
        /// Template folder.
        dir: PathBuf,
        /// Also decode every media file, fit every text layer and speak every voice script in
        /// every language with generated worst-case values (the longest value in the widest
        /// letters); exits non-zero when some recipient's render would fail.
        #[arg(long)]
        deep: bool,
    },
    /// Print the JSON Schema of template.json.
    Schema,
    /// The tenant's templates on a farm: name, newest version, aliases, languages, created.
    List {
        /// Print one JSON array of templates instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Upload a template folder to a farm as a new immutable version, after the deep checks of
    /// `validate --deep`; a template that would fail for some recipient is refused.
    Push {
        /// Template folder.
        dir: PathBuf,
        /// Point these aliases (e.g. live) at the uploaded version.
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
        /// Upload even when the deep checks find errors (they are still printed).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
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
    #[arg(long, default_value = Preset::DEFAULT.name())]
    pub preset: String,
    /// Render every demo recipient, not only the first three (English, Hindi, Tamil).
    #[arg(long)]
    pub all: bool,
    /// Render in this process instead of through a local farm, and write greeting stills in
    /// every demo language.
    #[arg(long)]
    pub direct: bool,
    /// Worker processes of the local farm.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub farm: FarmBenchArgs,
}

/// `reelfarm bench --jobs N --concurrency C`.
#[derive(Debug, Args)]
pub struct FarmBenchArgs {
    /// Renders to run.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    /// Clients, each submitting a render and waiting for it before the next.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u32,
    /// Drive this farm; without it, a local farm with in-process no-op workers is started.
    #[arg(long, env = "REELFARM_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Tenant API key of the farm given by --coordinator.
    #[arg(long, env = "REELFARM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM certificate authority to trust for an https:// coordinator.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Template to render: a name (NAME, NAME@VERSION, NAME@ALIAS) on the farm, pushed from
    /// the bundled demo when it is order-delivered and missing; or a template folder, pushed
    /// first.
    #[arg(long, value_name = "NAME|DIR", default_value = "order-delivered")]
    pub template: String,
    /// Language of every render (of those whose --tokens entry names none).
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// Output preset of every render.
    #[arg(long, default_value = Preset::DEFAULT.name())]
    pub preset: String,
    /// Local farm: job store URL (default: SQLite in a temporary folder).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Local farm: in-process no-op workers.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Local farm: slots per worker.
    #[arg(long, default_value_t = 64)]
    pub slots: u32,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Give the renders N recipients' tokens instead of one's: first names from a list of
    /// names, a product from 5 and an offer code from 3, drawn with a fixed seed; render i is
    /// recipient i mod N (with --jobs N, one render each). Workers' segment caches then show
    /// in the throughput.
    #[arg(long, value_name = "N", conflicts_with = "tokens")]
    pub recipients: Option<u32>,
    /// Render these recipients in turn: a JSON array of {"lang": "hi", "tokens": {...}} (or a
    /// template's recipients.json); render i is entry i mod the count.
    #[arg(long, value_name = "FILE.json")]
    pub tokens: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The reference workload W1 three ways: reelfarm, an FFmpeg CLI filtergraph, and x264
    /// alone on the same frames.
    W1(W1Args),
    /// Event ingestion: `POST /v1/events` at a fixed rate, latency to the 202 answer.
    Events(EventBenchArgs),
    /// Lip-sync accuracy and speed in every supported language, on synthesized voices scored
    /// against the synthesizer's phoneme times.
    Lipsync(LipsyncBenchArgs),
}

/// `reelfarm lipsync`.
#[derive(Debug, Args)]
pub struct LipsyncArgs {
    /// The voice recording (any format FFmpeg decodes).
    #[arg(long, value_name = "FILE")]
    pub audio: PathBuf,
    /// Language spoken: hi, ta, bn, te, mr, kn, ml, gu, pa, en, ar or es.
    #[arg(long, value_name = "CODE")]
    pub lang: String,
    /// What the voice says; aligns the recording to it (much more accurate than without).
    #[arg(long)]
    pub text: Option<String>,
    /// Print the track as a JSON array of {"start_ms", "end_ms", "shape"}; without it, one
    /// `seconds<TAB>shape` line per change (Rhubarb's TSV).
    #[arg(long)]
    pub json: bool,
}

/// `reelfarm bench lipsync`.
#[derive(Debug, Args)]
pub struct LipsyncBenchArgs {
    /// Comma-separated language codes; default: all supported.
    #[arg(long)]
    pub lang: Option<String>,
}

/// `reelfarm bench events`.
#[derive(Debug, Args)]
pub struct EventBenchArgs {
    /// Events per second to offer (open loop: sent on schedule whatever the answers do).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Events per request (1 = one POST per event).
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// HTTP endpoint of a running farm (`http://host:7601`); without it a local farm is started
    /// in this process (coordinator, trigger on SQLite or --store, no-op workers, a campaign that
    /// matches every event).
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// Tenant API key for --http.
    #[arg(long, env = "REELFARM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Local farm: job and trigger store URL (default: SQLite files in a temporary folder).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
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
    /// Skip the smart render rows (cold, warm-template and warm-shared segment cache).
    #[arg(long)]
    pub skip_smart: bool,
}

#[derive(Debug, Args)]
pub struct StudioArgs {
    /// Template folder (holding template.json).
    pub dir: PathBuf,
    /// Address to serve the page on; port 0 picks a free port (the URL is printed).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Folder for preview MP4s (never inside the template). Default: a new temporary folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not run the deep checks (media decoding, worst-case text fit and voice length) in
    /// the background.
    #[arg(long)]
    pub no_deep: bool,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Template folder (holding template.json).
    pub dir: PathBuf,
    /// Output PNG.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Times in seconds, comma-separated. Default: a sixth, a half and five sixths of the way.
    #[arg(long, value_name = "SECONDS,...")]
    pub times: Option<String>,
    /// Languages, comma-separated. Default: all of the template's.
    #[arg(long, value_name = "CODE,...")]
    pub langs: Option<String>,
    /// Width of each cell in pixels (16 to 1280).
    #[arg(long, default_value_t = 320)]
    pub cell_width: u32,
    /// Only the sample recipients: leave out the generated worst-case rows.
    #[arg(long)]
    pub no_worst_cases: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("reelfarm").chain(args.iter().copied()))
    }

    fn render(args: &[&str]) -> RenderArgs {
        match parse(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Render(r) => r,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn render_is_a_local_render_or_a_farm_command() {
        let r = render(&[
            "render",
            "--template",
            "t",
            "--lang",
            "hi",
            "--out",
            "o.mp4",
        ]);
        assert!(r.command.is_none());
        let local = r.local.expect("a local render");
        assert_eq!(local.job().template, PathBuf::from("t"));
        assert_eq!(local.lang, "hi");
        assert_eq!(local.preset, "720p", "the default preset");

        let r = render(&[
            "render", "list", "--state", "failed", "--limit", "5", "--json",
        ]);
        assert!(r.local.is_none());
        match r.command {
            Some(RenderCommand::List {
                state, limit, json, ..
            }) => {
                assert_eq!(state, Some(StateArg::Failed));
                assert_eq!(limit, 5);
                assert!(json);
            }
            other => panic!("{other:?}"),
        }
        let r = render(&["render", "list"]);
        assert!(matches!(
            r.command,
            Some(RenderCommand::List {
                state: None,
                limit: 20,
                json: false,
                ..
            })
        ));
        for (args, id) in [
            (&["render", "get", "r1"][..], "r1"),
            (&["render", "cancel", "r2"][..], "r2"),
            (
                &["render", "watch", "r3", "--coordinator", "http://x:1"][..],
                "r3",
            ),
        ] {
            match render(args).command {
                Some(
                    RenderCommand::Get { id: got, .. }
                    | RenderCommand::Cancel { id: got, .. }
                    | RenderCommand::Watch { id: got, .. },
                ) => assert_eq!(got, id),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(
            render(&["render", "callback-secret"]).command,
            Some(RenderCommand::CallbackSecret { json: false, .. })
        ));
    }

    #[test]
    fn render_forms_do_not_mix() {
        let missing = parse(&["render", "--template", "t", "--lang", "hi"]).expect_err("no --out");
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert!(missing.to_string().contains("--out"), "{missing}");
        assert!(parse(&["render"]).is_err(), "neither form");
        assert!(parse(&["render", "--template", "t", "list"]).is_err());
        assert!(parse(&["render", "list", "--out", "o.mp4"]).is_err());
        assert!(parse(&["render", "get"]).is_err(), "get needs an id");
        assert!(parse(&["render", "list", "--state", "done"]).is_err());
        assert!(parse(&["render", "list", "--limit", "0"]).is_err());
    }

    #[test]
    fn presets_default_to_one_constant() {
        let still = match parse(&[
            "still",
            "--template",
            "t",
            "--lang",
            "en",
            "--at",
            "1",
            "--out",
            "s.png",
        ])
        .expect("still")
        .command
        {
            Command::Still(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(still.preset, Preset::DEFAULT.name());
        let submit = match parse(&["submit", "--template", "t"])
            .expect("submit")
            .command
        {
            Command::Submit(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(submit.preset, Preset::DEFAULT.name());
        assert!(submit.metadata.is_empty() && submit.callback_url.is_none());
    }

    #[test]
    fn submit_metadata_is_key_value() {
        let submit = match parse(&[
            "submit",
            "--template",
            "t",
            "--metadata",
            "order=4711",
            "--metadata",
            "x=a=b",
            "--callback-url",
            "https://example.com/h",
        ])
        .expect("submit")
        .command
        {
            Command::Submit(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            submit.metadata,
            [
                ("order".to_owned(), "4711".to_owned()),
                ("x".to_owned(), "a=b".to_owned())
            ]
        );
        assert_eq!(
            submit.callback_url.as_deref(),
            Some("https://example.com/h")
        );
        for bad in ["order", "=4711"] {
            let e = parse(&["submit", "--template", "t", "--metadata", bad]).expect_err(bad);
            assert!(e.to_string().contains("--metadata"), "{e}");
        }
    }
}
