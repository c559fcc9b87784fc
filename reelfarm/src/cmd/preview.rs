//! `reelfarm preview DIR --out sheet.png`: the studio's contact sheet without a browser. The
//! same rows, cells and labels as the studio's grid ([`super::studio::grid`]), composed into
//! one PNG: a column per time, a row per language and sample recipient or worst case.

use anyhow::{bail, Context, Result};
use render_core::text::TextEngine;
use render_core::{media, Renderer};
use template::Bundle;

use super::check_output;
use super::studio::grid::{self, Cell};
use crate::cli::PreviewArgs;

/// `reelfarm preview`.
pub fn run(args: PreviewArgs) -> Result<()> {
    check_output(&args.out, "png")?;
    if !(16..=grid::MAX_WIDTH).contains(&args.cell_width) {
        bail!(
            "--cell-width {}: expected 16 to {} pixels",
            args.cell_width,
            grid::MAX_WIDTH
        );
    }
    let bundle = Bundle::load(&args.dir)
        .with_context(|| format!("{}: the template cannot be loaded", args.dir.display()))?;
    let manifest = &bundle.manifest;
    let samples = template::recipients(&args.dir)?;
    let times = match &args.times {
        Some(t) => grid::parse_times(t, manifest.duration).context("--times")?,
        None => grid::default_times(manifest.duration),
    };
    let langs = match &args.langs {
        Some(l) => grid::parse_langs(l, manifest).context("--langs")?,
        None => manifest.languages.clone(),
    };
    let worst = |lang: &str| grid::worst_cases(manifest, lang);
    let rows = grid::rows(
        &samples,
        &langs,
        (!args.no_worst_cases).then_some(&worst as _),
    );
    if rows.is_empty() {
        bail!(
            "{}: no sample recipients in {}",
            args.dir.display(),
            template::RECIPIENTS_FILE
        );
    }
    let mut renderer = Renderer::new().context("starting the renderer")?;
    let cell_h = ((u64::from(manifest.height) * u64::from(args.cell_width)
        + u64::from(manifest.width) / 2)
        / u64::from(manifest.width))
    .max(1) as u32;
    let mut cells = Vec::with_capacity(rows.len() * times.len());
    let mut failed = 0;
    for row in &rows {
        for &t in &times {
            let image = grid::frame(
                &mut renderer,
                &args.dir,
                &row.lang,
                &row.tokens,
                t,
                args.cell_width,
            )
            .map_err(|e| format!("{e:#}"));
            if let Err(e) = &image {
                failed += 1;
                eprintln!("{}: {e}", row.label(t));
            }
            cells.push(Cell {
                image,
                label: row.label(t),
                short: row.short_label(t),
            });
        }
    }
    let mut text = TextEngine::new();
    let sheet = grid::compose(&cells, times.len(), args.cell_width, cell_h, &mut text)?;
    media::save_png(&args.out, &sheet)?;
    println!(
        "{}: {}x{}, {} rows x {} times ({} languages){}",
        args.out.display(),
        sheet.width,
        sheet.height,
        rows.len(),
        times.len(),
        langs.len(),
        if failed > 0 {
            format!(", {failed} cells failed")
        } else {
            String::new()
        }
    );
    if failed > 0 {
        bail!("{failed} of {} cells could not be rendered", cells.len());
    }
    Ok(())
}
