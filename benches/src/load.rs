//! `reelfarm bench --jobs N --concurrency C`: drives a farm over gRPC and reports latency
//! percentiles, throughput and a per-stage breakdown.
//!
//! Closed loop: C clients each submit a render, follow it to its end (WatchRender), then submit
//! the next, until N renders have run. Without `--coordinator`, a local farm is started in this
//! process (coordinator on SQLite in a temporary folder, or `--store`, plus no-op workers), which
//! measures the coordinator alone.
//!
//! With `--recipients N`, render i gets the tokens of recipient i mod N of a fixed, seeded draw
//! (first names from a list, a product from 5, an offer code from 3), so that the workers'
//! segment caches show in the throughput; with `--tokens FILE`, render i is recipient i mod N of
//! the file's N (their language and tokens), for any template; without either, every render is
//! the same recipient.
//!
//! The template is a name on the farm, or a template folder, pushed before the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::v1;

use farm::secrets::random_hex;
use farm::{status_error, watch, FarmSpec, LocalFarm, TenantClient, Workers};

use crate::stats::percentile;

/// What one render measured.
#[derive(Debug, Clone)]
struct Sample {
    /// Client: from sending SubmitRender to seeing the terminal state.
    end_to_end: Duration,
    /// Client: the SubmitRender call alone.
    submit_rpc: Duration,
    /// Server: submission to a worker acquiring it (ms).
    queued_ms: i64,
    /// Server: acquisition to the terminal state (ms).
    running_ms: i64,
    succeeded: bool,
    stage_seconds: BTreeMap<String, f64>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// Renders to run (after a warm-up of a tenth of them, at most 500).
    pub jobs: u64,
    /// Clients, each with one render in flight.
    pub concurrency: u32,
    /// A running farm's gRPC URL; `None`: a local farm in this process.
    pub coordinator: Option<String>,
    /// The tenant API key for `coordinator`.
    pub api_key: Option<String>,
    /// CA certificate for an https:// coordinator.
    pub tls_ca: Option<PathBuf>,
    /// Template reference; the demo template is pushed when it is `order-delivered` and missing.
    /// A folder holding `template.json` is pushed, and its newest version is rendered.
    pub template: String,
    /// Language of the renders whose recipient names none.
    pub lang: String,
    pub preset: template::Preset,
    /// Job store of the local farm; `None`: SQLite in a temporary folder.
    pub store: Option<String>,
    /// No-op workers of the local farm, and slots of each.
    pub workers: u32,
    pub slots: u32,
    /// Where to write the figures as JSON.
    pub json: Option<PathBuf>,
    /// `Some(n)`: render i gets the tokens of recipient i mod n of [`draw_recipients`];
    /// `None`: every render gets the first demo recipient's.
    pub recipients: Option<u32>,
    /// A recipients file (see [`read_recipients`]): render i is recipient i mod n of its n.
    /// Not with `recipients`.
    pub tokens: Option<PathBuf>,
}

/// One recipient of a load test: a language (`None`: the run's `--lang`) and token values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub lang: Option<String>,
    pub tokens: BTreeMap<String, String>,
}

/// Reads a recipients file: a JSON array of `{"lang": "hi", "tokens": {...}}` objects, or a
/// template's `recipients.json` (`{"id", "lang", "tokens"}` each). `lang` may be left out (the
/// run's language), `tokens` too (no tokens); token values are strings or numbers. Errors name
/// the file, the entry (from 0) and the field.
pub fn read_recipients(path: &Path) -> Result<Vec<Recipient>> {
    let at = |what: String| anyhow::anyhow!("--tokens {}: {what}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| at(format!("not valid JSON: {e}")))?;
    let Some(items) = value.as_array() else {
        return Err(at(
            "expected a JSON array of recipients like [{\"lang\": \"hi\", \"tokens\": {...}}]"
                .to_owned(),
        ));
    };
    if items.is_empty() {
        return Err(at("the array holds no recipient".to_owned()));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let entry = |what: String| at(format!("entry {i}: {what}"));
            let Some(fields) = item.as_object() else {
                return Err(entry(
                    "expected an object with `lang` and `tokens`".to_owned(),
                ));
            };
            if let Some(unknown) = fields
                .keys()
                .find(|k| !matches!(k.as_str(), "id" | "lang" | "tokens"))
            {
                return Err(entry(format!(
                    "unknown field `{unknown}` (expected id, lang, tokens)"
                )));
            }
            let lang = match fields.get("lang") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(l)) if !l.trim().is_empty() => Some(l.clone()),
                Some(_) => {
                    return Err(entry(
                        "`lang` must be a language code such as \"hi\"".to_owned(),
                    ))
                }
            };
            let tokens = match fields.get("tokens") {
                None | Some(serde_json::Value::Null) => BTreeMap::new(),
                Some(t) => {
                    template::tokens_from_json(t).map_err(|e| entry(format!("`tokens`: {e}")))?
                }
            };
            Ok(Recipient { lang, tokens })
        })
        .collect()
}

/// First names the recipients of `--recipients` are given.
pub const FIRST_NAMES: [&str; 24] = [
    "Priya", "Rahul", "Ananya", "Arjun", "Sayali", "Dhruv", "Fatima", "Harpreet", "Lakshmi",
    "Srinivas", "Priyanka", "Vikram", "Meera", "Kabir", "Aisha", "Rohan", "Neha", "Aditya",
    "Kavya", "Imran", "Divya", "Karan", "Sneha", "Omar",
];

/// Products of `--recipients`: five, so many recipients share each product's segments.
pub const PRODUCTS: [&str; 5] = [
    "Bluetooth Speaker",
    "Smart Watch",
    "Running Shoes",
    "Coffee Maker",
    "Headphones",
];

/// Offer codes of `--recipients`: three.
pub const OFFER_CODES: [&str; 3] = ["THANKS10", "WELCOME15", "VIP20"];

/// Seed of the draw: the same recipients on every run.
pub const RECIPIENT_SEED: u64 = 0x5EED_2024_0001;

/// SplitMix64: a small, fixed pseudo-random sequence (the draw must not change with a
/// library's version).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// `n` recipients' tokens (`first_name`, `product`, `offer_code`), drawn with
/// [`RECIPIENT_SEED`]: the same list on every run.
pub fn draw_recipients(n: u32) -> Vec<BTreeMap<String, String>> {
    let mut rng = SplitMix(RECIPIENT_SEED);
    (0..n)
        .map(|_| {
            BTreeMap::from([
                ("first_name".to_owned(), rng.pick(&FIRST_NAMES).to_owned()),
                ("product".to_owned(), rng.pick(&PRODUCTS).to_owned()),
                ("offer_code".to_owned(), rng.pick(&OFFER_CODES).to_owned()),
            ])
        })
        .collect()
}

/// A local farm of no-op workers in a temporary folder: the coordinator alone is measured.
async fn start_local(cfg: &Config) -> Result<(LocalFarm, tempfile::TempDir)> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let mut spec =
        FarmSpec::new(dir.path()).with_tenant(format!("bench-{}", random_hex(4)), 1_000_000);
    spec.store_url = Some(
        cfg.store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display())),
    );
    spec.http_listen = None;
    spec.workers = Workers {
        count: cfg.workers.max(1),
        slots: cfg.slots.clamp(1, 64),
        noop: true,
        name_prefix: "bench-noop".to_owned(),
    };
    Ok((LocalFarm::start(spec, farm::Gpu::new()).await?, dir))
}

/// A template reference that names a folder holding `template.json`.
fn template_folder(reference: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(reference);
    dir.join("template.json").is_file().then_some(dir)
}

/// Makes sure the template exists, pushing the bundled demo when it is the one asked for, or
/// the folder `reference` names; returns the reference to render (`name@version` for a
/// pushed folder).
async fn ensure_template(farm: &mut TenantClient, reference: &str) -> Result<String> {
    if let Some(dir) = template_folder(reference) {
        let v = farm
            .push_template(&dir, &[])
            .await
            .with_context(|| format!("--template {}: pushing", dir.display()))?;
        eprintln!(
            "{} {} as {}@{}",
            if v.created { "pushed" } else { "found" },
            dir.display(),
            v.name,
            v.version
        );
        return Ok(format!("{}@{}", v.name, v.version));
    }
    match farm
        .templates
        .get_template(v1::GetTemplateRequest {
            r#ref: reference.to_owned(),
        })
        .await
    {
        Ok(_) => Ok(reference.to_owned()),
        Err(s) if s.code() == tonic::Code::NotFound && reference == "order-delivered" => {
            let v = farm.push_template(&crate::default_template(), &[]).await?;
            eprintln!("pushed the demo template as {}@{}", v.name, v.version);
            Ok(reference.to_owned())
        }
        Err(s) => Err(status_error(s)).with_context(|| format!("template `{reference}`")),
    }
}

/// Tokens that fit the template: the first sample recipient's in `lang` of the template folder
/// the run pushed, or else of the bundled demo.
fn tokens_for(reference: &str, lang: &str) -> BTreeMap<String, String> {
    let dir = template_folder(reference).unwrap_or_else(crate::default_template);
    let people = template::recipients(&dir).unwrap_or_default();
    people
        .into_iter()
        .find(|p| p.lang == lang)
        .map(|p| p.tokens)
        .unwrap_or_default()
}

async fn one(farm: &mut TenantClient, spec: v1::RenderSpec, key: String) -> Result<Sample> {
    let t0 = Instant::now();
    let resp = farm
        .renders
        .submit_render(v1::SubmitRenderRequest {
            idempotency_key: key,
            spec: Some(spec),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let submit_rpc = t0.elapsed();
    let id = resp
        .render
        .map(|r| r.id)
        .context("no render in the answer")?;
    let done = watch(farm, &id, |_| {}).await?;
    let end_to_end = t0.elapsed();
    Ok(Sample {
        end_to_end,
        submit_rpc,
        queued_ms: (done.started_unix_ms - done.created_unix_ms).max(0),
        running_ms: (done.finished_unix_ms - done.started_unix_ms).max(0),
        succeeded: done.state == v1::RenderState::Succeeded as i32,
        stage_seconds: done.output.map(|o| o.stage_seconds).unwrap_or_default(),
    })
}

fn summary(values: &mut [f64]) -> (f64, f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (
        percentile(values, 50.0),
        percentile(values, 95.0),
        percentile(values, 99.0),
        mean,
    )
}

/// Runs `count` renders over `concurrency` clients; returns the samples and the wall time.
async fn drive(
    farm: &TenantClient,
    spec: &v1::RenderSpec,
    people: &Arc<Vec<Recipient>>,
    count: u64,
    concurrency: u32,
    run_id: &str,
    bar: Option<indicatif::ProgressBar>,
) -> Result<(Vec<Sample>, Duration)> {
    let next = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let mut farm = farm.clone();
        let spec = spec.clone();
        let next = next.clone();
        let samples = samples.clone();
        let people = people.clone();
        let run_id = run_id.to_owned();
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let mut spec = spec.clone();
                if !people.is_empty() {
                    let person = &people[(i % people.len() as u64) as usize];
                    spec.tokens = person.tokens.clone();
                    if let Some(lang) = &person.lang {
                        spec.lang = lang.clone();
                    }
                }
                let sample = one(&mut farm, spec, format!("{run_id}-{i}")).await?;
                if let Ok(mut s) = samples.lock() {
                    s.push(sample);
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("a benchmark client panicked")??;
    }
    let wall = started.elapsed();
    let samples = std::mem::take(&mut *samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((samples, wall))
}

/// Runs the benchmark and prints (and optionally writes) its report.
pub fn run(args: &Config) -> Result<()> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.recipients == Some(0) {
        bail!("--recipients must be at least 1");
    }
    if args.recipients.is_some() && args.tokens.is_some() {
        bail!("--recipients and --tokens both say whom to render: give one");
    }
    let from_file = match &args.tokens {
        Some(path) => Some(read_recipients(path)?),
        None => None,
    };
    farm::runtime()?.block_on(async move {
        let (url, key, local) = match &args.coordinator {
            Some(url) => {
                let key = args.api_key.clone().context(
                    "--coordinator needs a tenant API key: --api-key or REELFARM_API_KEY",
                )?;
                (url.clone(), key, None)
            }
            None => {
                let (local, dir) = start_local(args).await?;
                (
                    local.url.clone(),
                    local.api_key()?.to_owned(),
                    Some((local, dir)),
                )
            }
        };
        let mut farm = TenantClient::connect(&url, &key, args.tls_ca.as_deref()).await?;
        let template = ensure_template(&mut farm, &args.template).await?;
        // The warm-up renders the first recipient of the file, or the template's first sample
        // recipient in the run's language.
        let (lang, tokens) = match from_file.as_ref().and_then(|f| f.first()) {
            Some(first) => (
                first.lang.clone().unwrap_or_else(|| args.lang.clone()),
                first.tokens.clone(),
            ),
            None => (args.lang.clone(), tokens_for(&args.template, &args.lang)),
        };
        let spec = v1::RenderSpec {
            template,
            lang,
            tokens,
            preset: v1::Preset::from(args.preset) as i32,
            lane: v1::Lane::Realtime as i32,
            ..Default::default()
        };
        let people = match (&from_file, args.recipients) {
            (Some(file), _) => file.clone(),
            (None, Some(n)) => draw_recipients(n)
                .into_iter()
                .map(|tokens| Recipient { lang: None, tokens })
                .collect(),
            (None, None) => Vec::new(),
        };
        let n_file = from_file.as_ref().map(Vec::len);
        let people = Arc::new(people);
        let run_id = format!("bench-{}", random_hex(6));
        // Warm-up: connections, prepared statements, caches. With --recipients, the warm-up
        // renders the first demo recipient only, so the drawn recipients' segments are not
        // cached before the measured run (token-free segments are, as on a farm in service).
        let warm = (args.jobs / 10).clamp(1, 500);
        drive(
            &farm,
            &spec,
            &Arc::new(Vec::new()),
            warm,
            args.concurrency,
            &format!("{run_id}-warm"),
            None,
        )
        .await?;

        let bar = indicatif::ProgressBar::new(args.jobs);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "renders [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let (samples, wall) = drive(
            &farm,
            &spec,
            &people,
            args.jobs,
            args.concurrency,
            &run_id,
            Some(bar.clone()),
        )
        .await?;
        bar.finish_and_clear();
        if let Some((local, _dir)) = local {
            local.stop().await?;
        }
        report(args, &url, &spec.template, &samples, wall, n_file)
    })
}

fn report(
    args: &Config,
    url: &str,
    template: &str,
    samples: &[Sample],
    wall: Duration,
    from_file: Option<usize>,
) -> Result<()> {
    let ok = samples.iter().filter(|s| s.succeeded).count();
    let per_s = samples.len() as f64 / wall.as_secs_f64();
    let mut e2e: Vec<f64> = samples
        .iter()
        .map(|s| s.end_to_end.as_secs_f64() * 1e3)
        .collect();
    let mut queued: Vec<f64> = samples.iter().map(|s| s.queued_ms as f64).collect();
    let mut running: Vec<f64> = samples.iter().map(|s| s.running_ms as f64).collect();
    let mut submit: Vec<f64> = samples
        .iter()
        .map(|s| s.submit_rpc.as_secs_f64() * 1e3)
        .collect();
    let (e50, e95, e99, emean) = summary(&mut e2e);
    let (q50, q95, q99, qmean) = summary(&mut queued);
    let (r50, r95, r99, rmean) = summary(&mut running);
    let (s50, s95, s99, smean) = summary(&mut submit);
    let mut stages: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.stage_seconds {
            let e = stages.entry(k.clone()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    let farm = if args.coordinator.is_some() {
        url.to_owned()
    } else {
        format!(
            "local: {} store, {} no-op workers x {} slots",
            crate::store_kind(args.store.as_deref()),
            args.workers,
            args.slots
        )
    };
    let recipients = match (args.recipients, from_file, &args.tokens) {
        (_, Some(n), Some(path)) => format!("{n} from {}, in turn", path.display()),
        (Some(n), _, _) => format!(
            "{n} drawn (seed {RECIPIENT_SEED:#x}): first names from {}, products from {}, offer codes from {}",
            FIRST_NAMES.len(),
            PRODUCTS.len(),
            OFFER_CODES.len()
        ),
        _ => "1 (the first sample recipient of the language)".to_owned(),
    };
    println!("farm:        {farm}");
    println!("recipients:  {recipients}");
    println!(
        "renders:     {} ({} succeeded), concurrency {}, template {} ({}, {})",
        samples.len(),
        ok,
        args.concurrency,
        template,
        if from_file.is_some() {
            "languages of --tokens"
        } else {
            &args.lang
        },
        args.preset
    );
    println!(
        "throughput:  {per_s:.0} renders/s = {:.0} videos/min over {:.2} s",
        per_s * 60.0,
        wall.as_secs_f64()
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "p50", "p95", "p99", "mean"
    );
    for (name, (a, b, c, d)) in [
        ("submit -> finished (client)", (e50, e95, e99, emean)),
        ("  SubmitRender call (client)", (s50, s95, s99, smean)),
        ("  submit -> acquire (server)", (q50, q95, q99, qmean)),
        ("  acquire -> finished (server)", (r50, r95, r99, rmean)),
    ] {
        println!("{name:<34} {a:>9.1} {b:>9.1} {c:>9.1} {d:>9.1}");
    }
    if !stages.is_empty() {
        println!(
            "worker stages (mean s): {}",
            stages
                .iter()
                .map(|(k, (sum, n))| format!("{k} {:.3}", sum / *n as f64))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "farm": farm,
            "renders": samples.len(),
            "succeeded": ok,
            "concurrency": args.concurrency,
            "recipients": args.recipients.map(u64::from).or(from_file.map(|n| n as u64)),
            "recipients_drawn": recipients,
            "wall_s": wall.as_secs_f64(),
            "renders_per_s": per_s,
            "videos_per_min": per_s * 60.0,
            "latency_ms": {
                "end_to_end": {"p50": e50, "p95": e95, "p99": e99, "mean": emean},
                "submit_rpc": {"p50": s50, "p95": s95, "p99": s99, "mean": smean},
                "submit_to_acquire": {"p50": q50, "p95": q95, "p99": q99, "mean": qmean},
                "acquire_to_finish": {"p50": r50, "p95": r95, "p99": r99, "mean": rmean},
            },
            "stage_mean_s": stages.iter().map(|(k, (s, n))| (k.clone(), s / *n as f64)).collect::<BTreeMap<_, _>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("--json {}: cannot write", path.display()))?;
    }
    if ok < samples.len() {
        bail!(
            "{} of {} renders did not succeed",
            samples.len() - ok,
            samples.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a fresh file and reads it as a recipients file.
    fn read(text: &str) -> Result<Vec<Recipient>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("people.json");
        std::fs::write(&path, text).expect("write");
        read_recipients(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.to_string().replace(&path.display().to_string(), "FILE")
            )
        })
    }

    #[test]
    fn recipients_files_in_both_forms() {
        let people = read(
            r#"[{"lang": "hi", "tokens": {"first_name": "Priya", "n": 3}},
                {"tokens": {"first_name": "Asha"}},
                {"id": "ta-priya", "lang": "ta", "tokens": {"first_name": "Priya"}},
                {"lang": "en"}]"#,
        )
        .expect("valid");
        assert_eq!(people.len(), 4);
        assert_eq!(people[0].lang.as_deref(), Some("hi"));
        assert_eq!(people[0].tokens["n"], "3");
        assert_eq!(people[1].lang, None, "no lang: the run's");
        assert_eq!(people[2].tokens["first_name"], "Priya");
        assert!(people[3].tokens.is_empty());
        let samples = read_recipients(&crate::default_template().join("recipients.json"))
            .expect("the demo's recipients.json");
        assert!(samples.iter().all(|r| r.lang.is_some()));
    }

    #[test]
    fn bad_recipients_files_name_the_entry() {
        let err = |text: &str| read(text).expect_err("refused").to_string();
        assert_eq!(
            err(r#"{"lang": "hi"}"#),
            "--tokens FILE: expected a JSON array of recipients like [{\"lang\": \"hi\", \"tokens\": {...}}]"
        );
        assert_eq!(err("[]"), "--tokens FILE: the array holds no recipient");
        assert!(err("[{").starts_with("--tokens FILE: not valid JSON"));
        assert_eq!(
            err(r#"[{"lang": "hi"}, {"lang": "ta", "tokens": {"first_name": ["x"]}}]"#),
            "--tokens FILE: entry 1: `tokens`: token `first_name`: expected a string or number, found an array"
        );
        assert_eq!(
            err(r#"[{"lang": "hi", "token": {}}]"#),
            "--tokens FILE: entry 0: unknown field `token` (expected id, lang, tokens)"
        );
        assert_eq!(
            err(r#"[{"lang": 7}]"#),
            "--tokens FILE: entry 0: `lang` must be a language code such as \"hi\""
        );
        assert_eq!(
            err(r#"["hi"]"#),
            "--tokens FILE: entry 0: expected an object with `lang` and `tokens`"
        );
        assert!(err("").contains("not valid JSON"));
    }

    #[test]
    fn the_draw_is_fixed_and_uses_every_list() {
        let a = draw_recipients(200);
        assert_eq!(a, draw_recipients(200), "same seed, same recipients");
        assert_eq!(
            a[..10],
            draw_recipients(10)[..],
            "a prefix of a longer draw"
        );
        let values = |k: &str| {
            a.iter()
                .map(|r| r[k].clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(values("product").len(), PRODUCTS.len());
        assert_eq!(values("offer_code").len(), OFFER_CODES.len());
        assert!(values("first_name").len() > FIRST_NAMES.len() / 2);
    }
}
