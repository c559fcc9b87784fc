//! `reelfarm demo`: a whole farm on this machine — the coordinator in this process, worker
//! processes beside it — rendering the demo recipients submitted over gRPC.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use proto::v1;

use farm::receiver::{self, Receiver};
use farm::{state_name, status_error, watch, FarmSpec, LocalFarm, WorkerProcesses};
use template::recipients;

use super::{default_template, parse_preset_proto};
use crate::cli::DemoArgs;

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

    let spec = FarmSpec::new(&data)
        .with_local_trigger(farm::default_trigger_store_url(&data))
        .with_tenant("demo", 100);
    farm::runtime()?.block_on(async move {
        let started = Instant::now();
        let token = spec.join_token.clone();
        let local = LocalFarm::start(spec, farm::Gpu::new()).await?;
        let url = local.url.clone();
        let http = local.http_base()?;
        println!("coordinator on {url}, events and links on {http} (SQLite and blobs in {})", data.display());
        let exe = std::env::current_exe().context("finding the reelfarm binary")?;
        let mut workers = WorkerProcesses::spawn(&exe, args.workers.max(1), &url, &token, &data)?;
        println!("started {} worker processes", workers.len());

        let mut farm = local.client().await?;
        let version = farm.push_template(&dir, &["live".to_owned()]).await?;
        println!(
            "pushed template {}@{} ({} KB), alias live",
            version.name,
            version.version,
            version.size_bytes / 1000
        );

        // A brand's webhook receiver on this machine, and a campaign that sends it a video
        // whenever an order is delivered.
        let hook = Receiver::start(receiver::Options::default()).await?;
        let campaign = serde_json::json!({
            "name": "delivered-thanks",
            "event_type": "order_delivered",
            "conditions": [],
            "variants": [{"name": "a", "template": format!("{}@live", version.name), "weight": 1}],
            "languages": {"supported": ["en", "hi", "ta", "bn", "te", "mr", "kn", "ml", "gu", "pa", "ar"], "fallback": "en"},
            "tokens": {"first_name": "customer.attributes.first_name", "product": "data.product", "offer_code": {"literal": "THANKS10"}},
            "holdout_percent": 0,
            "destination": {"url": hook.url.clone(), "secret_ref": "demo-webhooks"}
        });
        let put = farm
            .triggers
            .put_campaign(v1::PutCampaignRequest { definition_json: campaign.to_string() })
            .await
            .map_err(status_error)?
            .into_inner();
        hook.set_secret(&put.webhook_secret);
        let event = serde_json::json!({
            "id": "order-4711-delivered",
            "type": "order_delivered",
            "customer": {"id": "cust-4711", "lang": "hi", "tz": "Asia/Kolkata", "consent": true,
                         "attributes": {"first_name": "अनन्या"}},
            "occurred_at": chrono_like_now(),
            "data": {"order_id": "4711", "product": "चाय केतली"}
        });
        let answer = post_event(&http, local.api_key()?, event.to_string()).await?;
        println!("campaign {} v{}: POST /v1/events order_delivered for cust-4711 → {answer}", put.name, put.version);

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
                ..Default::default()
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
        let delivered = delivered(&hook).await?;
        // The trigger and workers stop before the coordinator they talk to.
        workers.stop();
        local.stop().await?;

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
            "webhook: {} for {} (campaign {}, variant {}), signature verified; the signed link gave {} ({} bytes) -> {}",
            delivered.event,
            delivered.customer,
            delivered.campaign,
            delivered.variant,
            delivered.content_type,
            delivered.video.len(),
            args.out.join("webhook-cust-4711.mp4").display()
        );
        std::fs::write(args.out.join("webhook-cust-4711.mp4"), &delivered.video)?;
        lipsync_sheet(&dir, &args.out)?;
        println!(
            "wrote {} videos and posters to {} in {:.1} s ({} workers rendering side by side on this machine)",
            rows.len(),
            args.out.display(),
            started.elapsed().as_secs_f64(),
            args.workers.max(1)
        );
        super::demo::segment_cache(&dir, super::parse_preset(&args.preset)?, &args.out)?;
        Ok(())
    })
}

/// What the demo's webhook receiver got, and the video its signed link gave.
struct Delivered {
    event: String,
    customer: String,
    campaign: String,
    variant: String,
    content_type: String,
    video: Vec<u8>,
}

/// Waits for the demo's webhook, checks its signature verified, and downloads the video from
/// the signed link it carries.
async fn delivered(hook: &Receiver) -> Result<Delivered> {
    let got = hook
        .wait_for(1, std::time::Duration::from_secs(300))
        .await?;
    let first = got.first().context("the webhook receiver stopped")?;
    if !first.verified {
        bail!(
            "webhook signature rejected: {}",
            first.rejection.as_deref().unwrap_or("unknown")
        );
    }
    let s = |k: &str| first.body[k].as_str().unwrap_or_default().to_owned();
    let (content_type, video) = receiver::fetch(&s("video_url")).await?;
    Ok(Delivered {
        event: s("event"),
        customer: s("customer_id"),
        campaign: s("campaign"),
        variant: s("variant"),
        content_type,
        video,
    })
}

/// Posts one event as the tenant; the answer's status line and counts.
async fn post_event(http: &str, key: &str, body: String) -> Result<String> {
    let (status, counts) = farm::post_events(http, key, body).await?;
    if status != 202 {
        bail!("POST /v1/events: {status}: {counts}");
    }
    Ok(format!(
        "{status} Accepted (accepted {}, duplicates {})",
        counts["accepted"], counts["duplicates"]
    ))
}

/// Now as RFC 3339 (UTC).
fn chrono_like_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The lip-sync check of every demo language (see `mouthsheet`), printed with its times.
fn lipsync_sheet(dir: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let mut renderer = render_core::Renderer::new().context("starting the renderer")?;
    let people = recipients(dir)?;
    let (path, lines) = super::mouthsheet::write(&mut renderer, dir, &people, out)?;
    println!(
        "lip-sync check, every language (the presenter at an open vowel, a lip closure and a rounded vowel of its greeting): {}",
        path.display()
    );
    for l in lines {
        println!("  {l}");
    }
    Ok(())
}
