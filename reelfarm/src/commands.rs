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
            let mut req = request(&args.job, preset)?;
            check_output(&args.out, "mp4")?;
            if args.from.is_some() || args.to.is_some() {
                let duration = template::Bundle::load(&req.template_dir)?.manifest.duration;
                req.range = Some(time_range(args.from, args.to, duration)?);
            }
            let mut renderer = Renderer::new().context("starting the renderer")?;
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

/// `--from` and `--to` (each optional) as a range inside a video of `duration` seconds, or an
/// error that says which end is wrong.
fn time_range(from: Option<f64>, to: Option<f64>, duration: f64) -> Result<(f64, f64)> {
    let t0 = from.unwrap_or(0.0);
    let t1 = to.unwrap_or(duration);
    for (flag, t) in [("--from", from), ("--to", to)] {
        match t {
            Some(t) if !t.is_finite() => bail!("{flag} {t}: not a time in seconds"),
            Some(t) if t < 0.0 => bail!("{flag} {t}: times start at 0"),
            Some(t) if t > duration => {
                bail!("{flag} {t}: the template is {duration} s long; times go up to {duration}")
            }
            _ => {}
        }
    }
    if t0 >= t1 {
        if from.is_some() && to.is_some() {
            bail!("--from {t0} is not before --to {t1}");
        }
        bail!("--from {t0} is at the end of the {duration} s template: nothing to render");
    }
    Ok((t0, t1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges() {
        assert_eq!(time_range(None, None, 1.0).expect("whole"), (0.0, 1.0));
        assert_eq!(time_range(Some(0.2), None, 1.0).expect("tail"), (0.2, 1.0));
        assert_eq!(time_range(None, Some(0.5), 1.0).expect("head"), (0.0, 0.5));
        let err = |from, to| time_range(from, to, 1.0).expect_err("refused").to_string();
        assert_eq!(
            err(None, Some(50.0)),
            "--to 50: the template is 1 s long; times go up to 1"
        );
        assert_eq!(err(Some(-3.0), None), "--from -3: times start at 0");
        assert_eq!(
            err(Some(0.8), Some(0.2)),
            "--from 0.8 is not before --to 0.2"
        );
        assert_eq!(
            err(Some(1.0), None),
            "--from 1 is at the end of the 1 s template: nothing to render"
        );
        assert_eq!(
            err(Some(f64::NAN), None),
            "--from NaN: not a time in seconds"
        );
    }
}
