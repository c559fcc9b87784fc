//! W1's report: how close each output is to reelfarm's (PSNR), and the table and JSON.

use super::*;

pub(super) struct Check {
    pub(super) way: &'static str,
    pub(super) psnr_db: f64,
}

/// PSNR between the video streams of `a` and `b`, by FFmpeg's `psnr` filter (untimed).
pub(super) fn psnr(a: &Path, b: &Path) -> Result<f64> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-nostats", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ffmpeg` for the PSNR check")?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("ffmpeg psnr failed ({}): {}", output.status, log.trim());
    }
    let average = log
        .lines()
        .filter(|l| l.contains("PSNR"))
        .filter_map(|l| l.split("average:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back()
        .with_context(|| format!("no PSNR in ffmpeg's output: {}", log.trim()))?;
    if average == "inf" {
        return Ok(f64::INFINITY);
    }
    average
        .parse()
        .with_context(|| format!("unreadable PSNR `{average}`"))
}

/// Everything a run reports, printed and written as JSON.
pub(super) struct Summary<'a> {
    pub(super) recipient: &'a Recipient,
    pub(super) bundle: &'a Bundle,
    pub(super) report: &'a RenderReport,
    pub(super) adapter: &'a str,
    /// reelfarm first; ratios are to `floor`.
    pub(super) rows: Vec<&'a Measured>,
    pub(super) floor: &'a Measured,
    pub(super) storage: String,
    pub(super) ffmpeg: Option<&'a FfmpegRun>,
    pub(super) checks: Vec<Check>,
    /// The smart render rows (their ratios are to `rows[0]`, today's render).
    pub(super) smart: Option<&'a super::smart::SmartRun>,
}

pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(super) fn stage_rows(t: &StageTimings) -> [(&'static str, Duration); 8] {
    [
        ("prepare", t.prepare),
        ("rasterize", t.rasterize),
        ("audio", t.audio),
        ("lipsync", t.lipsync),
        ("decode", t.decode),
        ("gpu", t.gpu),
        ("encode", t.encode),
        ("total", t.total),
    ]
}

impl Summary<'_> {
    pub(super) fn ratio(&self, row: &Measured) -> f64 {
        secs(row.wall) / secs(self.floor.wall).max(1e-9)
    }

    pub(super) fn headline(&self) -> f64 {
        self.rows.first().map_or(f64::NAN, |r| self.ratio(r))
    }

    pub(super) fn print(&self) {
        let report = self.report;
        println!();
        println!(
            "{:<30} {:>8} {:>7} {:>9} {:>8}",
            "way", "wall s", "fps", "/ x264", "out MB"
        );
        for row in &self.rows {
            let mb = if row.bytes > 0 {
                format!("{:.2}", row.bytes as f64 / 1e6)
            } else {
                "-".to_owned()
            };
            println!(
                "{:<30} {:>8.2} {:>7.1} {:>8.2}× {:>8}",
                row.way,
                secs(row.wall),
                row.fps(),
                self.ratio(row),
                mb
            );
        }
        println!();
        println!(
            "{} frames at {}x{}; GPU adapter: {}",
            report.frames, report.size.0, report.size.1, self.adapter
        );
        println!("reelfarm stages (busy time per thread; decode, gpu and encode overlap):");
        for (name, d) in stage_rows(&report.timings) {
            println!("  {name:<10} {:>9.3} s", secs(d));
        }
        println!(
            "x264 alone: {}; opening the encoder, the frames and finishing are timed.",
            self.storage
        );
        if let Some(f) = self.ffmpeg {
            println!(
                "FFmpeg: static layers exported to PNG in {:.2} s (not counted); command in {}",
                secs(f.layer_export),
                f.command_file.display()
            );
            for note in &f.notes {
                println!("  note: {note}");
            }
        }
        for check in &self.checks {
            if check.psnr_db.is_infinite() {
                println!("check: {} video is identical to reelfarm's", check.way);
            } else {
                println!(
                    "check: {} video vs reelfarm's: PSNR {:.1} dB",
                    check.way, check.psnr_db
                );
            }
        }
        if let (Some(smart), Some(today)) = (self.smart, self.rows.first()) {
            smart.print(today);
        }
        println!();
        println!(
            "reelfarm / x264 alone = {:.2}× (target ≤ {TARGET_RATIO:.2}×)",
            self.headline()
        );
    }

    pub(super) fn to_json(&self) -> Value {
        let m = &self.bundle.manifest;
        let report = self.report;
        let runs: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "way": r.way,
                    "wall_s": secs(r.wall),
                    "fps": r.fps(),
                    "ratio_to_x264_alone": self.ratio(r),
                    "bytes": r.bytes,
                    "output": r.path.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        let stages: serde_json::Map<String, Value> = stage_rows(&report.timings)
            .into_iter()
            .map(|(name, d)| (format!("{name}_s"), json!(secs(d))))
            .collect();
        let checks: serde_json::Map<String, Value> = self
            .checks
            .iter()
            .map(|c| {
                let v = if c.psnr_db.is_infinite() {
                    json!("identical")
                } else {
                    json!(c.psnr_db)
                };
                (c.way.to_owned(), v)
            })
            .collect();
        json!({
            "workload": "W1",
            "template": m.name,
            "recipient": self.recipient.id,
            "lang": self.recipient.lang,
            "frames": report.frames,
            "width": report.size.0,
            "height": report.size.1,
            "fps": m.fps,
            "duration_s": m.duration,
            "adapter": self.adapter,
            "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            "runs": runs,
            "reelfarm_stages": stages,
            "reelfarm_warnings": report.warnings,
            "x264_alone_frames": self.storage,
            "ffmpeg": self.ffmpeg.map(|f| json!({
                "layer_export_s": secs(f.layer_export),
                "command_file": f.command_file.display().to_string(),
                "notes": f.notes,
            })),
            "video_psnr_db_vs_reelfarm": checks,
            "smart": self.smart.zip(self.rows.first()).map(|(s, today)| s.to_json(today)),
            "ratio_reelfarm_to_x264_alone": self.headline(),
            "target_ratio": TARGET_RATIO,
        })
    }
}
