//! `reelfarm demo`: a whole farm on this machine — the coordinator in this process, worker
//! processes beside it — rendering the demo recipients submitted over gRPC.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use proto::v1;

use crate::cli::DemoArgs;
use crate::client::{status_error, Farm};
use crate::commands::default_template;
use crate::demo::recipients;
use crate::farm::{parse_preset_proto, runtime, state_name, watch};

/// Worker processes, stopped gracefully (SIGTERM, then drain) when dropped.
struct Workers(Vec<Child>);

impl Workers {
    fn spawn(n: u32, url: &str, token: &str, data: &Path) -> Result<Workers> {
        let exe = std::env::current_exe().context("finding the reelfarm binary")?;
        let mut children = Vec::new();
        for i in 0..n {
            let child = Command::new(&exe)
                .arg("work")
                .arg("--coordinator")
                .arg(url)
                .arg("--name")
                .arg(format!("demo-worker-{i}"))
                .arg("--cache")
                .arg(data.join(format!("worker-{i}")))
                .env("REELFARM_JOIN_TOKEN", token)
                .stdin(Stdio::null())
                .spawn()
                .context("starting a worker process")?;
            children.push(child);
        }
        Ok(Workers(children))
    }

    /// Asks every worker to drain and waits for them to exit.
    fn stop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn run(args: DemoArgs) -> Result<()> {
    let dir = args.template.clone().unwrap_or_else(default_template);
    let preset = parse_preset_proto(&args.preset)?;
    let mut people = recipients(&dir)?;
    if !args.all {
        people.truncate(3);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let data = args.out.join("farm");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("cannot clear {}", data.display()))?;
    }
    std::fs::create_dir_all(&data)?;

    runtime()?.block_on(async move {
        let started = Instant::now();
        let store_url = format!("sqlite://{}", data.join("reelfarm.db").display());
        let store = coordinator::store::open(&store_url).await?;
        let token = format!("rfj_{}", coordinator::auth::random_hex(24));
        let now = coordinator::Clock::system().now_ms();
        let (_, key) = coordinator::admin::create_tenant(&store, "demo", 100, now).await?;
        let config = coordinator::CoordinatorConfig::new(
            "127.0.0.1:0".parse()?,
            data.join("blobs").display().to_string(),
            token.clone(),
        );
        let running = coordinator::start(config, store).await?;
        let url = format!("http://{}", running.addr);
        println!("coordinator on {url} (SQLite and blobs in {})", data.display());
        let mut workers = Workers::spawn(args.workers.max(1), &url, &token, &data)?;
        println!("started {} worker processes", workers.0.len());

        let mut farm = Farm::connect_with(&url, &key, None).await?;
        let version = farm.push_template(&dir, &["live".to_owned()]).await?;
        println!(
            "pushed template {}@{} ({} KB), alias live",
            version.name,
            version.version,
            version.size_bytes / 1000
        );

        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{prefix:14} [{bar:40}] {percent:>3}% {msg}")
            .map(|s| s.progress_chars("=> "))
            .ok();
        let mut tasks = Vec::new();
        for person in &people {
            let spec = v1::RenderSpec {
                template: format!("{}@live", version.name),
                lang: person.lang.clone(),
                tokens: person.tokens.clone(),
                preset: preset as i32,
                lane: v1::Lane::Realtime as i32,
                deadline_s: 0,
            };
            let resp = farm
                .renders
                .submit_render(v1::SubmitRenderRequest {
                    idempotency_key: format!("demo-{}", person.id),
                    spec: Some(spec),
                })
                .await
                .map_err(status_error)
                .with_context(|| format!("submitting recipient `{}`", person.id))?
                .into_inner();
            let render = resp.render.context("no render in the answer")?;
            let bar = multi.add(indicatif::ProgressBar::new(1000));
            if let Some(s) = &style {
                bar.set_style(s.clone());
            }
            bar.set_prefix(person.id.clone());
            let mut farm = farm.clone();
            let out = args.out.clone();
            let id = person.id.clone();
            let lang = person.lang.clone();
            tasks.push(tokio::spawn(async move {
                let done = watch(&mut farm, &render.id, |r| {
                    bar.set_position((r.progress * 1000.0) as u64);
                    bar.set_message(format!("{} {}", state_name(r.state), r.stage));
                })
                .await?;
                bar.finish();
                if done.state != v1::RenderState::Succeeded as i32 {
                    let why = done.failure.map(|f| f.message).unwrap_or_default();
                    bail!("recipient `{id}`: render {}: {why}", state_name(done.state));
                }
                let video = out.join(format!("{id}.mp4"));
                let poster = out.join(format!("{id}.jpg"));
                farm.download(&done.id, v1::Artifact::Video, &video).await?;
                farm.download(&done.id, v1::Artifact::Poster, &poster).await?;
                Ok::<_, anyhow::Error>((id, lang, done))
            }));
        }
        let mut rows = Vec::new();
        for t in tasks {
            rows.push(t.await.context("a demo task panicked")??);
        }
        workers.stop();
        running.shutdown().await?;

        println!();
        println!(
            "{:<14} {:<4} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "recipient", "lang", "queue s", "fetch s", "render s", "poster s", "upload s", "total s"
        );
        for (id, lang, r) in &rows {
            let stage = |k: &str| {
                r.output
                    .as_ref()
                    .and_then(|o| o.stage_seconds.get(k).copied())
                    .unwrap_or(0.0)
            };
            println!(
                "{:<14} {:<4} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
                id,
                lang,
                (r.started_unix_ms - r.created_unix_ms) as f64 / 1000.0,
                stage("fetch_template"),
                stage("render"),
                stage("poster"),
                stage("upload"),
                (r.finished_unix_ms - r.created_unix_ms) as f64 / 1000.0,
            );
        }
        println!(
            "wrote {} videos and posters to {} in {:.1} s ({} workers rendering side by side on this machine)",
            rows.len(),
            args.out.display(),
            started.elapsed().as_secs_f64(),
            args.workers.max(1)
        );
        Ok(())
    })
}
