//! `reelfarm render --template DIR ...` and `reelfarm still`: one recipient on this machine,
//! no farm (the farm subcommands of `render` are in `remote.rs`).

use std::ops::ControlFlow;

use anyhow::{bail, Context, Result};
use render_core::segments::{EncoderPool, SegmentCache};
use render_core::{media, Renderer, SegmentReport, SmartRender, StreamOutput, PLAYLIST};

use super::{check_output, parse_preset, progress_bar, request, time_range};
use crate::cli::{LocalRenderArgs, StillArgs};

/// `reelfarm render --template DIR ...`: one recipient's video on this machine.
pub fn render(args: LocalRenderArgs) -> Result<()> {
    let preset = parse_preset(&args.preset)?;
    let mut req = request(&args.job(), preset)?;
    check_output(&args.out, "mp4")?;
    if args.from.is_some() || args.to.is_some() {
        let duration = template::Bundle::load(&req.template_dir)?.manifest.duration;
        req.range = Some(time_range(args.from, args.to, duration)?);
    }
    let mut renderer = Renderer::new().context("starting the renderer")?;
    let cache = match &args.cache {
        Some(dir) => {
            let limit = parse_size(&args.cache_limit)
                .with_context(|| format!("--cache-limit {}", args.cache_limit))?;
            Some(
                SegmentCache::open(dir, limit)
                    .with_context(|| format!("--cache {}: cannot open", dir.display()))?,
            )
        }
        None => None,
    };
    if let Some(dir) = &args.stream {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--stream {}: cannot create", dir.display()))?;
    }
    let pool = match args.encoders {
        Some(0) => bail!("--encoders 0: at least 1"),
        Some(n) => EncoderPool::new(n),
        None => EncoderPool::new(EncoderPool::default_size()),
    };
    let bar = progress_bar("rendering");
    let mut progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = if args.one_encoder {
        renderer.render(&req, &args.out, &mut progress)?
    } else {
        let published = |_: &str, _: &std::path::Path| {};
        let smart = SmartRender {
            cache: cache.as_ref(),
            pool: &pool,
            stream: args.stream.as_deref().map(|dir| StreamOutput {
                dir,
                published: &published,
            }),
        };
        renderer.render_smart(&req, &args.out, smart, &mut |done, total| {
            progress(done, total);
            ControlFlow::Continue(())
        })?
    };
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
    if let Some(seg) = &report.segments {
        let fps = report.frames as f64 / report.seconds.max(1e-9);
        for line in segment_lines(seg, fps) {
            println!("{line}");
        }
        if let (Some(t), Some(dir)) = (seg.first_playable, &args.stream) {
            println!(
                "stream: first playable segment after {:.2} s: {}",
                t.as_secs_f64(),
                dir.join(PLAYLIST).display()
            );
        }
    }
    if let Some(cache) = &cache {
        println!("{}", cache_line(cache));
    }
    Ok(())
}

/// A size in bytes: a whole number, or a number with KB, MB, GB (powers of 1000) or KiB, MiB,
/// GiB (powers of 1024); `B` and spaces are allowed.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("expected a size such as 2GiB, 500MB or 1000000"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => bail!("unknown unit `{other}`: use KB, MB, GB, KiB, MiB or GiB"),
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        bail!("expected a size of at least 1 byte");
    }
    Ok(bytes as u64)
}

/// A smart render's segments as lines: the count, then runs of neighbouring segments with the
/// same tokens and the same source (cache or rendered), e.g. `  0–8 s  first_name  rendered`.
pub fn segment_lines(seg: &SegmentReport, fps: f64) -> Vec<String> {
    let mut lines = vec![format!(
        "segments: {} ({} cached, {} rendered) on {} encoder{}",
        seg.total,
        seg.cached,
        seg.total - seg.cached,
        seg.encoders,
        if seg.encoders == 1 { "" } else { "s" }
    )];
    let mut i = 0;
    while i < seg.segments.len() {
        let (first, tokens, cached) = &seg.segments[i];
        let mut j = i + 1;
        while j < seg.segments.len() && seg.segments[j].1 == *tokens && seg.segments[j].2 == *cached
        {
            j += 1;
        }
        let end = seg.segments[j - 1].0.end;
        let names = if tokens.is_empty() {
            "no token".to_owned()
        } else {
            tokens.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let span = format!(
            "{}–{} s",
            secs_label(first.start as f64 / fps),
            secs_label(end as f64 / fps)
        );
        lines.push(format!(
            "  {span:<12} {names:<24} {} segment{} {}",
            j - i,
            if j - i == 1 { "" } else { "s" },
            if *cached { "cached" } else { "rendered" }
        ));
        i = j;
    }
    lines
}

/// Seconds without trailing zeros: `8`, `7.5`.
fn secs_label(s: f64) -> String {
    let text = format!("{s:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A segment cache's counters in one line.
pub fn cache_line(cache: &SegmentCache) -> String {
    let s = cache.stats();
    let mb = |b: u64| b as f64 / 1e6;
    format!(
        "cache {}: {} hits ({} local, {} shared), {} misses; read {:.1} MB, wrote {:.1} MB; holds {} segments, {:.1} of {:.0} MB",
        cache.dir().display(),
        s.local_hits + s.shared_hits,
        s.local_hits,
        s.shared_hits,
        s.misses,
        mb(s.bytes_read),
        mb(s.bytes_written),
        s.entries,
        mb(s.bytes_stored),
        mb(cache.limit())
    )
}

/// `reelfarm still`: one frame as a PNG.
pub fn still(args: StillArgs) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").expect("GiB"), 2 << 30);
        assert_eq!(parse_size("500 MB").expect("MB"), 500_000_000);
        assert_eq!(parse_size("1.5kib").expect("KiB"), 1536);
        assert_eq!(parse_size("4096").expect("bytes"), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2TB").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn segment_runs() {
        use std::collections::BTreeSet;
        let t = |names: &[&str]| -> BTreeSet<String> {
            names.iter().map(|s| (*s).to_owned()).collect()
        };
        let seg = SegmentReport {
            total: 4,
            cached: 2,
            encoders: 1,
            first_playable: None,
            segments: vec![
                (0..30, t(&["first_name"]), false),
                (30..60, t(&[]), true),
                (60..90, t(&[]), true),
                (90..105, t(&["product"]), false),
            ],
        };
        let lines = segment_lines(&seg, 30.0);
        assert_eq!(lines[0], "segments: 4 (2 cached, 2 rendered) on 1 encoder");
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[2].contains("1–3 s") && lines[2].contains("no token"));
        assert!(lines[2].ends_with("2 segments cached"), "{}", lines[2]);
        assert!(lines[3].contains("3–3.5 s") && lines[3].contains("product"));
    }
}
