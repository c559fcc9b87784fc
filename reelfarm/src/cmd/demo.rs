//! `reelfarm demo`: the demo template rendered for several recipients, with timings.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, Result};
use render_core::segments::{EncoderPool, SegmentCache};
use render_core::{media, RenderReport, RenderRequest, Renderer, SmartRender, StreamOutput};

use template::{recipients, Bundle, Preset, Recipient};

use super::{default_template, parse_preset, progress_bar};
use crate::cli::DemoArgs;

fn ms(d: std::time::Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

pub fn run(args: DemoArgs) -> Result<()> {
    let dir = args.template.clone().unwrap_or_else(default_template);
    let preset = parse_preset(&args.preset)?;
    let mut people = recipients(&dir)?;
    if !args.all {
        people.truncate(3);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stills = args.out.join("stills");
    std::fs::create_dir_all(&stills)
        .with_context(|| format!("cannot create {}", stills.display()))?;

    let mut renderer = Renderer::new().context("starting the renderer")?;
    println!("GPU adapter: {}", renderer.adapter());
    let mut rows: Vec<(String, String, RenderReport)> = Vec::new();
    for person in &people {
        let out = args.out.join(format!("{}.mp4", person.id));
        let req = request(&dir, person, preset);
        let bar = progress_bar("rendering");
        bar.set_message(format!("{} ({})", person.id, person.lang));
        let report = renderer
            .render(&req, &out, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .with_context(|| format!("rendering recipient `{}`", person.id))?;
        bar.finish_and_clear();
        for w in &report.warnings {
            eprintln!("warning: {}: {w}", person.id);
        }
        println!("wrote {}", out.display());
        rows.push((person.id.clone(), person.lang.clone(), report));
    }

    // A still of the greeting in every demo language, for checking the shaping by eye.
    let all = recipients(&dir)?;
    for person in &all {
        let req = request(&dir, person, preset);
        let (image, _) = renderer.still(&req, 2.0)?;
        let path = stills.join(format!("{}-greeting.png", person.id));
        media::save_png(&path, &image)?;
    }
    println!(
        "wrote {} greeting stills to {}",
        all.len(),
        stills.display()
    );
    let (sheet, lines) = super::mouthsheet::write(&mut renderer, &dir, &all, &args.out)?;
    println!("lip-sync check, every language: {}", sheet.display());
    for l in lines {
        println!("  {l}");
    }

    println!();
    println!(
        "{:<14} {:<4} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "recipient",
        "lang",
        "frames",
        "prep ms",
        "text ms",
        "audio ms",
        "decode",
        "gpu ms",
        "encode",
        "total ms",
        "fps"
    );
    for (id, lang, r) in &rows {
        let t = &r.timings;
        println!(
            "{:<14} {:<4} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7.1}",
            id,
            lang,
            r.frames,
            ms(t.prepare),
            ms(t.rasterize),
            ms(t.audio),
            ms(t.decode),
            ms(t.gpu),
            ms(t.encode),
            ms(t.total),
            r.frames as f64 / t.total.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "decode, gpu and encode run on three overlapping threads; their sum exceeds the total."
    );
    Ok(())
}

/// The segment cache at work: the first demo recipient and one like them with another name
/// (same language, product and offer code), rendered one after the other with the smart
/// render into one fresh cache, each as a live stream too. The second takes every segment
/// that does not show the name from the cache. Prints both times, the second's cache hits
/// and each render's time to its first playable segment.
pub fn segment_cache(dir: &Path, preset: Preset, out: &Path) -> Result<()> {
    let bundle = Bundle::load(dir)?;
    let samples = recipients(dir)?;
    let first = samples
        .first()
        .context("the demo template has no recipients")?
        .clone();
    let second = benches::w1::other_recipient(
        &bundle,
        &samples,
        &first,
        &["product", "offer_code"],
        &format!("{}-2", first.id),
    )?;
    let root = out.join("segment-cache");
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let cache = SegmentCache::open(&root.join("cache"), 1 << 30)
        .with_context(|| format!("cannot create {}", root.display()))?;
    let pool = EncoderPool::new(EncoderPool::default_size());
    let mut renderer = Renderer::new().context("starting the renderer")?;
    println!();
    println!(
        "segment cache: {} and {} ({}), one after the other with the smart render ({} encoders) and one cache:",
        first.id,
        second.id,
        first.lang,
        pool.size()
    );
    let mut times = Vec::new();
    for person in [&first, &second] {
        let before = cache.stats();
        let report = smart_render(&mut renderer, dir, person, preset, &root, &cache, &pool)?;
        let after = cache.stats();
        let seg = report
            .segments
            .as_ref()
            .context("a smart render without its segment report")?;
        let hits =
            (after.local_hits + after.shared_hits) - (before.local_hits + before.shared_hits);
        let names: Vec<String> = person
            .tokens
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "  {:<14} {:>6.1} s, {:>2} of {} segments from the cache ({hits} hits), first playable after {} ({})",
            person.id,
            report.timings.total.as_secs_f64(),
            seg.cached,
            seg.total,
            seg.first_playable
                .map_or("-".to_owned(), |t| format!("{:.1} s", t.as_secs_f64())),
            names.join(", ")
        );
        times.push(report.timings.total.as_secs_f64());
    }
    if let [a, b] = times[..] {
        println!(
            "  the second render took {:.0}% of the first's time; videos and live streams (index.m3u8) in {}",
            100.0 * b / a.max(1e-9),
            root.display()
        );
    }
    Ok(())
}

/// The render of `person` from the template in `dir`.
fn request(dir: &Path, person: &Recipient, preset: Preset) -> RenderRequest {
    RenderRequest {
        template_dir: dir.to_owned(),
        lang: person.lang.clone(),
        tokens: person.tokens.clone(),
        voice: None,
        preset,
        range: None,
        mouth_track: None,
    }
}

/// One smart render of `person` into `root`/`id`.mp4, streamed into `root`/`id`/.
fn smart_render(
    renderer: &mut Renderer,
    dir: &Path,
    person: &Recipient,
    preset: Preset,
    root: &Path,
    cache: &SegmentCache,
    pool: &EncoderPool,
) -> Result<RenderReport> {
    let req = request(dir, person, preset);
    let stream = root.join(&person.id);
    std::fs::create_dir_all(&stream)
        .with_context(|| format!("cannot create {}", stream.display()))?;
    let video = root.join(format!("{}.mp4", person.id));
    let published = |_: &str, _: &Path| {};
    let bar = progress_bar("smart render");
    bar.set_message(format!("{} ({})", person.id, person.lang));
    let report = renderer
        .render_smart(
            &req,
            &video,
            SmartRender {
                cache: Some(cache),
                pool,
                stream: Some(StreamOutput {
                    dir: &stream,
                    published: &published,
                }),
            },
            &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
                ControlFlow::Continue(())
            },
        )
        .with_context(|| format!("smart render of recipient `{}`", person.id))?;
    bar.finish_and_clear();
    Ok(report)
}
