//! Farm commands: serve, work, tenant, template push, submit.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use coordinator::store::DynStore;
use coordinator::{CoordinatorConfig, Settings};
use proto::v1;

use crate::cli::{DataArgs, ServeArgs, SubmitArgs, TenantCommand, WorkArgs};
use crate::client::{status_error, Farm};
use crate::commands::read_tokens;

/// Prints a line on stdout, ignoring a closed stdout: a long-running server must not die when
/// whoever started it stops reading.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Like `say!`, on stderr.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A multi-threaded runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The store URL of a data folder.
pub fn store_url(data: &DataArgs) -> Result<String> {
    match &data.store {
        Some(url) => Ok(url.clone()),
        None => {
            std::fs::create_dir_all(&data.data)
                .with_context(|| format!("cannot create data folder {}", data.data.display()))?;
            Ok(format!(
                "sqlite://{}",
                data.data.join("reelfarm.db").display()
            ))
        }
    }
}

pub async fn open_store(data: &DataArgs) -> Result<DynStore> {
    let url = store_url(data)?;
    coordinator::store::open(&url)
        .await
        .with_context(|| format!("opening the job store {}", redact(&url)))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The join token: given, or read from (or generated into) DATA/join-token.
fn join_token(args: &ServeArgs) -> Result<String> {
    if let Some(t) = &args.join_token {
        return Ok(t.clone());
    }
    let path = args.data.data.join("join-token");
    let (token, fresh) = secret_file(&path, "rfj_")?;
    if fresh {
        eprintln!("generated a worker join token in {}", path.display());
    }
    Ok(token)
}

/// A secret kept in a private file of the data folder, generated the first time.
fn secret_file(path: &Path, prefix: &str) -> Result<(String, bool)> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok((t, false));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let secret = format!("{prefix}{}", coordinator::auth::random_hex(32));
    write_private(path, &secret)?;
    Ok((secret, true))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let gpu = worker::Gpu::new();
    with_gpu_last(&gpu, |rt| rt.block_on(serve_on(args, gpu.clone())))
}

async fn serve_on(args: ServeArgs, gpu: worker::Gpu) -> Result<()> {
    let store = open_store(&args.data).await?;
    let token = join_token(&args)?;
    let blobs = match &args.blobs {
        Some(b) => b.clone(),
        None => args.data.data.join("blobs").display().to_string(),
    };
    let mut config = CoordinatorConfig::new(args.listen, blobs, token.clone());
    config.settings = Settings {
        lease: coordinator::lifecycle::LeasePolicy {
            heartbeat_ms: args.heartbeat_ms.max(100),
            lease_ttl_ms: args.lease_ttl_ms.max(args.heartbeat_ms.saturating_mul(2)),
        },
        ..Settings::default()
    };
    config.metrics_listen = args.metrics_listen;
    config.http_listen = Some(args.http_listen);
    config.public_url = args.public_url.clone();
    config.url_key = secret_file(&args.data.data.join("url-key"), "")?
        .0
        .into_bytes();
    let trigger = if args.no_trigger {
        None
    } else {
        let url = match (&args.trigger_store, &args.data.store) {
            (Some(u), _) => u.clone(),
            (None, Some(s)) if s.starts_with("postgres") => s.clone(),
            _ => format!("sqlite://{}", args.data.data.join("trigger.db").display()),
        };
        let key = secret_file(&args.data.data.join("webhook-key"), "")?
            .0
            .into_bytes();
        let t = crate::dispatch::Trigger::open(&url, store.clone(), key).await?;
        t.attach(&mut config);
        Some(t)
    };
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let running = coordinator::start(config, store).await?;
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}", running.addr);
    say!("coordinator listening on {url}");
    if let Some(m) = running.metrics_addr {
        say!("metrics at http://{m}/metrics");
    }
    if let Some(h) = running.http_addr {
        say!("HTTP (events, download links) on http://{h}");
    }
    let (stop_trigger, trigger_rx) = tokio::sync::watch::channel(false);
    let trigger_task = match &trigger {
        Some(t) if args.tls_cert.is_none() => {
            Some(t.spawn(running.addr, args.allow_private_webhooks, trigger_rx)?)
        }
        Some(_) => {
            say_err!("warning: the in-process trigger layer needs plain gRPC; run it without --tls-cert to dispatch campaigns");
            None
        }
        None => None,
    };
    let mut workers = Vec::new();
    let (stop_workers, stop_rx) = tokio::sync::watch::channel(false);
    for i in 0..args.workers {
        let mut wc = worker::WorkerConfig::new(
            url.clone(),
            token.clone(),
            args.data.data.join(format!("worker-{i}")),
        );
        wc.name = format!("{}-inproc-{i}", worker::default_name());
        wc.slots = args.worker_slots.max(1);
        wc.noop = args.noop_workers;
        let mut rx = stop_rx.clone();
        let gpu = gpu.clone();
        workers.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = worker::run(wc, gpu, stop).await {
                say_err!("error: in-process worker {i}: {e:#}");
            }
        }));
    }
    shutdown_signal().await;
    say_err!("shutting down");
    let _ = stop_trigger.send(true);
    if let Some(t) = trigger_task {
        let _ = t.await;
    }
    let _ = stop_workers.send(true);
    for w in workers {
        let _ = w.await;
    }
    running.shutdown().await
}

pub fn work(args: WorkArgs) -> Result<()> {
    let token = match (&args.join_token, &args.join_token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("--join-token-file {}: cannot read", path.display()))?
            .trim()
            .to_owned(),
        (None, None) => {
            bail!("no join token: pass --join-token, --join-token-file or set REELFARM_JOIN_TOKEN")
        }
    };
    let mut config = worker::WorkerConfig::new(args.coordinator.clone(), token, args.cache.clone());
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    config.slots = args.slots;
    config.noop = args.noop;
    config.noop_time = std::time::Duration::from_millis(args.noop_ms);
    config.tls_ca = args.tls_ca.clone();
    config.metrics_addr = args.metrics_listen;
    let gpu = worker::Gpu::new();
    with_gpu_last(&gpu, |rt| {
        rt.block_on(worker::run(config, gpu.clone(), shutdown_signal()))
    })
}

/// Runs `f` on a new runtime, shuts the runtime down (every one of its threads has exited),
/// then destroys the renderers in `gpu` on this thread: GPU objects go last, after every thread
/// that used the driver (see [`worker::Gpu`]).
fn with_gpu_last<T>(
    gpu: &worker::Gpu,
    f: impl FnOnce(&tokio::runtime::Runtime) -> Result<T>,
) -> Result<T> {
    let rt = runtime()?;
    let result = f(&rt);
    drop(rt);
    gpu.close();
    result
}

pub fn tenant(cmd: TenantCommand) -> Result<()> {
    runtime()?.block_on(async move {
        match cmd {
            TenantCommand::Create {
                name,
                max_running,
                data,
            } => {
                let store = open_store(&data).await?;
                let now = coordinator::Clock::system().now_ms();
                let (tenant, key) =
                    coordinator::admin::create_tenant(&store, &name, max_running, now).await?;
                println!("created tenant `{}` ({})", tenant.name, tenant.id);
                println!("API key (shown once; store it safely):");
                println!("{key}");
                Ok(())
            }
            TenantCommand::Key { name, data } => {
                let store = open_store(&data).await?;
                let tenant = store
                    .tenant_by_name(&name)
                    .await?
                    .with_context(|| format!("no tenant `{name}`"))?;
                let now = coordinator::Clock::system().now_ms();
                let key = coordinator::admin::issue_key(&store, &tenant, now).await?;
                println!("{key}");
                Ok(())
            }
        }
    })
}

pub fn push(dir: PathBuf, aliases: Vec<String>, client: crate::cli::ClientArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let mut farm = Farm::connect(&client).await?;
        let v = farm.push_template(&dir, &aliases).await?;
        println!(
            "{} {}@{} ({} bytes, sha256 {}){}",
            if v.created {
                "uploaded"
            } else {
                "already stored as"
            },
            v.name,
            v.version,
            v.size_bytes,
            &v.digest[..12.min(v.digest.len())],
            if v.aliases.is_empty() {
                String::new()
            } else {
                format!(", aliases: {}", v.aliases.join(", "))
            }
        );
        Ok(())
    })
}

pub fn parse_lane(s: &str) -> Result<v1::Lane> {
    match s {
        "realtime" => Ok(v1::Lane::Realtime),
        "bulk" => Ok(v1::Lane::Bulk),
        other => bail!("--lane {other}: expected realtime or bulk"),
    }
}

pub fn parse_preset_proto(s: &str) -> Result<v1::Preset> {
    match s {
        "720p" => Ok(v1::Preset::Preset720p),
        "1080p" => Ok(v1::Preset::Preset1080p),
        "whatsapp" => Ok(v1::Preset::Whatsapp),
        other => bail!("--preset {other}: expected 720p, 1080p or whatsapp"),
    }
}

pub fn state_name(state: i32) -> &'static str {
    match v1::RenderState::try_from(state) {
        Ok(v1::RenderState::Queued) => "queued",
        Ok(v1::RenderState::Running) => "running",
        Ok(v1::RenderState::Succeeded) => "succeeded",
        Ok(v1::RenderState::Failed) => "failed",
        Ok(v1::RenderState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

pub fn is_terminal(state: i32) -> bool {
    matches!(
        v1::RenderState::try_from(state),
        Ok(v1::RenderState::Succeeded | v1::RenderState::Failed | v1::RenderState::Cancelled)
    )
}

/// Follows a render until it ends, calling `on_update` at every change.
pub async fn watch(
    farm: &mut Farm,
    id: &str,
    mut on_update: impl FnMut(&v1::Render),
) -> Result<v1::Render> {
    let mut stream = farm
        .renders
        .watch_render(v1::WatchRenderRequest { id: id.to_owned() })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut last = None;
    while let Some(r) = stream.message().await.map_err(status_error)? {
        on_update(&r);
        let done = is_terminal(r.state);
        last = Some(r);
        if done {
            break;
        }
    }
    last.context("the coordinator ended the watch without an update")
}

pub fn submit(args: SubmitArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let tokens = match &args.tokens {
            Some(p) => read_tokens(p)?,
            None => Default::default(),
        };
        let mut farm = Farm::connect(&args.client).await?;
        let key = args
            .key
            .clone()
            .unwrap_or_else(|| format!("cli-{}", coordinator::auth::random_hex(12)));
        let spec = v1::RenderSpec {
            template: args.template.clone(),
            lang: args.lang.clone(),
            tokens,
            preset: parse_preset_proto(&args.preset)? as i32,
            lane: parse_lane(&args.lane)? as i32,
            deadline_s: args.deadline_s,
        };
        let resp = farm
            .renders
            .submit_render(v1::SubmitRenderRequest {
                idempotency_key: key.clone(),
                spec: Some(spec),
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let render = resp
            .render
            .context("the coordinator answered without a render")?;
        println!(
            "{} render {} ({}@{}, {}), key {key}",
            if resp.created { "queued" } else { "existing" },
            render.id,
            render.template_name,
            render.template_version,
            render.lang
        );
        if !(args.wait || args.out.is_some() || args.poster.is_some()) {
            return Ok(());
        }
        let bar = indicatif::ProgressBar::new(1000);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:24} [{bar:40}] {percent}%")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        let done = watch(&mut farm, &render.id, |r| {
            bar.set_position((r.progress * 1000.0) as u64);
            bar.set_message(format!("{} {}", state_name(r.state), r.stage));
        })
        .await?;
        bar.finish_and_clear();
        match v1::RenderState::try_from(done.state) {
            Ok(v1::RenderState::Succeeded) => {
                let secs = (done.finished_unix_ms - done.created_unix_ms) as f64 / 1000.0;
                println!("render {} succeeded in {secs:.1} s", done.id);
                for w in &done.warnings {
                    eprintln!("warning: {w}");
                }
            }
            _ => {
                let why = done
                    .failure
                    .map(|f| f.message)
                    .unwrap_or_else(|| "cancelled".to_owned());
                bail!("render {} {}: {why}", done.id, state_name(done.state));
            }
        }
        if let Some(out) = &args.out {
            let n = farm.download(&done.id, v1::Artifact::Video, out).await?;
            println!("wrote {} ({:.1} MB)", out.display(), n as f64 / 1e6);
        }
        if let Some(out) = &args.poster {
            let n = farm.download(&done.id, v1::Artifact::Poster, out).await?;
            println!("wrote {} ({} KB)", out.display(), n / 1000);
        }
        Ok(())
    })
}
