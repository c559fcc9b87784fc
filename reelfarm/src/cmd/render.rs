//! `reelfarm render` and `reelfarm still`: one recipient on this machine, no farm.

use anyhow::{bail, Context, Result};
use render_core::{media, Renderer};

use super::{check_output, parse_preset, progress_bar, request, time_range};
use crate::cli::{RenderArgs, StillArgs};

/// `reelfarm render`: one recipient's video on this machine.
pub fn render(args: RenderArgs) -> Result<()> {
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
