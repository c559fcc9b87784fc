//! W1's smart render rows: [`Renderer::render_smart`] of the same recipient as today's render,
//! with a segment cache that is empty, holds another recipient's segments, or holds the
//! segments of a recipient who shares everything but the name. Each row has a fresh cache
//! folder; the renders that fill it are not timed.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use render_core::segments::{EncoderPool, SegmentCache, SEGMENT_SECONDS};
use render_core::SmartRender;

use super::report::secs;
use super::*;

/// How much a row's cache may hold: far more than W1's segments, so nothing is evicted.
const CACHE_LIMIT: u64 = 4 << 30;

/// Which segments the cache of a row holds before the timed render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Warmth {
    /// None.
    Cold,
    /// Those of a recipient with another name, product and offer code: only the segments that
    /// show no token can hit.
    Template,
    /// Those of a recipient with the same product and offer code and another name: every
    /// segment that does not show the name can hit.
    Shared,
}

impl Warmth {
    const ALL: [Warmth; 3] = [Warmth::Cold, Warmth::Template, Warmth::Shared];

    pub(super) fn way(self) -> &'static str {
        match self {
            Warmth::Cold => "smart, cold (empty cache)",
            Warmth::Template => "smart, warm-template",
            Warmth::Shared => "smart, warm-shared",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Warmth::Cold => "cold",
            Warmth::Template => "warm-template",
            Warmth::Shared => "warm-shared",
        }
    }

    /// The tokens that keep the first recipient's value in the filling recipient.
    fn kept(self) -> &'static [&'static str] {
        match self {
            Warmth::Cold | Warmth::Template => &[],
            Warmth::Shared => &["product", "offer_code"],
        }
    }
}

/// One smart render row, as measured.
pub(super) struct SmartRow {
    pub(super) measured: Measured,
    /// The recipient whose render filled the cache first (untimed).
    pub(super) filled_by: Option<Recipient>,
    pub(super) cached: usize,
    pub(super) total: usize,
    pub(super) cache_hits: u64,
    /// Whether the output is byte for byte the cold row's.
    pub(super) same_as_cold: Option<bool>,
    /// The tokens of each segment, in runs: (first second, end second, tokens, cached).
    pub(super) runs: Vec<(f64, f64, String, bool)>,
}

/// Every smart row of a run.
pub(super) struct SmartRun {
    pub(super) encoders: usize,
    pub(super) rows: Vec<SmartRow>,
}

/// A recipient like `first` in `first`'s language, with a value other than `first`'s for every
/// token of the template except `kept`. Values come from the template's sample recipients
/// (`recipients.json`): those in the same language first, then, for a value written in ASCII
/// (an offer code, say), any recipient's ASCII value; else the token's fallback for the
/// language.
pub fn other_recipient(
    bundle: &Bundle,
    samples: &[Recipient],
    first: &Recipient,
    kept: &[&str],
    id: &str,
) -> Result<Recipient> {
    let lang = &first.lang;
    let fallback = |token: &str| -> Option<String> {
        let spec = bundle.manifest.tokens.get(token)?;
        spec.fallback
            .get(lang)
            .or_else(|| spec.fallback.get("*"))
            .cloned()
    };
    let value_of = |r: &Recipient, token: &str| -> Option<String> {
        r.tokens
            .get(token)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .or_else(|| fallback(token))
    };
    let mut tokens = BTreeMap::new();
    for token in bundle.manifest.tokens.keys() {
        let mine = value_of(first, token);
        if kept.contains(&token.as_str()) {
            if let Some(v) = mine {
                tokens.insert(token.clone(), v);
            }
            continue;
        }
        let ascii = mine.as_deref().is_some_and(|v| v.is_ascii());
        let same_lang = samples
            .iter()
            .filter(|r| r.lang == *lang && r.id != first.id)
            .filter_map(|r| value_of(r, token));
        let any_lang = samples
            .iter()
            .filter(|r| r.id != first.id)
            .filter_map(|r| r.tokens.get(token).cloned())
            .filter(|v| ascii && v.is_ascii());
        let value = same_lang
            .chain(any_lang)
            .chain(fallback(token))
            .find(|v| Some(v) != mine.as_ref())
            .with_context(|| {
                format!(
                    "no value of token `{token}` other than {mine:?} in the template's samples or fallbacks"
                )
            })?;
        tokens.insert(token.clone(), value);
    }
    Ok(Recipient {
        id: id.to_owned(),
        lang: lang.clone(),
        tokens,
    })
}

fn request_for(req: &RenderRequest, who: &Recipient) -> RenderRequest {
    RenderRequest {
        lang: who.lang.clone(),
        tokens: who.tokens.clone(),
        ..req.clone()
    }
}

fn smart_render(
    renderer: &mut Renderer,
    req: &RenderRequest,
    out: &Path,
    cache: &SegmentCache,
    pool: &EncoderPool,
    label: &'static str,
) -> Result<RenderReport> {
    let bar = progress_bar(label);
    let report = renderer
        .render_smart(
            req,
            out,
            SmartRender {
                cache: Some(cache),
                pool,
                stream: None,
            },
            &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
                ControlFlow::Continue(())
            },
        )
        .with_context(|| format!("{label}: smart render"))?;
    bar.finish_and_clear();
    Ok(report)
}

/// Runs the three smart rows for `req` (the first recipient's request) into `out`.
pub(super) fn run(
    renderer: &mut Renderer,
    dir: &Path,
    bundle: &Bundle,
    first: &Recipient,
    req: &RenderRequest,
    out: &Path,
) -> Result<SmartRun> {
    let samples = if dir.join("recipients.json").is_file() {
        recipients(dir)?
    } else {
        Vec::new()
    };
    let pool = EncoderPool::new(EncoderPool::default_size());
    let mut rows: Vec<SmartRow> = Vec::new();
    let mut cold_bytes: Option<Vec<u8>> = None;
    for warmth in Warmth::ALL {
        let slug = warmth.slug();
        let cache_dir = out.join(format!("smart-cache-{slug}"));
        if cache_dir.exists() {
            std::fs::remove_dir_all(&cache_dir)
                .with_context(|| format!("cannot clear {}", cache_dir.display()))?;
        }
        let cache = SegmentCache::open(&cache_dir, CACHE_LIMIT)
            .with_context(|| format!("cannot open the cache {}", cache_dir.display()))?;
        let filled_by = match warmth {
            Warmth::Cold => None,
            Warmth::Template | Warmth::Shared => {
                let other = other_recipient(
                    bundle,
                    &samples,
                    first,
                    warmth.kept(),
                    &format!("{slug}-filler"),
                )?;
                let fill = out.join(format!("smart-fill-{slug}.mp4"));
                smart_render(
                    renderer,
                    &request_for(req, &other),
                    &fill,
                    &cache,
                    &pool,
                    "filling cache",
                )?;
                let _ = std::fs::remove_file(&fill);
                Some(other)
            }
        };
        let before = cache.stats();
        let path = out.join(format!("smart-{slug}.mp4"));
        let report = smart_render(renderer, req, &path, &cache, &pool, warmth.way())?;
        let after = cache.stats();
        let seg = report
            .segments
            .clone()
            .context("a smart render without a segment report")?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let same_as_cold = match &cold_bytes {
            None => {
                cold_bytes = Some(bytes);
                None
            }
            Some(cold) => Some(*cold == bytes),
        };
        let fps = f64::from(bundle.manifest.fps);
        rows.push(SmartRow {
            measured: Measured {
                way: warmth.way(),
                wall: report.timings.total,
                frames: report.frames,
                bytes: report.bytes,
                path: Some(path),
            },
            filled_by,
            cached: seg.cached,
            total: seg.total,
            cache_hits: (after.local_hits + after.shared_hits)
                - (before.local_hits + before.shared_hits),
            same_as_cold,
            runs: token_runs(&seg, fps),
        });
    }
    Ok(SmartRun {
        encoders: pool.size(),
        rows,
    })
}

/// Neighbouring segments with the same tokens and source, merged: (from s, to s, tokens,
/// cached).
fn token_runs(seg: &render_core::SegmentReport, fps: f64) -> Vec<(f64, f64, String, bool)> {
    let mut runs: Vec<(f64, f64, String, bool)> = Vec::new();
    for (frames, tokens, cached) in &seg.segments {
        let names = tokens.iter().cloned().collect::<Vec<_>>().join("+");
        let (from, to) = (frames.start as f64 / fps, frames.end as f64 / fps);
        match runs.last_mut() {
            Some(last) if last.2 == names && last.3 == *cached => last.1 = to,
            _ => runs.push((from, to, names, *cached)),
        }
    }
    runs
}

impl SmartRun {
    /// Prints the smart table: ratios are to `today` (the one-encoder render of the same run).
    pub(super) fn print(&self, today: &Measured) {
        println!();
        println!(
            "smart render: {SEGMENT_SECONDS} s segments, {} encoders, a fresh cache folder per row; ratio to today's render ({:.2} s) in this run",
            self.encoders,
            secs(today.wall)
        );
        println!(
            "{:<30} {:>8} {:>9} {:>8} {:>8}",
            "way", "wall s", "/ today", "out MB", "cached"
        );
        for row in &self.rows {
            println!(
                "{:<30} {:>8.2} {:>8.2}× {:>8.2} {:>8}",
                row.measured.way,
                secs(row.measured.wall),
                self.ratio(row, today),
                row.measured.bytes as f64 / 1e6,
                format!("{}/{}", row.cached, row.total)
            );
        }
        for row in &self.rows {
            if let Some(by) = &row.filled_by {
                println!(
                    "  {}: cache filled first by {} ({}), untimed",
                    row.measured.way,
                    by.id,
                    tokens_text(&by.tokens)
                );
            }
            let same = match row.same_as_cold {
                Some(true) => ", output identical to the cold row's",
                Some(false) => ", output DIFFERS from the cold row's",
                None => "",
            };
            let runs: Vec<String> = row
                .runs
                .iter()
                .map(|(a, b, t, c)| {
                    format!(
                        "{a:.0}–{b:.0} s {} {}",
                        if t.is_empty() { "-" } else { t },
                        if *c { "cached" } else { "rendered" }
                    )
                })
                .collect();
            println!(
                "  {}: {} cache hits{same}; {}",
                row.measured.way,
                row.cache_hits,
                runs.join(", ")
            );
        }
    }

    pub(super) fn ratio(&self, row: &SmartRow, today: &Measured) -> f64 {
        secs(row.measured.wall) / secs(today.wall).max(1e-9)
    }

    pub(super) fn to_json(&self, today: &Measured) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "way": r.measured.way,
                    "wall_s": secs(r.measured.wall),
                    "ratio_to_today": self.ratio(r, today),
                    "bytes": r.measured.bytes,
                    "cached_segments": r.cached,
                    "total_segments": r.total,
                    "cache_hits": r.cache_hits,
                    "filled_by": r.filled_by.as_ref().map(|f| json!({"id": f.id, "lang": f.lang, "tokens": f.tokens})),
                    "identical_to_cold": r.same_as_cold,
                    "segments": r.runs.iter().map(|(a, b, t, c)| json!({"from_s": a, "to_s": b, "tokens": t, "cached": c})).collect::<Vec<_>>(),
                    "output": r.measured.path.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        json!({
            "segment_seconds": SEGMENT_SECONDS,
            "encoders": self.encoders,
            "today_wall_s": secs(today.wall),
            "rows": rows,
        })
    }
}

fn tokens_text(tokens: &BTreeMap<String, String>) -> String {
    tokens
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
