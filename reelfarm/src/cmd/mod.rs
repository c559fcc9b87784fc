//! The commands, one file each: every command turns its arguments into one library config and
//! makes one call. Here: the argument checks and helpers they share.

use std::collections::BTreeMap;
use std::path::Path;

use ::template::Preset;
use anyhow::{bail, Context, Result};
pub use benches::{default_template, progress_bar};
use proto::v1;
use render_core::RenderRequest;

use crate::cli::{ClientArgs, JobArgs};

pub mod bench;
pub mod campaign;
pub mod demo;
pub mod farmdemo;
pub mod lipsync;
mod mouthsheet;
pub mod preview;
pub mod remote;
pub mod render;
pub mod serve;
pub mod studio;
pub mod submit;
pub mod template;

/// `--preset`.
pub fn parse_preset(s: &str) -> Result<Preset> {
    s.parse::<Preset>()
        .map_err(|e| anyhow::anyhow!("--preset: {e}"))
}

pub(crate) fn check_output(path: &Path, ext: &str) -> Result<()> {
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
    ::template::tokens_from_json(&value).with_context(|| format!("--tokens {}", path.display()))
}

/// `--from` and `--to` (each optional) as a range inside a video of `duration` seconds, or an
/// error that says which end is wrong.
pub(crate) fn time_range(from: Option<f64>, to: Option<f64>, duration: f64) -> Result<(f64, f64)> {
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

pub(crate) fn request(job: &JobArgs, preset: Preset) -> Result<RenderRequest> {
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

/// A tenant's client of the farm `args` names.
pub async fn connect(args: &ClientArgs) -> Result<farm::TenantClient> {
    let key = args.api_key.as_deref().context(
        "no API key: pass --api-key or set REELFARM_API_KEY (create one with `reelfarm tenant create NAME`)",
    )?;
    farm::TenantClient::connect(&args.coordinator, key, args.tls_ca.as_deref()).await
}

/// `--preset` as the wire names it.
pub fn parse_preset_proto(s: &str) -> Result<v1::Preset> {
    parse_preset(s).map(v1::Preset::from)
}

/// `--lane`.
pub fn parse_lane(s: &str) -> Result<v1::Lane> {
    match s {
        "realtime" => Ok(v1::Lane::Realtime),
        "bulk" => Ok(v1::Lane::Bulk),
        other => bail!("--lane {other}: expected realtime or bulk"),
    }
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
