//! Decoding every media file of a bundle the way a render would: videos to their last frame,
//! images whole, audio whole.

use std::collections::BTreeMap;
use std::path::Path;

use ffmpeg_next::{codec, format, frame, media as ffmedia, Packet};
use template::{Bundle, LayerContent};

use super::{label, DeepReport, Progress};
use crate::audio;
use crate::media::{self, CodecStep, VideoReader, VideoReaderOptions};

/// How much shorter than its declared duration a video's frames may end (in frame durations)
/// before it counts as truncated: containers round, and the last frame's own length is a guess.
const TRUNCATION_FRAMES: f64 = 2.0;
/// Frame rate assumed for a stream that declares none.
const FALLBACK_FPS: f64 = 25.0;

/// What decoding a video stream from its start found.
#[derive(Debug, Clone)]
struct Scan {
    /// Duration the container declares, seconds from the stream start.
    declared: Option<f64>,
    /// End of the last decoded frame, seconds from the stream start.
    end: f64,
    /// Frames decoded.
    frames: u64,
    /// Packets or frames the decoder reported as damaged.
    damaged: u64,
    /// One frame's duration in seconds.
    frame_secs: f64,
}

/// Decodes the best video stream of `path` from its start to its end, or until a frame past
/// `until` seconds, counting damaged packets and frames.
fn scan_video(path: &Path, until: Option<f64>) -> Result<Scan, String> {
    media::init();
    let mut input = format::input(path).map_err(|e| format!("cannot open it: {e}"))?;
    let (index, time_base, start, declared, fps, params) = {
        let stream = input
            .streams()
            .best(ffmedia::Type::Video)
            .ok_or("it has no video stream")?;
        let time_base = f64::from(stream.time_base());
        let start = match stream.start_time() {
            ffmpeg_next::ffi::AV_NOPTS_VALUE => 0,
            s => s,
        };
        let declared = if stream.duration() > 0 {
            Some(stream.duration() as f64 * time_base)
        } else {
            None
        };
        let fps = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .filter(|r| r.denominator() != 0)
            .map(f64::from)
            .find(|f| *f > 0.0 && *f < 1000.0)
            .unwrap_or(FALLBACK_FPS);
        (
            stream.index(),
            time_base,
            start,
            declared,
            fps,
            stream.parameters(),
        )
    };
    let declared = declared.or_else(|| {
        (input.duration() > 0)
            .then(|| input.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE))
    });
    let mut decoder = codec::context::Context::from_parameters(params)
        .and_then(|ctx| ctx.decoder().video())
        .map_err(|e| format!("cannot open its video decoder: {e}"))?;
    let frame_secs = 1.0 / fps;
    let mut scan = Scan {
        declared,
        end: 0.0,
        frames: 0,
        damaged: 0,
        frame_secs,
    };
    let mut packet = Packet::empty();
    let mut decoded = frame::Video::empty();
    let mut eof_sent = false;
    loop {
        // Drain every frame the decoder has ready.
        loop {
            match CodecStep::of(decoder.receive_frame(&mut decoded)) {
                Ok(CodecStep::Done) => {
                    scan.frames += 1;
                    if decoded.is_corrupt() || decoded.has_decode_errors() {
                        scan.damaged += 1;
                    }
                    let time = match decoded.timestamp().or(decoded.pts()) {
                        Some(pts) => (pts - start) as f64 * time_base,
                        None => scan.end,
                    };
                    scan.end = scan.end.max(time + frame_secs);
                    if until.is_some_and(|u| scan.end > u + frame_secs) {
                        return Ok(scan);
                    }
                }
                Ok(CodecStep::Eof) => return Ok(scan),
                Ok(CodecStep::Again) => break,
                Err(_) => {
                    scan.damaged += 1;
                    break;
                }
            }
        }
        if eof_sent {
            // The decoder asked for more after end of stream: nothing more will come.
            return Ok(scan);
        }
        match packet.read(&mut input) {
            Ok(()) => {
                if packet.stream() == index && decoder.send_packet(&packet).is_err() {
                    scan.damaged += 1;
                }
            }
            Err(ffmpeg_next::Error::Eof) => {
                eof_sent = true;
                if decoder.send_eof().is_err() {
                    return Ok(scan);
                }
            }
            Err(_) => {
                // A damaged container: unreadable packets. Count them and keep reading, up to
                // a limit so a garbage file cannot loop forever.
                scan.damaged += 1;
                if scan.damaged > 10_000 {
                    return Ok(scan);
                }
            }
        }
    }
}

/// A video use of a file: the layer, when it is on screen, and its trim.
struct VideoUse {
    label: String,
    start: f64,
    end: f64,
    trim_start: f64,
    trim_duration: Option<f64>,
    looped: bool,
}

/// Decodes every media file of the bundle and adds what is wrong with each to `report`.
/// Returns the pixel size of every image that decoded (for layers drawn at their own size).
pub(super) fn check_media(
    bundle: &Bundle,
    report: &mut DeepReport,
    progress: &Progress,
) -> BTreeMap<String, (u32, u32)> {
    let m = &bundle.manifest;
    let mut images = BTreeMap::new();
    let mut videos: BTreeMap<&str, Vec<VideoUse>> = BTreeMap::new();
    let mut stills: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, layer) in m.layers.iter().enumerate() {
        let lbl = label(i, &layer.id);
        let end = layer.end.unwrap_or(m.duration);
        match &layer.content {
            LayerContent::Video(v) => videos.entry(v.src.as_str()).or_default().push(VideoUse {
                label: lbl.clone(),
                start: layer.start,
                end,
                trim_start: v.trim_start,
                trim_duration: v.trim_duration,
                looped: v.looped,
            }),
            LayerContent::Presenter(p) => {
                if template::is_still_path(&p.src) {
                    stills.entry(p.src.as_str()).or_default().push(lbl.clone());
                } else {
                    videos.entry(p.src.as_str()).or_default().push(VideoUse {
                        label: lbl.clone(),
                        start: layer.start,
                        end,
                        trim_start: p.trim_start,
                        trim_duration: p.trim_duration,
                        looped: p.looped,
                    });
                }
                stills
                    .entry(p.mouths.src.as_str())
                    .or_default()
                    .push(format!("{lbl}.mouths"));
            }
            LayerContent::Image(img) => stills.entry(img.src.as_str()).or_default().push(lbl),
            LayerContent::Text(_) | LayerContent::Solid(_) => {}
        }
    }

    for (src, uses) in &videos {
        progress(&format!("decoding {src}"));
        check_video(bundle, src, uses, report);
    }
    for (src, users) in &stills {
        progress(&format!("decoding {src}"));
        let path = bundle.media_path(src);
        match media::load_image(&path) {
            Ok(img) => {
                images.insert((*src).to_owned(), (img.width, img.height));
            }
            Err(e) => {
                for user in users {
                    report.error(user.clone(), format!("`{src}` does not decode: {e}"));
                }
            }
        }
    }
    if let Some(music) = &m.audio.music {
        progress(&format!("decoding {}", music.src));
        if let Err(e) = audio::decode_file(&bundle.media_path(&music.src)) {
            report.error(
                "audio.music.src",
                format!("`{}` does not decode: {e}", music.src),
            );
        }
    }
    if let Some(voice) = &m.audio.voice {
        for (lang, src) in &voice.default {
            progress(&format!("decoding {src}"));
            let path = format!("audio.voice.default[\"{lang}\"]");
            match audio::decode_file(&bundle.media_path(src)) {
                Ok(pcm) if pcm.duration_secs() > voice.max_duration + 1e-3 => report.error(
                    path,
                    format!(
                        "the default voice `{src}` for language `{lang}` is {:.2} s long; the \
                         voice slot takes at most {:.2} s (audio.voice.max_duration), so every \
                         render in `{lang}` without its own voice would fail",
                        pcm.duration_secs(),
                        voice.max_duration
                    ),
                ),
                Ok(_) => {}
                Err(e) => report.error(path, format!("`{src}` does not decode: {e}")),
            }
        }
    }
    images
}

/// Decodes one video file to the end of what its layers use and checks it against each use.
fn check_video(bundle: &Bundle, src: &str, uses: &[VideoUse], report: &mut DeepReport) {
    let path = bundle.media_path(src);
    // Looped or untrimmed uses need the whole file; otherwise up to the furthest trim end.
    let until = uses
        .iter()
        .map(|u| {
            u.trim_duration
                .filter(|_| !u.looped)
                .map(|d| u.trim_start + d)
        })
        .try_fold(0.0_f64, |acc, end| end.map(|e| acc.max(e)));
    let scan = match scan_video(&path, until) {
        Ok(scan) => scan,
        Err(e) => {
            for u in uses {
                report.error(
                    format!("{}.src", u.label),
                    format!("`{src}` does not decode: {e}"),
                );
            }
            return;
        }
    };
    let mut file_problem = None;
    if scan.frames == 0 {
        file_problem = Some(format!("`{src}` holds no decodable video frame"));
    } else if scan.damaged > 0 {
        file_problem = Some(format!(
            "`{src}` is damaged: {} packets or frames failed to decode ({} frames decoded)",
            scan.damaged, scan.frames
        ));
    } else if let Some(declared) = scan.declared {
        let wanted = until.map_or(declared, |u| u.min(declared));
        if scan.end + TRUNCATION_FRAMES * scan.frame_secs < wanted {
            file_problem = Some(format!(
                "`{src}` is truncated: it declares {declared:.2} s but its frames stop at {:.2} s",
                scan.end
            ));
        }
    }
    if let Some(message) = file_problem {
        for u in uses {
            report.error(format!("{}.src", u.label), message.clone());
        }
        return;
    }
    // The file's real length: its frames, or the declared duration when decoding stopped early.
    let length = scan.declared.map_or(scan.end, |d| d.max(scan.end));
    for u in uses {
        let at = format!("{}.src", u.label);
        // Open it and decode its first used frame exactly as a render does.
        let first = VideoReader::open(
            &path,
            VideoReaderOptions {
                width: 16,
                height: 16,
                trim_start: u.trim_start,
                trim_duration: u.trim_duration,
                looped: u.looped,
            },
        )
        .and_then(|mut reader| reader.frame_at(0.0).map(|_| ()));
        if let Err(e) = first {
            report.error(at, format!("`{src}`: the first frame does not decode: {e}"));
            continue;
        }
        if let Some(d) = u.trim_duration {
            if u.trim_start + d > length + scan.frame_secs {
                report.error(
                    at,
                    format!(
                        "`{src}` is {length:.2} s long but the layer uses it up to {:.2} s \
                         (trim_start {} s + trim_duration {d} s)",
                        u.trim_start + d,
                        u.trim_start
                    ),
                );
                continue;
            }
        }
        let used = u
            .trim_duration
            .unwrap_or(length - u.trim_start)
            .min(length - u.trim_start);
        let shown = u.end - u.start;
        if !u.looped && used + scan.frame_secs < shown {
            report.warning(
                at,
                format!(
                    "`{src}` gives {used:.2} s of video (after trim) but the layer is on screen for \
                     {shown:.2} s; it holds its last frame for the rest (set `loop` to repeat it)"
                ),
            );
        }
    }
}
