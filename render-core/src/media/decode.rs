//! Video decoding to RGBA8 at an arbitrary output size, addressed by time.

use std::path::{Path, PathBuf};

use ffmpeg_next::{codec, decoder, format, frame, media, software::scaling, Packet, Rational};

use super::sys::{self, SendScaler};
use super::{CodecStep, MediaError};

/// Tolerance when comparing frame timestamps with requested times, in seconds.
const TIME_EPS: f64 = 1e-6;

/// Largest output width or height accepted.
const MAX_OUTPUT_SIDE: u32 = 16384;

/// Consecutive unreadable packets skipped before the file is declared corrupt.
const MAX_SKIPPED_PACKETS: u32 = 64;

/// Frame rate assumed when the file declares none.
const FALLBACK_FPS: f64 = 25.0;

/// How a [`VideoReader`] maps requested times to source frames, and the output size.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoReaderOptions {
    /// Output width in pixels (the source is scaled to it).
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Seconds into the source where the used part starts; `>= 0`.
    pub trim_start: f64,
    /// Length of the used part in seconds; `None` uses the source to its end.
    pub trim_duration: Option<f64>,
    /// Whether times past the used part wrap around to its start; otherwise they hold its
    /// last frame.
    pub looped: bool,
}

/// Reads frames of one video file as opaque RGBA8 at a fixed output size.
///
/// Requests for increasing times decode forward without seeking; a request for an earlier
/// time (a loop wrapping, or going backwards) seeks to the nearest keyframe before it and
/// decodes forward. The frame returned for a time `t` is the latest source frame whose
/// timestamp is `<= t`, so the output frame rate may differ from the source's.
pub struct VideoReader {
    path: PathBuf,
    opts: VideoReaderOptions,
    input: format::context::Input,
    stream_index: usize,
    decoder: decoder::Video,
    /// Stream time base in seconds per tick.
    time_base: f64,
    /// Stream start in stream ticks; frame times are relative to it.
    start_pts: i64,
    src_width: u32,
    src_height: u32,
    fps: f64,
    /// Source duration from the container, relative to the stream start.
    src_duration: Option<f64>,
    /// End of the last frame, learnt on reaching the end of a file of unknown duration.
    discovered_end: Option<f64>,
    packet: Packet,
    /// The frame on show, and its time in seconds relative to the stream start.
    cur: frame::Video,
    cur_time: Option<f64>,
    /// Whether `out` holds `cur` converted.
    cur_converted: bool,
    /// The decoded frame after `cur`, not yet on show.
    next: frame::Video,
    next_time: Option<f64>,
    last_time: Option<f64>,
    demux_eof: bool,
    eof_sent: bool,
    decoder_drained: bool,
    scaler: Option<(ScalerKey, SendScaler)>,
    rgba: frame::Video,
    out: Vec<u8>,
}

/// What an swscale context was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScalerKey {
    format: format::Pixel,
    width: u32,
    height: u32,
    colorspace: i32,
    full_range: bool,
}

/// Opens `path` as a media file and finds its best video stream.
fn open_video_input(path: &Path) -> Result<(format::context::Input, usize), MediaError> {
    super::init();
    if !path.exists() {
        return Err(MediaError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let input = format::input(path).map_err(|source| MediaError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let index = input
        .streams()
        .best(media::Type::Video)
        .map(|stream| stream.index())
        .ok_or_else(|| MediaError::NoVideoStream {
            path: path.to_path_buf(),
        })?;
    Ok((input, index))
}

/// Width and height of the best video stream of `path`, read from its header without decoding,
/// so a renderer can choose the size to decode at before opening a [`VideoReader`].
pub fn probe_video_size(path: &Path) -> Result<(u32, u32), MediaError> {
    let owned = || path.to_path_buf();
    let (input, index) = open_video_input(path)?;
    let stream = input
        .stream(index)
        .ok_or_else(|| MediaError::NoVideoStream { path: owned() })?;
    let params = stream.parameters();
    let decoder = codec::context::Context::from_parameters(params)
        .and_then(|ctx| ctx.decoder().video())
        .map_err(|source| MediaError::Decode {
            path: owned(),
            stage: "reading the stream parameters",
            source,
        })?;
    let (width, height) = (decoder.width(), decoder.height());
    if width == 0 || height == 0 {
        return Err(MediaError::ZeroSize {
            path: owned(),
            width,
            height,
        });
    }
    Ok((width, height))
}

impl VideoReader {
    /// Opens `path` and prepares to decode its best video stream.
    ///
    /// Fails if the file is missing, is not a media file, has no video stream, declares a
    /// zero size, or if `opts` are out of range (zero output size, negative or non-finite
    /// trim, trim start at or past the source's known end).
    pub fn open(path: &Path, opts: VideoReaderOptions) -> Result<Self, MediaError> {
        let owned = || path.to_path_buf();
        let invalid = |message: String| MediaError::InvalidRequest {
            path: owned(),
            message,
        };
        if opts.width == 0
            || opts.height == 0
            || opts.width > MAX_OUTPUT_SIDE
            || opts.height > MAX_OUTPUT_SIDE
        {
            return Err(invalid(format!(
                "output size {}x{} out of range 1..={MAX_OUTPUT_SIDE}",
                opts.width, opts.height
            )));
        }
        if !opts.trim_start.is_finite() || opts.trim_start < 0.0 {
            return Err(invalid(format!(
                "trim_start {} s must be finite and >= 0",
                opts.trim_start
            )));
        }
        if let Some(d) = opts.trim_duration {
            if !d.is_finite() || d <= 0.0 {
                return Err(invalid(format!(
                    "trim_duration {d} s must be finite and > 0"
                )));
            }
        }
        let (input, stream_index) = open_video_input(path)?;
        let stream = input
            .stream(stream_index)
            .ok_or_else(|| MediaError::NoVideoStream { path: owned() })?;
        let tb = stream.time_base();
        let time_base = rational_secs(tb).unwrap_or(1.0 / 90_000.0);
        let start_pts = match stream.start_time() {
            ffmpeg_next::ffi::AV_NOPTS_VALUE => 0,
            s => s,
        };
        let fps = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .filter_map(rational_secs)
            .find(|f| *f > 0.0 && *f < 1000.0)
            .unwrap_or(0.0);
        let src_duration = stream_duration(&input, &stream, time_base, start_pts);

        let mut ctx =
            codec::context::Context::from_parameters(stream.parameters()).map_err(|source| {
                MediaError::Decode {
                    path: owned(),
                    stage: "reading the stream parameters",
                    source,
                }
            })?;
        ctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 2,
            ..Default::default()
        });
        let mut dec = ctx.decoder();
        dec.set_packet_time_base(tb);
        let decoder = dec.video().map_err(|source| MediaError::Decode {
            path: owned(),
            stage: "opening the decoder",
            source,
        })?;
        let (src_width, src_height) = (decoder.width(), decoder.height());
        if src_width == 0 || src_height == 0 {
            return Err(MediaError::ZeroSize {
                path: owned(),
                width: src_width,
                height: src_height,
            });
        }
        if let Some(d) = src_duration {
            if opts.trim_start >= d {
                return Err(invalid(format!(
                    "trim_start {} s is at or past the end of the {d:.3} s source",
                    opts.trim_start
                )));
            }
        }
        tracing::debug!(
            path = %path.display(),
            src_width,
            src_height,
            fps,
            duration = ?src_duration,
            "opened video"
        );

        let out = vec![0; opts.width as usize * opts.height as usize * 4];
        Ok(Self {
            path: owned(),
            opts,
            input,
            stream_index,
            decoder,
            time_base,
            start_pts,
            src_width,
            src_height,
            fps,
            src_duration,
            discovered_end: None,
            packet: Packet::empty(),
            cur: frame::Video::empty(),
            cur_time: None,
            cur_converted: false,
            next: frame::Video::empty(),
            next_time: None,
            last_time: None,
            demux_eof: false,
            eof_sent: false,
            decoder_drained: false,
            scaler: None,
            rgba: frame::Video::empty(),
            out,
        })
    }

    /// Source width, height, frame rate (0.0 when the file declares none) and duration in
    /// seconds (`None` when the container does not say).
    pub fn source_info(&self) -> (u32, u32, f64, Option<f64>) {
        (self.src_width, self.src_height, self.fps, self.src_duration)
    }

    /// Length of the used part (after trimming) in seconds, if known. For a file of unknown
    /// duration without `trim_duration` this becomes known once a looped reader reaches the
    /// end.
    pub fn used_duration(&self) -> Option<f64> {
        let end = self.src_duration.or(self.discovered_end);
        let rest = end.map(|e| (e - self.opts.trim_start).max(0.0));
        match (self.opts.trim_duration, rest) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (Some(d), None) => Some(d),
            (None, r) => r,
        }
    }

    /// The output frame for local time `t` (seconds into the used part, `>= 0`) as
    /// `width * height * 4` bytes of RGBA8 with alpha 255.
    ///
    /// Times past the used part wrap if the reader is looped and hold the last frame
    /// otherwise. The returned slice is valid until the next call.
    pub fn frame_at(&mut self, t: f64) -> Result<&[u8], MediaError> {
        if !t.is_finite() || t < 0.0 {
            return Err(MediaError::InvalidRequest {
                path: self.path.clone(),
                message: format!("time {t} s must be finite and >= 0"),
            });
        }
        let mut target = self.source_time(t);
        self.seek_if_needed(target)?;
        self.advance_to(target)?;

        // A looped file of unknown length: once the end is found, wrap and try again.
        if self.opts.looped && self.used_duration().is_none() && self.decoder_drained {
            if let Some(last) = self.last_time {
                let end = last + self.frame_duration();
                if target >= end - TIME_EPS {
                    self.discovered_end = Some(end);
                    tracing::debug!(path = %self.path.display(), end, "found end of video");
                    target = self.source_time(t);
                    self.seek_if_needed(target)?;
                    self.advance_to(target)?;
                }
            }
        }

        if self.cur_time.is_none() {
            return Err(MediaError::NoFrames {
                path: self.path.clone(),
                seconds: target,
            });
        }
        if !self.cur_converted {
            self.convert_current()?;
            self.cur_converted = true;
        }
        Ok(&self.out)
    }

    /// Maps a local time to a source time (seconds from the stream start).
    fn source_time(&self, t: f64) -> f64 {
        let local = match self.used_duration() {
            Some(d) if d > 0.0 && self.opts.looped => t.rem_euclid(d),
            // Hold the last frame that starts inside the used part.
            Some(d) if d > 0.0 => t.min(d - TIME_EPS),
            Some(_) => 0.0,
            None => t,
        };
        self.opts.trim_start + local.max(0.0)
    }

    fn frame_duration(&self) -> f64 {
        1.0 / if self.fps > 0.0 {
            self.fps
        } else {
            FALLBACK_FPS
        }
    }

    /// Seeks when `target` lies before the frame on show, or, before the first frame, when
    /// the used part starts after the beginning of the file.
    fn seek_if_needed(&mut self, target: f64) -> Result<(), MediaError> {
        let backwards = match self.cur_time {
            Some(cur) => target < cur - TIME_EPS,
            None => target > TIME_EPS && !self.demux_eof && self.last_time.is_none(),
        };
        if backwards {
            self.seek(target)?;
        }
        Ok(())
    }

    /// Seeks to the keyframe at or before `target` and resets decoding state.
    fn seek(&mut self, target: f64) -> Result<(), MediaError> {
        let absolute = target + self.start_pts as f64 * self.time_base;
        let ts = (absolute * f64::from(ffmpeg_next::ffi::AV_TIME_BASE)).floor() as i64;
        tracing::trace!(path = %self.path.display(), target, "seek");
        if let Err(e) = self.input.seek(ts, ..ts) {
            // Some demuxers (raw elementary streams) cannot seek; reading the file again from
            // the start reaches the same frames.
            tracing::debug!(path = %self.path.display(), error = %e, "seek failed; reopening");
            self.input = format::input(&self.path).map_err(|source| MediaError::Open {
                path: self.path.clone(),
                source,
            })?;
            let same_stream = self
                .input
                .stream(self.stream_index)
                .is_some_and(|s| s.parameters().medium() == media::Type::Video);
            if !same_stream {
                return Err(MediaError::Decode {
                    path: self.path.clone(),
                    stage: "reopening after a failed seek",
                    source: e,
                });
            }
        }
        self.decoder.flush();
        self.cur_time = None;
        self.cur_converted = false;
        self.next_time = None;
        self.last_time = None;
        self.demux_eof = false;
        self.eof_sent = false;
        self.decoder_drained = false;
        Ok(())
    }

    /// Decodes forward until the next frame starts after `target`; the frame on show is then
    /// the latest at or before it (or the first frame, if all start after it).
    fn advance_to(&mut self, target: f64) -> Result<(), MediaError> {
        loop {
            if self.next_time.is_none() && !self.decode_next()? {
                return Ok(());
            }
            let next = self.next_time.unwrap_or(f64::INFINITY);
            if self.cur_time.is_none() || next <= target + TIME_EPS {
                std::mem::swap(&mut self.cur, &mut self.next);
                self.cur_time = self.next_time.take();
                self.cur_converted = false;
            } else {
                return Ok(());
            }
        }
    }

    /// Decodes one frame into `next`. Returns `false` at the end of the stream.
    fn decode_next(&mut self) -> Result<bool, MediaError> {
        if self.decoder_drained {
            return Ok(false);
        }
        loop {
            match CodecStep::of(self.decoder.receive_frame(&mut self.next)) {
                Ok(CodecStep::Done) => {
                    let time = match self.next.timestamp().or(self.next.pts()) {
                        Some(pts) => (pts - self.start_pts) as f64 * self.time_base,
                        None => self
                            .last_time
                            .map_or(0.0, |last| last + self.frame_duration()),
                    };
                    self.next_time = Some(time);
                    self.last_time = Some(time);
                    return Ok(true);
                }
                Ok(CodecStep::Eof) => {
                    self.decoder_drained = true;
                    return Ok(false);
                }
                Ok(CodecStep::Again) => self.feed_decoder()?,
                Err(source) => {
                    return Err(MediaError::Decode {
                        path: self.path.clone(),
                        stage: "decoding a frame",
                        source,
                    })
                }
            }
        }
    }

    /// Sends the next packet of the video stream to the decoder, or end-of-stream.
    fn feed_decoder(&mut self) -> Result<(), MediaError> {
        let mut skipped = 0;
        while !self.demux_eof {
            match self.packet.read(&mut self.input) {
                Ok(()) => {
                    if self.packet.stream() != self.stream_index {
                        continue;
                    }
                    return self.decoder.send_packet(&self.packet).map_err(|source| {
                        MediaError::Decode {
                            path: self.path.clone(),
                            stage: "decoding a packet",
                            source,
                        }
                    });
                }
                Err(ffmpeg_next::Error::Eof) => self.demux_eof = true,
                Err(ffmpeg_next::Error::InvalidData) if skipped < MAX_SKIPPED_PACKETS => {
                    skipped += 1;
                }
                Err(source) => {
                    return Err(MediaError::Decode {
                        path: self.path.clone(),
                        stage: "reading a packet",
                        source,
                    })
                }
            }
        }
        if !self.eof_sent {
            self.eof_sent = true;
            self.decoder
                .send_eof()
                .map_err(|source| MediaError::Decode {
                    path: self.path.clone(),
                    stage: "flushing the decoder",
                    source,
                })?;
        }
        Ok(())
    }

    /// Scales `cur` into `out` as tightly packed RGBA with alpha 255.
    fn convert_current(&mut self) -> Result<(), MediaError> {
        let format = self.cur.format();
        let key = ScalerKey {
            format,
            width: self.cur.width(),
            height: self.cur.height(),
            colorspace: color_space_for(&self.cur),
            full_range: self.cur.color_range() == ffmpeg_next::color::Range::JPEG
                || matches!(
                    format,
                    format::Pixel::YUVJ420P | format::Pixel::YUVJ422P | format::Pixel::YUVJ444P
                ),
        };
        if key.width == 0 || key.height == 0 || format == format::Pixel::None {
            return Err(convert_error(&self.path, ffmpeg_next::Error::InvalidData));
        }
        let scaler = match &mut self.scaler {
            Some((k, scaler)) if *k == key => scaler,
            slot => {
                let mut ctx = scaling::Context::get(
                    format,
                    key.width,
                    key.height,
                    format::Pixel::RGBA,
                    self.opts.width,
                    self.opts.height,
                    // Full horizontal chroma interpolation for sharp colour edges. Output is
                    // deterministic on a given CPU; the "accurate"/"bitexact" paths would make
                    // it identical across CPUs at about a third of the speed.
                    scaling::Flags::BICUBIC | scaling::Flags::FULL_CHR_H_INT,
                )
                .map_err(|e| convert_error(&self.path, e))?;
                if is_yuv(format)
                    && !sys::set_yuv_to_rgb_matrix(&mut ctx, key.colorspace, key.full_range)
                {
                    tracing::debug!(path = %self.path.display(), ?format, "colour matrix not applied");
                }
                &mut slot.insert((key, SendScaler(ctx))).1
            }
        };
        scaler
            .0
            .run(&self.cur, &mut self.rgba)
            .map_err(|e| convert_error(&self.path, e))?;

        let row = self.opts.width as usize * 4;
        if self.rgba.planes() == 0 || self.rgba.stride(0) < row {
            return Err(convert_error(
                &self.path,
                ffmpeg_next::Error::Other {
                    errno: ffmpeg_next::error::ENOMEM,
                },
            ));
        }
        let stride = self.rgba.stride(0);
        let data = self.rgba.data(0);
        if stride == row {
            let len = self.out.len();
            self.out.copy_from_slice(&data[..len]);
        } else {
            for (dst, src) in self.out.chunks_exact_mut(row).zip(data.chunks(stride)) {
                dst.copy_from_slice(&src[..row]);
            }
        }
        if has_alpha(format) {
            for px in self.out.chunks_exact_mut(4) {
                px[3] = 255;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for VideoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReader")
            .field("path", &self.path)
            .field("opts", &self.opts)
            .field("source", &(self.src_width, self.src_height, self.fps))
            .field("src_duration", &self.src_duration)
            .field("cur_time", &self.cur_time)
            .finish_non_exhaustive()
    }
}

fn convert_error(path: &Path, source: ffmpeg_next::Error) -> MediaError {
    MediaError::Decode {
        path: path.to_path_buf(),
        stage: "converting a frame",
        source,
    }
}

fn rational_secs(r: Rational) -> Option<f64> {
    (r.numerator() != 0 && r.denominator() != 0)
        .then(|| f64::from(r.numerator()) / f64::from(r.denominator()))
}

/// Duration relative to the stream start: the stream's own, else the container's.
fn stream_duration(
    input: &format::context::Input,
    stream: &format::stream::Stream,
    time_base: f64,
    start_pts: i64,
) -> Option<f64> {
    let nopts = ffmpeg_next::ffi::AV_NOPTS_VALUE;
    if stream.duration() > 0 && stream.duration() != nopts {
        return Some(stream.duration() as f64 * time_base);
    }
    let total = input.duration();
    if total > 0 && total != nopts {
        let start = start_pts as f64 * time_base;
        let d = total as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE) - start.max(0.0);
        return (d > 0.0).then_some(d);
    }
    None
}

/// The frame's colour matrix as an `AVColorSpace` value; untagged HD and larger frames are
/// taken as BT.709, smaller ones as BT.601, as players do.
fn color_space_for(frame: &frame::Video) -> i32 {
    use ffmpeg_next::color::Space;
    match frame.color_space() {
        Space::Unspecified | Space::Reserved => {
            if frame.height() >= 720 {
                Space::BT709.into_raw()
            } else {
                Space::SMPTE170M.into_raw()
            }
        }
        s => s.into_raw(),
    }
}

trait SpaceRaw {
    fn into_raw(self) -> i32;
}

impl SpaceRaw for ffmpeg_next::color::Space {
    fn into_raw(self) -> i32 {
        ffmpeg_next::ffi::AVColorSpace::from(self) as i32
    }
}

fn is_yuv(format: format::Pixel) -> bool {
    let name = format.descriptor().map_or("", |d| d.name());
    name.starts_with("yuv") || name.starts_with("nv") || name.starts_with("p01")
}

fn has_alpha(format: format::Pixel) -> bool {
    format == format::Pixel::PAL8
        || format
            .descriptor()
            .is_some_and(|d| matches!(d.nb_components(), 2 | 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_util::{ffmpeg, ffmpeg_stdout, has_encoder, TempDir};

    const W: u32 = 320;
    const H: u32 = 240;

    fn opts(width: u32, height: u32) -> VideoReaderOptions {
        VideoReaderOptions {
            width,
            height,
            trim_start: 0.0,
            trim_duration: None,
            looped: false,
        }
    }

    /// A 2 s, 25 fps testsrc2 clip with the given extension and codec arguments.
    fn make_clip(dir: &TempDir, name: &str, codec: &[&str]) -> PathBuf {
        let path = dir.path(name);
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
        ];
        args.extend_from_slice(codec);
        let p = path.to_str().expect("utf8").to_owned();
        args.push(&p);
        ffmpeg(&args);
        path
    }

    /// All frames of `path` decoded by the ffmpeg CLI as RGBA at W×H.
    fn reference_frames(path: &Path) -> Vec<Vec<u8>> {
        let raw = ffmpeg_stdout(&[
            "-i",
            path.to_str().expect("utf8"),
            "-sws_flags",
            "bicubic+full_chroma_int",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgba",
            "-",
        ]);
        raw.chunks_exact((W * H * 4) as usize)
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    /// Asserts `got` matches reference frame `want` and none of its neighbours as closely.
    fn assert_is_frame(got: &[u8], refs: &[Vec<u8>], want: usize, what: &str) {
        let d = mean_abs_diff(got, &refs[want]);
        assert!(d < 0.5, "{what}: differs from frame {want} by {d:.3}");
        for n in [want.wrapping_sub(1), want + 1] {
            if let Some(other) = refs.get(n) {
                let dn = mean_abs_diff(got, other);
                assert!(
                    dn > d,
                    "{what}: frame {n} ({dn:.3}) as close as {want} ({d:.3})"
                );
            }
        }
    }

    /// Decodes the centre pixel of a 1280x720 clip of `rgb` made with `matrix`, tagged or not.
    fn centre_of_solid_clip(
        dir: &TempDir,
        name: &str,
        rgb: &str,
        matrix: &str,
        tag: bool,
    ) -> [u8; 4] {
        let path = dir.path(name);
        let filter = format!("scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p");
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            rgb,
            "-frames:v",
            "3",
            "-vf",
            &filter,
            "-c:v",
            "libx264",
            "-qp",
            "0",
        ];
        if tag {
            args.extend_from_slice(&["-colorspace", matrix]);
        }
        let p = path.to_str().expect("utf8").to_owned();
        args.push(&p);
        ffmpeg(&args);
        let mut r = VideoReader::open(&path, opts(64, 36)).expect("open");
        let f = r.frame_at(0.0).expect("frame");
        let i = (18 * 64 + 32) * 4;
        [f[i], f[i + 1], f[i + 2], f[i + 3]]
    }

    #[test]
    fn colour_matrix_follows_tags_and_size() {
        let dir = TempDir::new("dec_matrix");
        let want = [0x33u8, 0x66, 0xcc, 255];
        let src = "color=c=0x3366cc:s=1280x720,format=rgb24";
        let close = |got: [u8; 4]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2);
        let tagged = centre_of_solid_clip(&dir, "t709.mp4", src, "bt709", true);
        assert!(close(tagged), "tagged BT.709: {tagged:?}");
        // Untagged HD is taken as BT.709.
        let untagged = centre_of_solid_clip(&dir, "u709.mp4", src, "bt709", false);
        assert!(close(untagged), "untagged HD: {untagged:?}");
        // A tag overrides the size rule.
        let tagged601 = centre_of_solid_clip(&dir, "t601.mp4", src, "smpte170m", true);
        assert!(close(tagged601), "tagged BT.601 HD: {tagged601:?}");
    }

    #[test]
    fn reader_is_send() {
        fn send<T: Send>() {}
        send::<VideoReader>();
    }

    #[test]
    fn sequential_frames_match_ffmpeg_at_other_fps() {
        let dir = TempDir::new("dec_seq");
        let clip = make_clip(&dir, "x.mp4", &[]);
        let refs = reference_frames(&clip);
        assert_eq!(refs.len(), 50);

        let mut r = VideoReader::open(&clip, opts(W, H)).expect("open");
        let (w, h, fps, dur) = r.source_info();
        assert_eq!((w, h), (W, H));
        assert!((fps - 25.0).abs() < 1e-9, "fps {fps}");
        assert!((dur.expect("duration") - 2.0).abs() < 0.05, "{dur:?}");

        // Output at 30 fps: frame k shows source frame floor(k * 25 / 30).
        for k in 0..60u32 {
            let t = f64::from(k) / 30.0;
            let got = r.frame_at(t).expect("frame").to_vec();
            assert_eq!(got.len(), (W * H * 4) as usize);
            assert!(got.chunks_exact(4).all(|p| p[3] == 255));
            let want = (k * 25 / 30) as usize;
            assert_is_frame(&got, &refs, want, &format!("t={t:.4}"));
        }
    }

    #[test]
    fn looping_wraps_and_non_looping_holds_last_frame() {
        let dir = TempDir::new("dec_loop");
        let clip = make_clip(&dir, "x.mp4", &[]);
        let refs = reference_frames(&clip);

        let mut looped = VideoReader::open(
            &clip,
            VideoReaderOptions {
                looped: true,
                ..opts(W, H)
            },
        )
        .expect("open");
        let mut at_half = Vec::new();
        for k in 0..=70u32 {
            let t = f64::from(k) * 0.04;
            let f = looped.frame_at(t).expect("frame").to_vec();
            if k == 12 {
                at_half = f.clone();
            }
            if k == 62 {
                // 2.48 s wraps to 0.48 s.
                assert_eq!(f, at_half, "wrap at 2.48 s");
            }
        }
        let wrapped = looped.frame_at(2.5).expect("2.5").to_vec();
        let half = looped.frame_at(0.5).expect("0.5").to_vec();
        assert_eq!(wrapped, half, "looped t=2.5 equals t=0.5 byte for byte");
        assert_is_frame(&half, &refs, 12, "t=0.5");
        // Far past the end, several loops in, backwards and forwards again.
        let far = looped.frame_at(10.5).expect("10.5").to_vec();
        assert_eq!(far, half);

        let mut held = VideoReader::open(&clip, opts(W, H)).expect("open");
        let last = held.frame_at(5.0).expect("t=5").to_vec();
        assert_is_frame(&last, &refs, 49, "t=5 non-looped");
        assert_eq!(held.frame_at(1.96).expect("1.96"), &last[..]);
        // Backwards after the end works too.
        let first = held.frame_at(0.0).expect("t=0").to_vec();
        assert_is_frame(&first, &refs, 0, "t=0 after seek back");
    }

    #[test]
    fn trim_start_and_duration() {
        let dir = TempDir::new("dec_trim");
        let clip = make_clip(&dir, "x.mp4", &[]);
        let refs = reference_frames(&clip);

        let mut r = VideoReader::open(
            &clip,
            VideoReaderOptions {
                trim_start: 0.8,
                trim_duration: Some(0.4),
                looped: true,
                ..opts(W, H)
            },
        )
        .expect("open");
        assert!((r.used_duration().expect("used") - 0.4).abs() < 1e-9);
        let f0 = r.frame_at(0.0).expect("t=0").to_vec();
        assert_is_frame(&f0, &refs, 20, "trim t=0");
        let f1 = r.frame_at(0.2).expect("t=0.2").to_vec();
        assert_is_frame(&f1, &refs, 25, "trim t=0.2");
        let f2 = r.frame_at(0.39).expect("t=0.39").to_vec();
        assert_is_frame(&f2, &refs, 29, "trim t=0.39");
        // 0.4 wraps to 0.0.
        assert_eq!(r.frame_at(0.4).expect("t=0.4"), &f0[..]);

        let mut held = VideoReader::open(
            &clip,
            VideoReaderOptions {
                trim_start: 1.0,
                trim_duration: Some(0.4),
                ..opts(W, H)
            },
        )
        .expect("open");
        let end = held.frame_at(3.0).expect("held").to_vec();
        assert_is_frame(&end, &refs, 34, "trim held at end");

        let err = VideoReader::open(
            &clip,
            VideoReaderOptions {
                trim_start: 2.5,
                ..opts(W, H)
            },
        )
        .expect_err("trim past end");
        assert!(err.to_string().contains("past the end"), "{err}");
    }

    #[test]
    fn scales_to_the_output_size() {
        let dir = TempDir::new("dec_scale");
        let clip = make_clip(&dir, "x.mp4", &[]);
        let mut r = VideoReader::open(&clip, opts(97, 61)).expect("open");
        let f = r.frame_at(0.3).expect("frame");
        assert_eq!(f.len(), 97 * 61 * 4);
        assert!(f.chunks_exact(4).all(|p| p[3] == 255));
    }

    #[test]
    fn vp9_webm_decodes() {
        if !has_encoder("libvpx-vp9") {
            eprintln!("libvpx-vp9 not available; VP9 decode not exercised");
            return;
        }
        let dir = TempDir::new("dec_vp9");
        let clip = make_clip(
            &dir,
            "x.webm",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "1M",
            ],
        );
        let refs = reference_frames(&clip);
        let mut r = VideoReader::open(
            &clip,
            VideoReaderOptions {
                looped: true,
                ..opts(W, H)
            },
        )
        .expect("open");
        for k in 0..50u32 {
            let t = f64::from(k) / 25.0;
            let got = r.frame_at(t).expect("frame").to_vec();
            assert_is_frame(&got, &refs, k as usize, &format!("vp9 t={t}"));
        }
        let a = r.frame_at(2.5).expect("2.5").to_vec();
        let b = r.frame_at(0.5).expect("0.5").to_vec();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_duration_loops_after_discovering_the_end() {
        let dir = TempDir::new("dec_nodur");
        // Raw H.264 elementary stream: no container duration.
        let clip = make_clip(&dir, "x.h264", &["-c:v", "libx264", "-f", "h264"]);
        let mut r = VideoReader::open(
            &clip,
            VideoReaderOptions {
                looped: true,
                ..opts(W, H)
            },
        )
        .expect("open");
        let (_, _, _, dur) = r.source_info();
        assert_eq!(dur, None, "raw h264 has no duration");
        let mut first_pass = Vec::new();
        for k in 0..50u32 {
            first_pass.push(r.frame_at(f64::from(k) / 25.0).expect("frame").to_vec());
        }
        let wrapped = r.frame_at(2.0 + 0.2).expect("wrapped").to_vec();
        let used = r.used_duration().expect("discovered");
        assert!((used - 2.0).abs() < 0.05, "discovered {used}");
        assert_eq!(wrapped, first_pass[5]);

        let mut held = VideoReader::open(&clip, opts(W, H)).expect("open");
        assert_eq!(held.frame_at(100.0).expect("held"), &first_pass[49][..]);
    }

    #[test]
    fn errors_are_reported_not_panics() {
        let dir = TempDir::new("dec_err");
        let missing = dir.path("missing.mp4");
        assert!(matches!(
            VideoReader::open(&missing, opts(W, H)),
            Err(MediaError::NotFound { .. })
        ));

        let random = dir.path("random.mp4");
        let bytes: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        std::fs::write(&random, bytes).expect("w");
        let err = VideoReader::open(&random, opts(W, H))
            .and_then(|mut r| r.frame_at(0.0).map(|_| ()))
            .expect_err("random bytes");
        assert!(err.to_string().contains("random.mp4"), "{err}");

        // moov at the end: cutting the file loses the index.
        let clip = make_clip(&dir, "x.mp4", &[]);
        let data = std::fs::read(&clip).expect("read");
        let cut = dir.path("cut.mp4");
        std::fs::write(&cut, &data[..data.len() / 2]).expect("w");
        assert!(VideoReader::open(&cut, opts(W, H)).is_err());

        // Fast start, cut in the middle of the media data: must not panic; frames before
        // the cut still decode.
        let fast = make_clip(&dir, "fast.mp4", &["-movflags", "+faststart"]);
        let data = std::fs::read(&fast).expect("read");
        let cut_fast = dir.path("cut_fast.mp4");
        std::fs::write(&cut_fast, &data[..data.len() / 2]).expect("w");
        if let Ok(mut r) = VideoReader::open(&cut_fast, opts(W, H)) {
            for k in 0..60 {
                if r.frame_at(f64::from(k) * 0.04).is_err() {
                    break;
                }
            }
        }

        // Audio only.
        let audio = dir.path("tone.m4a");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            audio.to_str().expect("utf8"),
        ]);
        assert!(matches!(
            VideoReader::open(&audio, opts(W, H)),
            Err(MediaError::NoVideoStream { .. })
        ));

        // Bad options and times.
        assert!(VideoReader::open(&clip, opts(0, H)).is_err());
        assert!(VideoReader::open(
            &clip,
            VideoReaderOptions {
                trim_start: -1.0,
                ..opts(W, H)
            }
        )
        .is_err());
        let mut r = VideoReader::open(&clip, opts(W, H)).expect("open");
        assert!(r.frame_at(f64::NAN).is_err());
        assert!(r.frame_at(-0.5).is_err());
    }
}
