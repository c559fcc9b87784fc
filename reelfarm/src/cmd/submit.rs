//! `reelfarm submit`: one render through a farm, optionally followed to its end (its progress
//! on stderr) and downloaded.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use farm::{state_name, status_error, watch};
use proto::v1;

use super::remote::StatusLine;
use super::{connect, parse_lane, parse_preset_proto, read_tokens};
use crate::cli::SubmitArgs;

/// `--metadata KEY=VALUE`s as a map; a key given twice is refused.
pub fn metadata(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if map.insert(key.clone(), value.clone()).is_some() {
            bail!("--metadata {key}: given twice");
        }
    }
    Ok(map)
}

/// Submits the render `args` describe.
pub fn run(args: SubmitArgs) -> Result<()> {
    farm::runtime()?.block_on(async move {
        let tokens = match &args.tokens {
            Some(p) => read_tokens(p)?,
            None => Default::default(),
        };
        let metadata = metadata(&args.metadata)?;
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
            metadata,
            callback_url: args.callback_url.clone().unwrap_or_default(),
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
        let mut status = StatusLine::stderr();
        let done = watch(&mut farm, &render.id, |r| status.update(r)).await;
        status.finish();
        let done = done?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_become_a_map() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let m = metadata(&[pair("order", "4711"), pair("campaign", "a=b")]).expect("valid");
        assert_eq!(m["order"], "4711");
        assert_eq!(m["campaign"], "a=b");
        assert_eq!(
            metadata(&[pair("order", "1"), pair("order", "2")])
                .expect_err("twice")
                .to_string(),
            "--metadata order: given twice"
        );
    }
}
