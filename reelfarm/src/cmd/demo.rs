//! `reelfarm demo`: the demo template rendered for several recipients, with timings.

use anyhow::{Context, Result};
use render_core::{media, RenderReport, RenderRequest, Renderer};

use template::recipients;

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
        let req = RenderRequest {
            template_dir: dir.clone(),
            lang: person.lang.clone(),
            tokens: person.tokens.clone(),
            voice: None,
            preset,
            range: None,
            mouth_track: None,
        };
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
        let req = RenderRequest {
            template_dir: dir.clone(),
            lang: person.lang.clone(),
            tokens: person.tokens.clone(),
            voice: None,
            preset,
            range: None,
            mouth_track: None,
        };
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
