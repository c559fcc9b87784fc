//! The demo's lip-sync check: for every demo recipient, the presenter's face at an open vowel,
//! a lip closure and a rounded vowel of its greeting, side by side in one PNG, and the times
//! each was taken at.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lipsync::{Shape, Track};
use render_core::media::{self, RgbaImage};
use render_core::{Preset, RenderRequest, Renderer};

use template::Recipient;

/// Face crop around the mouth at 720p: the presenter's mouth is centred at (1000, 480) once it
/// has slid in (t ≥ 0.6 s).
const CROP: (u32, u32, u32, u32) = (900, 400, 200, 140);

/// What the sheet shows per recipient, left to right.
const COLUMNS: [(&str, &[Shape]); 3] = [
    ("open vowel", &[Shape::D, Shape::C]),
    ("lip closure", &[Shape::A]),
    ("rounded", &[Shape::E, Shape::F]),
];

/// The first frame time (s) at least `settle` into a cue of one of `shapes`, if any.
fn frame_in(
    track: &Track,
    shapes: &[Shape],
    voice_start: f64,
    fps: f64,
    settle: f64,
) -> Option<(f64, Shape)> {
    track
        .cues
        .iter()
        .filter(|c| shapes.contains(&c.shape))
        .find_map(|c| {
            let t = ((voice_start + f64::from(c.start_ms) / 1000.0 + settle) * fps).ceil() / fps;
            (t - voice_start < f64::from(c.end_ms) / 1000.0 - 0.005).then_some((t, c.shape))
        })
}

/// Writes `out/lipsync-sheet.png` and returns its path with one line per recipient.
pub fn write(
    renderer: &mut Renderer,
    dir: &Path,
    people: &[Recipient],
    out: &Path,
) -> Result<(PathBuf, Vec<String>)> {
    let bundle = template::Bundle::load(dir)?;
    let Some(voice) = bundle.manifest.audio.voice.as_ref() else {
        anyhow::bail!("the template has no voice slot");
    };
    let fps = f64::from(bundle.manifest.fps);
    let (cx, cy, cw, ch) = CROP;
    let mut sheet = RgbaImage {
        width: cw * COLUMNS.len() as u32,
        height: ch * people.len() as u32,
        // Opaque dark grey where a language has no such shape.
        pixels: [32u8, 32, 32, 255]
            .repeat((cw * COLUMNS.len() as u32 * ch * people.len() as u32) as usize),
    };
    let mut lines = Vec::new();
    for (row, person) in people.iter().enumerate() {
        let req = RenderRequest {
            template_dir: dir.to_path_buf(),
            lang: person.lang.clone(),
            tokens: person.tokens.clone(),
            voice: None,
            preset: Preset::P720,
            range: None,
            mouth_track: None,
        };
        let track = renderer
            .mouth_track(&req)
            .with_context(|| format!("lip-sync of recipient `{}`", person.id))?
            .context("the template has no presenter")?;
        let mut line = format!("{:<14} {:<3}", person.id, person.lang);
        for (col, (label, shapes)) in COLUMNS.iter().enumerate() {
            let Some((at, shape)) = frame_in(&track, shapes, voice.start, fps, 0.035) else {
                line += &format!("  {label}: none");
                continue;
            };
            let (image, _) = renderer.still(&req, at)?;
            for y in 0..ch {
                let src = (((cy + y) * image.width + cx) * 4) as usize;
                let dst = (((row as u32 * ch + y) * sheet.width + col as u32 * cw) * 4) as usize;
                sheet.pixels[dst..dst + (cw * 4) as usize]
                    .copy_from_slice(&image.pixels[src..src + (cw * 4) as usize]);
            }
            line += &format!("  {label} {shape} at {at:.2} s");
        }
        lines.push(line);
    }
    let path = out.join("lipsync-sheet.png");
    media::save_png(&path, &sheet)?;
    Ok((path, lines))
}
