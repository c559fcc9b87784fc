//! The contact sheet: every chosen language × its sample recipients (and generated worst-case
//! values) × chosen times, each cell a small frame from the real renderer. The studio's grid
//! serves these cells one by one; `reelfarm preview` composes them into one labelled PNG.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use render_core::check::WorstCase;
use render_core::media::RgbaImage;
use render_core::text::{TextEngine, TextStyle};
use render_core::{RenderRequest, Renderer};
use template::{Align, Manifest, Preset, Recipient};

/// Width of a frame in the studio's player, in pixels (its height keeps the template's aspect).
pub const FRAME_WIDTH: u32 = 640;
/// Width of a contact-sheet cell, in pixels.
pub const CELL_WIDTH: u32 = 320;
/// Widest frame anyone may ask for: the preset frames are rendered at before downscaling.
pub const MAX_WIDTH: u32 = 1280;
/// Height of the label strip under each contact-sheet cell, in pixels.
pub const LABEL_HEIGHT: u32 = 24;

/// What a row of the sheet renders: a sample recipient or a generated worst case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A sample recipient of `recipients.json`, by id.
    Sample(String),
    /// A generated worst-case value set, by its class (e.g. `longest`).
    WorstCase(String),
}

/// One row of the sheet: a language and the token values rendered in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Language code.
    pub lang: String,
    /// Where the tokens come from.
    pub kind: RowKind,
    /// Token values.
    pub tokens: BTreeMap<String, String>,
}

impl Row {
    /// The key the studio's URLs name the row's values by: the sample id, or `worst:CLASS`.
    pub fn key(&self) -> String {
        match &self.kind {
            RowKind::Sample(id) => id.clone(),
            RowKind::WorstCase(class) => format!("worst:{class}"),
        }
    }

    /// What the label says about the values: `sample ID` or `worst case CLASS`.
    pub fn describe(&self) -> String {
        match &self.kind {
            RowKind::Sample(id) => format!("sample {id}"),
            RowKind::WorstCase(class) => format!("worst case {class}"),
        }
    }

    /// The label of this row's cell at time `t`: language, values and time.
    pub fn label(&self, t: f64) -> String {
        format!("{} · {} · {} s", self.lang, self.describe(), fmt_time(t))
    }

    /// A short label: language, sample id or `worst case`, time.
    pub fn short_label(&self, t: f64) -> String {
        let what = match &self.kind {
            RowKind::Sample(id) => id.as_str(),
            RowKind::WorstCase(_) => "worst case",
        };
        format!("{} · {what} · {} s", self.lang, fmt_time(t))
    }
}

/// A time as a short decimal (`5`, `2.5`, `0.033`).
pub fn fmt_time(t: f64) -> String {
    let s = format!("{t:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Default times of the sheet: a sixth, a half and five sixths of the way through, to the
/// tenth of a second.
pub fn default_times(duration: f64) -> Vec<f64> {
    [1.0 / 6.0, 0.5, 5.0 / 6.0]
        .iter()
        .map(|f| (duration * f * 10.0).floor() / 10.0)
        .collect()
}

/// Parses `1,5,12` into times within the template's `duration`, naming the bad entry.
pub fn parse_times(s: &str, duration: f64) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let t: f64 = part
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite())
            .with_context(|| format!("`{part}` is not a time in seconds"))?;
        if !(0.0..duration).contains(&t) {
            bail!("{part} s is outside the template's 0..{duration} s");
        }
        times.push(t);
    }
    if times.is_empty() {
        bail!("no times given");
    }
    Ok(times)
}

/// Parses `en,hi,ta` into languages of the template, naming one it does not have.
pub fn parse_langs(s: &str, manifest: &Manifest) -> Result<Vec<String>> {
    let mut langs = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !manifest.languages.iter().any(|l| l == part) {
            bail!(
                "`{part}` is not one of the template's languages ({})",
                manifest.languages.join(", ")
            );
        }
        langs.push(part.to_owned());
    }
    if langs.is_empty() {
        bail!("no languages given");
    }
    Ok(langs)
}

/// The worst-case value sets of `lang` (the longest allowed value in each script in its widest
/// glyphs, a one-character value, the fallback), as render-core's deep checks generate them.
pub fn worst_cases(manifest: &Manifest, lang: &str) -> Vec<WorstCase> {
    render_core::check::worst_cases(manifest, lang)
}

/// A language's worst cases, as the caller computes (or caches) them.
pub type WorstFn<'a> = &'a dyn Fn(&str) -> Vec<WorstCase>;

/// The rows of the sheet for `langs`: per language, its sample recipients (or, when it has
/// none, the first sample's values rendered in that language), then, with `worst` (a
/// language's worst cases), its worst cases.
pub fn rows(samples: &[Recipient], langs: &[String], worst: Option<WorstFn<'_>>) -> Vec<Row> {
    let mut rows = Vec::new();
    for lang in langs {
        let own: Vec<&Recipient> = samples.iter().filter(|r| &r.lang == lang).collect();
        let chosen = if own.is_empty() {
            samples.iter().take(1).collect()
        } else {
            own
        };
        for r in chosen {
            rows.push(Row {
                lang: lang.clone(),
                kind: RowKind::Sample(r.id.clone()),
                tokens: r.tokens.clone(),
            });
        }
        for case in worst.map(|w| w(lang)).unwrap_or_default() {
            rows.push(Row {
                lang: lang.clone(),
                kind: RowKind::WorstCase(case.class),
                tokens: case.tokens,
            });
        }
    }
    rows
}

/// The values a row key names in `lang`: a sample id, or `worst:CLASS` among `worst` (the
/// language's worst cases).
pub fn values_for(
    samples: &[Recipient],
    worst: WorstFn<'_>,
    lang: &str,
    key: &str,
) -> Result<BTreeMap<String, String>> {
    if let Some(class) = key.strip_prefix("worst:") {
        return worst(lang)
            .into_iter()
            .find(|c| c.class == class)
            .map(|c| c.tokens)
            .with_context(|| format!("no worst case `{class}` in language {lang}"));
    }
    samples
        .iter()
        .find(|r| r.id == key)
        .map(|r| r.tokens.clone())
        .with_context(|| format!("no sample recipient `{key}` in recipients.json"))
}

/// Renders the frame at `t` of `dir` in `lang` with `tokens`, `width` pixels wide: a 720p still
/// from the real renderer, scaled down.
pub fn frame(
    renderer: &mut Renderer,
    dir: &Path,
    lang: &str,
    tokens: &BTreeMap<String, String>,
    t: f64,
    width: u32,
) -> Result<RgbaImage> {
    let req = RenderRequest {
        template_dir: dir.to_owned(),
        lang: lang.to_owned(),
        tokens: tokens.clone(),
        voice: None,
        preset: Preset::P720,
        range: None,
        mouth_track: None,
    };
    let (image, _warnings) = renderer.still(&req, t)?;
    Ok(downscale(&image, width.clamp(16, MAX_WIDTH)))
}

/// `image` scaled to `width` pixels wide (never up), keeping the aspect; alpha made opaque, as
/// frames are composited over the template's background.
pub fn downscale(image: &RgbaImage, width: u32) -> RgbaImage {
    let mut pixels = image.pixels.clone();
    for px in pixels.chunks_exact_mut(4) {
        px[3] = 255;
    }
    if width >= image.width {
        return RgbaImage {
            width: image.width,
            height: image.height,
            pixels,
        };
    }
    let height = ((u64::from(image.height) * u64::from(width) + u64::from(image.width) / 2)
        / u64::from(image.width))
    .max(1) as u32;
    let Some(buf) = image::RgbaImage::from_raw(image.width, image.height, pixels.clone()) else {
        return RgbaImage {
            width: image.width,
            height: image.height,
            pixels,
        };
    };
    let small = image::imageops::resize(&buf, width, height, image::imageops::FilterType::Triangle);
    RgbaImage {
        width,
        height,
        pixels: small.into_raw(),
    }
}

/// `image` as PNG bytes.
pub fn png(image: &RgbaImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut out,
        &image.pixels,
        image.width,
        image.height,
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )
    .context("encoding PNG")?;
    Ok(out.into_inner())
}

/// One labelled cell of a composed sheet.
#[derive(Debug)]
pub struct Cell {
    /// The frame, or why it could not be rendered (drawn as a red cell).
    pub image: Result<RgbaImage, String>,
    /// The label drawn under it.
    pub label: String,
    /// A shorter label, for a strip too narrow for `label`.
    pub short: String,
}

/// Composes `cells` (row-major, `columns` per row) into one sheet of `cell_w`x`cell_h` frames
/// with a label strip under each, drawn with the renderer's own text engine.
pub fn compose(
    cells: &[Cell],
    columns: usize,
    cell_w: u32,
    cell_h: u32,
    text: &mut TextEngine,
) -> Result<RgbaImage> {
    const GAP: u32 = 4;
    let columns = columns.max(1);
    let rows = cells.len().div_ceil(columns);
    let width = columns as u32 * (cell_w + GAP) + GAP;
    let height = rows as u32 * (cell_h + LABEL_HEIGHT + GAP) + GAP;
    let mut sheet = RgbaImage {
        width,
        height,
        pixels: [24u8, 24, 28, 255].repeat(width as usize * height as usize),
    };
    let style = TextStyle {
        font_size: 14.0,
        min_font_size: 6.0,
        align: Align::Start,
        color: [230, 230, 235, 255],
        ..TextStyle::default()
    };
    for (i, cell) in cells.iter().enumerate() {
        let x = GAP + (i % columns) as u32 * (cell_w + GAP);
        let y = GAP + (i / columns) as u32 * (cell_h + LABEL_HEIGHT + GAP);
        match &cell.image {
            Ok(img) => blit(&mut sheet, img, x, y, false),
            Err(_) => fill(&mut sheet, x, y, cell_w, cell_h, [120, 20, 30, 255]),
        }
        let label = match &cell.image {
            Ok(_) => cell.label.clone(),
            Err(e) => format!("{} — {e}", cell.label),
        };
        // A label too long for its strip even at the smallest size loses its values' part.
        let raster = match text.rasterize(&label, cell_w, LABEL_HEIGHT, &style) {
            Ok(r) => r,
            Err(_) => text
                .rasterize(&cell.short, cell_w, LABEL_HEIGHT, &style)
                .with_context(|| format!("drawing the label `{}`", cell.short))?,
        };
        let label_img = RgbaImage {
            width: raster.width,
            height: raster.height,
            pixels: raster.pixels,
        };
        blit(&mut sheet, &label_img, x, y + cell_h, true);
    }
    Ok(sheet)
}

/// Fills a rectangle of `dst` with `color`.
fn fill(dst: &mut RgbaImage, x: u32, y: u32, w: u32, h: u32, color: [u8; 4]) {
    for row in y..(y + h).min(dst.height) {
        for col in x..(x + w).min(dst.width) {
            let i = (row as usize * dst.width as usize + col as usize) * 4;
            dst.pixels[i..i + 4].copy_from_slice(&color);
        }
    }
}

/// Draws `src` onto `dst` at (`x`, `y`): copied, or composited "over" when `blend` (`src`
/// premultiplied).
fn blit(dst: &mut RgbaImage, src: &RgbaImage, x: u32, y: u32, blend: bool) {
    for row in 0..src.height {
        let dy = y + row;
        if dy >= dst.height {
            break;
        }
        for col in 0..src.width {
            let dx = x + col;
            if dx >= dst.width {
                break;
            }
            let s = (row as usize * src.width as usize + col as usize) * 4;
            let d = (dy as usize * dst.width as usize + dx as usize) * 4;
            let sp = &src.pixels[s..s + 4];
            if blend {
                let a = u32::from(sp[3]);
                for (out, &s) in dst.pixels[d..d + 3].iter_mut().zip(&sp[..3]) {
                    let under = u32::from(*out) * (255 - a) / 255;
                    *out = (u32::from(s) + under).min(255) as u8;
                }
            } else {
                dst.pixels[d..d + 3].copy_from_slice(&sp[..3]);
            }
            dst.pixels[d + 3] = 255;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_labels() {
        assert_eq!(
            parse_times("1, 5,12", 30.0).expect("times"),
            vec![1.0, 5.0, 12.0]
        );
        assert_eq!(
            parse_times("1,x", 30.0).expect_err("bad").to_string(),
            "`x` is not a time in seconds"
        );
        assert_eq!(
            parse_times("31", 30.0).expect_err("late").to_string(),
            "31 s is outside the template's 0..30 s"
        );
        assert_eq!(default_times(30.0), vec![5.0, 15.0, 25.0]);
        let row = Row {
            lang: "hi".into(),
            kind: RowKind::WorstCase("longest".into()),
            tokens: BTreeMap::new(),
        };
        assert_eq!(row.key(), "worst:longest");
        assert_eq!(row.label(2.5), "hi · worst case longest · 2.5 s");
    }

    #[test]
    fn downscale_keeps_aspect() {
        let img = RgbaImage {
            width: 8,
            height: 4,
            pixels: vec![200; 8 * 4 * 4],
        };
        let small = downscale(&img, 4);
        assert_eq!((small.width, small.height), (4, 2));
        assert!(small.pixels.chunks(4).all(|p| p == [200, 200, 200, 255]));
    }
}
