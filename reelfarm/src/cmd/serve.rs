//! `reelfarm serve`, `reelfarm work` and `reelfarm tenant`: the farm's processes and its tenants.

use anyhow::{bail, Context, Result};
use farm::{secrets, FarmSpec, LocalFarm, TriggerSpec, Workers};

use crate::cli::{DataArgs, KeyCommand, ServeArgs, TenantCommand, WorkArgs};

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

/// The job store URL of a data folder: `--store`, or SQLite in the folder (created).
fn store_url(data: &DataArgs) -> Result<String> {
    match &data.store {
        Some(url) => Ok(url.clone()),
        None => {
            std::fs::create_dir_all(&data.data)
                .with_context(|| format!("cannot create data folder {}", data.data.display()))?;
            Ok(farm::default_store_url(&data.data))
        }
    }
}

/// A key given on the command line (or in the environment), else the one kept in `file`
/// (generated there the first time).
fn secret(flag: &str, given: &Option<String>, file: &std::path::Path) -> Result<String> {
    match given.as_deref().map(str::trim) {
        Some("") => bail!("{flag} is empty"),
        Some(key) => Ok(key.to_owned()),
        None => Ok(secrets::secret_file(file, "")?.0),
    }
}

/// The farm `reelfarm serve` runs: secrets from the data folder, the trigger on its own store
/// (or the job store's PostgreSQL database).
fn spec(args: &ServeArgs) -> Result<FarmSpec> {
    let data = &args.data.data;
    let store_url = store_url(&args.data)?;
    let join_token = match &args.join_token {
        Some(t) => t.clone(),
        None => {
            let (token, fresh) = secrets::join_token(data)?;
            if fresh {
                eprintln!(
                    "generated a worker join token in {}",
                    data.join("join-token").display()
                );
            }
            token
        }
    };
    let trigger = if args.no_trigger {
        None
    } else {
        let url = match (&args.trigger_store, &args.data.store) {
            (Some(u), _) => u.clone(),
            (None, Some(s)) if s.starts_with("postgres") => s.clone(),
            _ => farm::default_trigger_store_url(data),
        };
        Some(TriggerSpec {
            store_url: url,
            webhook_key: secret(
                "--webhook-key",
                &args.webhook_key,
                &data.join("webhook-key"),
            )?
            .into_bytes(),
            allow_private_destinations: args.allow_private_webhooks,
        })
    };
    let mut spec = FarmSpec::new(data);
    spec.store_url = Some(store_url);
    spec.blobs = args.blobs.clone();
    spec.listen = args.listen;
    spec.http_listen = Some(args.http_listen);
    spec.metrics_listen = args.metrics_listen;
    spec.public_url = args.public_url.clone();
    spec.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    spec.join_token = join_token;
    spec.url_key = Some(secret("--url-key", &args.url_key, &data.join("url-key"))?.into_bytes());
    spec.lease_ms = Some((args.heartbeat_ms, args.lease_ttl_ms));
    spec.trigger = trigger;
    spec.workers = Workers {
        count: args.workers,
        slots: args.worker_slots.max(1),
        noop: args.noop_workers,
        name_prefix: format!("{}-inproc", farm::default_worker_name()),
    };
    Ok(spec)
}

/// Runs a coordinator (with the trigger layer and in-process workers, as asked) until SIGTERM
/// or Ctrl-C, then stops it in order.
pub fn serve(args: ServeArgs) -> Result<()> {
    let spec = spec(&args)?;
    farm::run(|gpu| async move {
        let wants_trigger = spec.trigger.is_some();
        let store = secrets::redact(&spec.store_url());
        let blobs = spec
            .blobs
            .clone()
            .unwrap_or_else(|| spec.data.join("blobs").display().to_string());
        let tls = spec.tls.is_some();
        let local = LocalFarm::start(spec, gpu).await?;
        let addr = |a: Option<std::net::SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            store = %store,
            blobs = %secrets::redact(&blobs),
            grpc_listen = %local.url,
            http_listen = %addr(local.http_addr),
            metrics_listen = %addr(local.metrics_addr),
            tls,
            trigger = local.trigger_running(),
            in_process_workers = args.workers,
            "coordinator started"
        );
        say!("coordinator listening on {}", local.url);
        if let Some(m) = local.metrics_addr {
            say!("metrics at http://{m}/metrics");
        }
        if let Some(h) = local.http_addr {
            say!("HTTP (events, download links) on http://{h}");
        }
        if wants_trigger && !local.trigger_running() {
            say_err!("warning: the in-process trigger layer needs plain gRPC; run it without --tls-cert to dispatch campaigns");
        }
        farm::shutdown_signal().await;
        say_err!("shutting down");
        local.stop().await
    })
}

/// Runs one worker until SIGTERM or Ctrl-C.
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
    let mut config = farm::WorkerConfig::new(args.coordinator.clone(), token, args.cache.clone());
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    config.slots = args.slots;
    config.noop = args.noop;
    config.noop_time = std::time::Duration::from_millis(args.noop_ms);
    config.tls_ca = args.tls_ca.clone();
    config.metrics_addr = args.metrics_listen;
    config.segment_cache_bytes = args.segment_cache_mib << 20;
    config.encoders = args.encoders;
    config.drain_timeout = std::time::Duration::from_secs(args.drain_timeout);
    farm::work(config)
}

/// Creates a tenant or issues it another key, straight on the job store.
pub fn tenant(command: TenantCommand) -> Result<()> {
    farm::runtime()?.block_on(async move {
        match command {
            TenantCommand::Create {
                name,
                max_running,
                data,
            } => {
                let t = farm::admin::create_tenant(&store_url(&data)?, &name, max_running).await?;
                println!("created tenant `{}` ({})", t.name, t.id);
                println!("API key (shown once; store it safely):");
                println!("{}", t.api_key);
                Ok(())
            }
            TenantCommand::Key(KeyCommand::Add { name, data }) => {
                let key = farm::admin::issue_key(&store_url(&data)?, &name).await?;
                println!(
                    "issued API key {} for tenant `{name}` (shown once; store it safely):",
                    key.id
                );
                println!("{}", key.api_key);
                Ok(())
            }
            TenantCommand::Key(KeyCommand::List { name, data }) => {
                let keys = farm::admin::list_keys(&store_url(&data)?, &name).await?;
                println!("{:<18} CREATED (UTC)", "ID");
                for k in &keys {
                    println!("{:<18} {}", k.id, utc(k.created_ms));
                }
                println!("{} key(s)", keys.len());
                Ok(())
            }
            TenantCommand::Key(KeyCommand::Revoke { name, key, data }) => {
                let id = farm::admin::revoke_key(&store_url(&data)?, &name, &key).await?;
                println!("revoked API key {id} of tenant `{name}`");
                Ok(())
            }
        }
    })
}

/// Unix milliseconds as a UTC date and time.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}
