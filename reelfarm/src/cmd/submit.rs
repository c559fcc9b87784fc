//! `reelfarm submit`: one render through a farm, optionally followed to its end and downloaded.

use anyhow::{bail, Context, Result};
use farm::{state_name, status_error, watch};
use proto::v1;

use super::{connect, parse_lane, parse_preset_proto, read_tokens};
use crate::cli::SubmitArgs;

/// Submits the render `args` describe.
pub fn run(args: SubmitArgs) -> Result<()> {
    farm::runtime()?.block_on(async move {
        let tokens = match &args.tokens {
            Some(p) => read_tokens(p)?,
            None => Default::default(),
        };
        let mut farm = connect(&args.client).await?;
        let key = args
            .key
            .clone()
            .unwrap_or_else(|| format!("cli-{}", farm::secrets::random_hex(12)));
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
