//! The commands: argument checks, then calls into render-core and template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use render_core::{media, Preset, RenderRequest, Renderer};

use crate::cli::{Cli, Command, JobArgs, TemplateCommand};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render(args) => {
            let preset = parse_preset(&args.preset)?;
            let range = match (args.from, args.to) {
                (None, None) => None,
                (from, to) => Some((from.unwrap_or(0.0), to.unwrap_or(f64::INFINITY))),
            };
            let mut req = request(&args.job, preset)?;
            check_output(&args.out, "mp4")?;
            let mut renderer = Renderer::new().context("starting the renderer")?;
            if let Some((t0, t1)) = range {
                let duration = template::Bundle::load(&req.template_dir)?.manifest.duration;
                req.range = Some((t0, t1.min(duration)));
            }
            let bar = progress_bar("rendering");
            let report = renderer.render(&req, &args.out, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: {} frames ({:.2} s) at {}x{}, {:.1} MB in {:.2} s on {}",
                args.out.display(),
                report.frames,
                report.seconds,
                report.size.0,
                report.size.1,
                report.bytes as f64 / 1e6,
                report.timings.total.as_secs_f64(),
                report.adapter
            );
            let t = &report.timings;
            println!(
                "stages (ms): prepare {:.0}, text+images {:.0}, audio {:.0}, lip-sync {:.0}, decode {:.0}, gpu {:.0}, encode {:.0} (decode, gpu and encode overlap)",
                t.prepare.as_secs_f64() * 1e3,
                t.rasterize.as_secs_f64() * 1e3,
                t.audio.as_secs_f64() * 1e3,
                t.lipsync.as_secs_f64() * 1e3,
                t.decode.as_secs_f64() * 1e3,
                t.gpu.as_secs_f64() * 1e3,
                t.encode.as_secs_f64() * 1e3
            );
            Ok(())
        }
        Command::Lipsync(args) => crate::lipsync::run(args),
        Command::Still(args) => {
            let preset = parse_preset(&args.preset)?;
            let req = request(&args.job, preset)?;
            check_output(&args.out, "png")?;
            if !args.at.is_finite() || args.at < 0.0 {
                bail!("--at {}: expected a time in seconds, 0 or more", args.at);
            }
            let mut renderer = Renderer::new().context("starting the renderer")?;
            let (image, warnings) = renderer.still(&req, args.at)?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            media::save_png(&args.out, &image)?;
            println!(
                "{}: {}x{} at {} s",
                args.out.display(),
                image.width,
                image.height,
                args.at
            );
            Ok(())
        }
        Command::Template(TemplateCommand::Validate { dir }) => {
            let bundle = template::Bundle::load(&dir)?;
            let m = &bundle.manifest;
            println!(
                "{}: valid: `{}`, {}x{} @ {} fps, {} s, {} layers, tokens [{}], languages [{}]",
                dir.display(),
                m.name,
                m.width,
                m.height,
                m.fps,
                m.duration,
                m.layers.len(),
                m.tokens.keys().cloned().collect::<Vec<_>>().join(", "),
                m.languages.join(", ")
            );
            Ok(())
        }
        Command::Template(TemplateCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&template::json_schema())?
            );
            Ok(())
        }
        Command::Template(TemplateCommand::Push {
            dir,
            aliases,
            client,
        }) => crate::farm::push(dir, aliases, client),
        Command::Demo(args) if args.direct => crate::demo::run(args),
        Command::Demo(args) => crate::farmdemo::run(args),
        Command::Bench(args) => match args.command {
            Some(crate::cli::BenchCommand::Events(a)) => crate::eventbench::run(a),
            Some(cmd) => crate::bench::run(cmd),
            None => crate::loadbench::run(args.farm),
        },
        Command::Serve(args) => crate::farm::serve(args),
        Command::Work(args) => crate::farm::work(args),
        Command::Tenant(cmd) => crate::farm::tenant(cmd),
        Command::Submit(args) => crate::farm::submit(args),
        Command::Campaign(cmd) => crate::campaign::run(cmd),
        Command::Event { file, client } => crate::campaign::send_events(file, client),
    }
}

pub fn parse_preset(s: &str) -> Result<Preset> {
    s.parse::<Preset>()
        .map_err(|e| anyhow::anyhow!("--preset: {e}"))
}

fn check_output(path: &Path, ext: &str) -> Result<()> {
    let actual = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !actual.eq_ignore_ascii_case(ext) {
        bail!("--out {}: expected a .{ext} file name", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!(
                "--out {}: folder {} does not exist",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Reads a tokens file: a JSON object of token name to a string or number.
pub fn read_tokens(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--tokens {}: cannot read", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--tokens {}: not valid JSON", path.display()))?;
    tokens_from_json(&value).with_context(|| format!("--tokens {}", path.display()))
}

/// Token values from a JSON object of name to string or number.
pub fn tokens_from_json(value: &serde_json::Value) -> Result<BTreeMap<String, String>> {
    let Some(map) = value.as_object() else {
        bail!("expected a JSON object of token name to value, like {{\"first_name\": \"Priya\"}}");
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => continue,
            other => bail!(
                "token `{k}`: expected a string or number, found {}",
                json_kind(other)
            ),
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn request(job: &JobArgs, preset: Preset) -> Result<RenderRequest> {
    if !job.template.join("template.json").is_file() {
        bail!(
            "--template {}: no template.json in that folder",
            job.template.display()
        );
    }
    let tokens = match &job.tokens {
        Some(p) => read_tokens(p)?,
        None => BTreeMap::new(),
    };
    if let Some(v) = &job.voice {
        if !v.is_file() {
            bail!("--voice {}: file not found", v.display());
        }
    }
    Ok(RenderRequest {
        template_dir: job.template.clone(),
        lang: job.lang.clone(),
        tokens,
        voice: job.voice.clone(),
        preset,
        range: None,
        mouth_track: None,
    })
}

pub fn progress_bar(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} frames, {per_sec}, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    bar
}

/// The bundled demo template, found from the working directory or the source tree.
pub fn default_template() -> PathBuf {
    let rel = Path::new("assets/templates/order-delivered");
    if rel.join("template.json").is_file() {
        return rel.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}
