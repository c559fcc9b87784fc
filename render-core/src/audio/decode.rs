//! Decoding any audio file FFmpeg reads into [`Pcm`].
//!
//! The best audio stream of the file is decoded frame by frame; each frame's samples, whatever
//! their format (u8, s16, s32, s64, flt, dbl; packed or planar), are converted to `f32` and
//! mapped to stereo: mono is duplicated to both channels, more channels are downmixed with
//! ITU-R BS.775 coefficients (centre and surrounds at -3 dB, LFE dropped). The result is then
//! converted to 48 kHz by [`resample`](super::resample).
//!
//! Decoding is strict: a packet the demuxer or decoder rejects is an error
//! ([`AudioError::Corrupt`]), not a glitch to skip, unless it is the last packet of the
//! stream. A file that ends early (a cut-off upload or download) decodes to the audio before
//! the cut; that is logged as a warning.

use std::path::Path;
use std::sync::Once;

use ffmpeg::{codec, format, frame, media, ChannelLayout, Packet};
use ffmpeg_next as ffmpeg;

use super::resample::{self, MAX_INPUT_RATE, MIN_INPUT_RATE};
use super::{AudioError, Pcm, CHANNELS};
use crate::media::CodecStep;

/// Longest audio [`decode_file`] accepts, in seconds of decoded audio (30 minutes, about
/// 700 MB at 48 kHz stereo `f32`). Bounds the memory a small, highly compressed file can make
/// the decoder allocate.
pub const MAX_DECODED_SECS: f64 = 1800.0;

/// Consecutive "try again" answers from a decoder, or failed reads from a demuxer, before the
/// stream is declared corrupt; guards against loops that make no progress.
const MAX_STALLS: usize = 64;

/// The name used for `path` in error messages: its file name, or the whole path if it has none.
fn display_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registers devices and, on old FFmpeg, formats; it cannot fail on FFmpeg >= 5.
        let _ = ffmpeg::init();
    });
}

/// Decodes the best audio stream of the file at `path` to 48 kHz interleaved stereo `f32`.
///
/// Accepts any container and codec the system FFmpeg decodes (WAV, MP3, M4A/AAC, Ogg
/// Vorbis/Opus, FLAC, ...), any sample format and any sample rate from 1 kHz to 768 kHz. Mono
/// is duplicated to both channels; more than two channels are downmixed (BS.775: centre and
/// surrounds at -3 dB, LFE dropped, normalized so full-scale input cannot exceed full scale).
/// Rates other than 48 kHz are converted with rubato's FFT resampler, whose delay is
/// compensated: audio at `t` seconds in the file is at `t` seconds in the result.
///
/// Encoder delay (MP3 LAME/Xing headers, AAC priming in MP4 edit lists, Opus pre-skip) is
/// removed by FFmpeg, so lossy files are aligned too.
///
/// # Errors
/// [`AudioError::NotFound`] and [`AudioError::Io`] for paths that cannot be read;
/// [`AudioError::Open`] for data FFmpeg cannot identify; [`AudioError::NoAudioStream`];
/// [`AudioError::Codec`] for an audio codec without a decoder; [`AudioError::Corrupt`] when
/// reading or decoding fails part-way and more audio follows (damage confined to the final
/// packet, as in a cut-off file, keeps the audio before it and is logged as a warning);
/// [`AudioError::Unsupported`] for decoded audio with an invalid format, channel count or
/// rate; [`AudioError::Empty`] when no samples decode;
/// [`AudioError::TooLong`] past [`MAX_DECODED_SECS`]; [`AudioError::NonFiniteSamples`] for
/// floating-point files holding NaN or infinity; [`AudioError::Resample`].
#[tracing::instrument(level = "debug", skip_all)]
pub fn decode_file(path: &Path) -> Result<Pcm, AudioError> {
    let file = display_name(path);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(AudioError::Io {
                file,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AudioError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(source) => return Err(AudioError::Io { file, source }),
    }
    init_ffmpeg();

    let mut input = format::input(path).map_err(|source| AudioError::Open {
        file: file.clone(),
        source,
    })?;
    let (stream_index, parameters, time_base, declared_secs) = {
        let stream = input
            .streams()
            .best(media::Type::Audio)
            .ok_or_else(|| AudioError::NoAudioStream { file: file.clone() })?;
        let time_base = stream.time_base();
        let declared = (stream.duration() > 0 && time_base.denominator() > 0)
            .then(|| stream.duration() as f64 * f64::from(time_base));
        (stream.index(), stream.parameters(), time_base, declared)
    };
    // MP4-family containers declare the exact duration (edit list / sample table), but
    // FFmpeg 5.1 does not drop the encoder padding at the end of the last AAC frame: trim to
    // the declared duration there. Elsewhere declared durations may be estimates.
    let exact_duration = declared_secs.filter(|_| input.format().name().contains("mp4"));
    let codec_name = parameters.id().name().to_owned();
    let codec_error = |source| AudioError::Codec {
        file: file.clone(),
        codec: codec_name.clone(),
        source,
    };
    let context = codec::Context::from_parameters(parameters).map_err(codec_error)?;
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(time_base);
    let mut decoder = decoder.audio().map_err(codec_error)?;

    let mut sink = Sink::new(file.clone());
    let mut packet = Packet::empty();
    let mut frame = frame::Audio::empty();
    // A read or decode failure is fatal unless the stream ends right after it: damage in the
    // last packet is what a cut-off file looks like, and the audio before it is kept.
    let mut damage: Option<ffmpeg::Error> = None;
    let mut failed_reads = 0;
    loop {
        match packet.read(&mut input) {
            Ok(()) => failed_reads = 0,
            Err(ffmpeg::Error::Eof) => break,
            Err(source) => {
                // An I/O error repeats on every later read; give up on it eventually.
                failed_reads += 1;
                if failed_reads > MAX_STALLS {
                    return Err(sink.corrupt(source));
                }
                damage.get_or_insert(source);
                continue;
            }
        }
        if packet.stream() != stream_index {
            continue;
        }
        if let Some(source) = damage.take() {
            return Err(sink.corrupt(source));
        }
        damage = sink.decode(&mut decoder, &packet, &mut frame)?;
    }
    let flushed = match decoder.send_eof() {
        Ok(()) | Err(ffmpeg::Error::Eof) => sink.drain(&mut decoder, &mut frame)?,
        Err(source) => Some(source),
    };
    if let Some(source) = damage.or(flushed) {
        tracing::warn!(
            decoded_secs = sink.secs,
            error = %source,
            "audio stream ends in damaged data; keeping the audio before it"
        );
    }
    if let Some(secs) = exact_duration {
        sink.truncate(secs);
    }
    sink.finish()
}

/// Decoded audio collected so far: runs of stereo samples, one per input sample rate (a
/// stream may change rate part-way; each run is resampled on its own).
struct Sink {
    file: String,
    runs: Vec<Run>,
    /// Seconds of audio decoded so far.
    secs: f64,
    /// One frame's samples as `f32`, interleaved in the frame's own channel count.
    scratch: Vec<f32>,
    /// Downmix matrix for the last layout seen: `(layout bits, channels, [left, right] gains)`.
    downmix: Option<(u64, usize, Vec<[f32; 2]>)>,
}

struct Run {
    rate: u32,
    stereo: Vec<f32>,
}

/// A sample format as this module reads it.
#[derive(Clone, Copy)]
enum Kind {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Kind {
    fn bytes(self) -> usize {
        match self {
            Kind::U8 => 1,
            Kind::I16 => 2,
            Kind::I32 | Kind::F32 => 4,
            Kind::I64 | Kind::F64 => 8,
        }
    }
}

impl Sink {
    fn new(file: String) -> Self {
        Self {
            file,
            runs: Vec::new(),
            secs: 0.0,
            scratch: Vec::new(),
            downmix: None,
        }
    }

    fn corrupt(&self, source: ffmpeg::Error) -> AudioError {
        AudioError::Corrupt {
            file: self.file.clone(),
            at_secs: self.secs,
            source,
        }
    }

    fn unsupported(&self, detail: String) -> AudioError {
        AudioError::Unsupported {
            file: self.file.clone(),
            detail,
        }
    }

    /// Sends one packet to the decoder and takes the frames it produces. Returns the
    /// decoder's error if it rejects the data.
    fn decode(
        &mut self,
        decoder: &mut codec::decoder::Audio,
        packet: &Packet,
        frame: &mut frame::Audio,
    ) -> Result<Option<ffmpeg::Error>, AudioError> {
        let mut stalls = 0;
        loop {
            match CodecStep::of(decoder.send_packet(packet)) {
                Ok(CodecStep::Done) => break,
                Ok(CodecStep::Again) if stalls < MAX_STALLS => {
                    stalls += 1;
                    if let Some(e) = self.drain(decoder, frame)? {
                        return Ok(Some(e));
                    }
                }
                // A decoder that keeps refusing input, or is already flushed, rejects the data.
                Ok(step) => return Ok(step.error()),
                Err(e) => return Ok(Some(e)),
            }
        }
        self.drain(decoder, frame)
    }

    /// Takes every frame the decoder has ready. Returns the decoder's error if it fails.
    fn drain(
        &mut self,
        decoder: &mut codec::decoder::Audio,
        frame: &mut frame::Audio,
    ) -> Result<Option<ffmpeg::Error>, AudioError> {
        loop {
            match CodecStep::of(decoder.receive_frame(frame)) {
                Ok(CodecStep::Done) => self.push(frame)?,
                Ok(CodecStep::Again | CodecStep::Eof) => return Ok(None),
                Err(e) => return Ok(Some(e)),
            }
        }
    }

    /// Converts one decoded frame to stereo `f32` and appends it.
    fn push(&mut self, frame: &frame::Audio) -> Result<(), AudioError> {
        let samples = frame.samples();
        if samples == 0 {
            return Ok(());
        }
        let rate = frame.rate();
        if !(MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&rate) {
            return Err(self.unsupported(format!(
                "sample rate {rate} Hz out of range {MIN_INPUT_RATE}..={MAX_INPUT_RATE}"
            )));
        }
        let channels = usize::from(frame.channels());
        if channels == 0 {
            return Err(self.unsupported("frame with 0 channels".to_owned()));
        }
        let format = frame.format();
        let (kind, planar) = match format {
            format::Sample::U8(t) => (Kind::U8, t),
            format::Sample::I16(t) => (Kind::I16, t),
            format::Sample::I32(t) => (Kind::I32, t),
            format::Sample::I64(t) => (Kind::I64, t),
            format::Sample::F32(t) => (Kind::F32, t),
            format::Sample::F64(t) => (Kind::F64, t),
            format::Sample::None => {
                return Err(self.unsupported("frame without a sample format".to_owned()))
            }
        };
        let planar = planar == format::sample::Type::Planar;

        self.secs += samples as f64 / f64::from(rate);
        if self.secs > MAX_DECODED_SECS {
            return Err(AudioError::TooLong {
                file: self.file.clone(),
                max_secs: MAX_DECODED_SECS,
            });
        }

        // Frame samples → interleaved f32 in `scratch`.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.resize(samples * channels, 0.0);
        let planes = if planar { channels } else { 1 };
        if frame.planes() < planes {
            return Err(self.unsupported(format!(
                "{} frame with {} of {planes} data planes",
                format.name(),
                frame.planes()
            )));
        }
        let plane_bytes = samples * kind.bytes() * if planar { 1 } else { channels };
        for plane in 0..planes {
            let Some(bytes) = frame.data(plane).get(..plane_bytes) else {
                return Err(self.unsupported(format!(
                    "{} frame of {samples} samples holds fewer bytes than that",
                    format.name()
                )));
            };
            if planar {
                convert(
                    kind,
                    bytes,
                    scratch.iter_mut().skip(plane).step_by(channels),
                );
            } else {
                convert(kind, bytes, scratch.iter_mut());
            }
        }
        if matches!(kind, Kind::F32 | Kind::F64) && scratch.iter().any(|v| !v.is_finite()) {
            return Err(AudioError::NonFiniteSamples {
                file: self.file.clone(),
            });
        }

        let run = match self.runs.last_mut() {
            Some(run) if run.rate == rate => run,
            _ => {
                self.runs.push(Run {
                    rate,
                    stereo: Vec::new(),
                });
                let last = self.runs.len() - 1;
                &mut self.runs[last]
            }
        };
        run.stereo.reserve(samples * CHANNELS);
        match channels {
            1 => run.stereo.extend(scratch.iter().flat_map(|&v| [v, v])),
            2 => run.stereo.extend_from_slice(&scratch),
            _ => {
                let bits = frame.channel_layout().bits();
                let matrix = match &self.downmix {
                    Some((b, c, m)) if *b == bits && *c == channels => m,
                    _ => {
                        let m = downmix_matrix(bits, channels);
                        &self.downmix.insert((bits, channels, m)).2
                    }
                };
                for input in scratch.chunks_exact(channels) {
                    let (mut l, mut r) = (0.0f32, 0.0f32);
                    for (v, g) in input.iter().zip(matrix) {
                        l += v * g[0];
                        r += v * g[1];
                    }
                    run.stereo.push(l);
                    run.stereo.push(r);
                }
            }
        }
        self.scratch = scratch;
        Ok(())
    }

    /// Drops whatever was decoded past `secs` seconds.
    fn truncate(&mut self, secs: f64) {
        let mut start = 0.0;
        let mut keep_runs = self.runs.len();
        for (i, run) in self.runs.iter_mut().enumerate() {
            let frames = run.stereo.len() / CHANNELS;
            let run_secs = frames as f64 / f64::from(run.rate);
            if start + run_secs > secs {
                let keep = ((secs - start) * f64::from(run.rate)).round().max(0.0) as usize;
                run.stereo.truncate(keep.min(frames) * CHANNELS);
                keep_runs = i + 1;
                break;
            }
            start += run_secs;
        }
        self.runs.truncate(keep_runs);
    }

    /// Resamples every run to 48 kHz and joins them.
    fn finish(self) -> Result<Pcm, AudioError> {
        if self.runs.iter().all(|r| r.stereo.is_empty()) {
            return Err(AudioError::Empty { file: self.file });
        }
        let mut samples = Vec::new();
        for run in self.runs {
            let converted = resample::to_output_rate(run.stereo, run.rate)?;
            if samples.is_empty() {
                samples = converted;
            } else {
                samples.extend_from_slice(&converted);
            }
        }
        tracing::debug!(frames = samples.len() / CHANNELS, "decoded");
        Ok(Pcm { samples })
    }
}

/// Writes `bytes`, native-endian samples of `kind`, as `f32` in -1.0..1.0 to `dst`.
fn convert<'a>(kind: Kind, bytes: &[u8], dst: impl Iterator<Item = &'a mut f32>) {
    match kind {
        Kind::U8 => {
            for (d, &b) in dst.zip(bytes) {
                *d = (f32::from(b) - 128.0) / 128.0;
            }
        }
        Kind::I16 => {
            for (d, b) in dst.zip(bytes.chunks_exact(2)) {
                *d = f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32_768.0;
            }
        }
        Kind::I32 => {
            for (d, b) in dst.zip(bytes.chunks_exact(4)) {
                let v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                *d = (f64::from(v) / 2_147_483_648.0) as f32;
            }
        }
        Kind::I64 => {
            for (d, b) in dst.zip(bytes.chunks_exact(8)) {
                let v = i64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                *d = (v as f64 / 9_223_372_036_854_775_808.0) as f32;
            }
        }
        Kind::F32 => {
            for (d, b) in dst.zip(bytes.chunks_exact(4)) {
                *d = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Kind::F64 => {
            for (d, b) in dst.zip(bytes.chunks_exact(8)) {
                *d = f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32;
            }
        }
    }
}

/// Left/right gains for each of `channels` channels laid out as `layout_bits` (FFmpeg's
/// native channel order: ascending bit position). An unknown or inconsistent layout takes
/// FFmpeg's default layout for the channel count; channels still without a position are
/// spread equally to both sides. Rows are scaled so that neither output can exceed the sum of
/// full-scale inputs reaching it beyond 1.0.
fn downmix_matrix(layout_bits: u64, channels: usize) -> Vec<[f32; 2]> {
    const C: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let mut bits = layout_bits;
    if bits.count_ones() as usize != channels {
        let default = ChannelLayout::default(i32::try_from(channels).unwrap_or(0)).bits();
        bits = if default.count_ones() as usize == channels {
            default
        } else {
            0
        };
    }
    let positions: Vec<u64> = (0..64)
        .map(|b| 1u64 << b)
        .filter(|m| bits & m != 0)
        .collect();
    let left = ChannelLayout::FRONT_LEFT
        | ChannelLayout::FRONT_LEFT_OF_CENTER
        | ChannelLayout::STEREO_LEFT;
    let right = ChannelLayout::FRONT_RIGHT
        | ChannelLayout::FRONT_RIGHT_OF_CENTER
        | ChannelLayout::STEREO_RIGHT;
    let left_sur = ChannelLayout::BACK_LEFT
        | ChannelLayout::SIDE_LEFT
        | ChannelLayout::WIDE_LEFT
        | ChannelLayout::SURROUND_DIRECT_LEFT
        | ChannelLayout::TOP_FRONT_LEFT
        | ChannelLayout::TOP_BACK_LEFT;
    let right_sur = ChannelLayout::BACK_RIGHT
        | ChannelLayout::SIDE_RIGHT
        | ChannelLayout::WIDE_RIGHT
        | ChannelLayout::SURROUND_DIRECT_RIGHT
        | ChannelLayout::TOP_FRONT_RIGHT
        | ChannelLayout::TOP_BACK_RIGHT;
    let lfe = ChannelLayout::LOW_FREQUENCY | ChannelLayout::LOW_FREQUENCY_2;

    let mut matrix: Vec<[f32; 2]> = (0..channels)
        .map(|ch| {
            let Some(&m) = positions.get(ch) else {
                return [C, C];
            };
            if left.bits() & m != 0 {
                [1.0, 0.0]
            } else if right.bits() & m != 0 {
                [0.0, 1.0]
            } else if left_sur.bits() & m != 0 {
                [C, 0.0]
            } else if right_sur.bits() & m != 0 {
                [0.0, C]
            } else if lfe.bits() & m != 0 {
                [0.0, 0.0]
            } else {
                // Centres: front, back, top.
                [C, C]
            }
        })
        .collect();
    let max_sum = [0, 1]
        .map(|side| matrix.iter().map(|g| g[side]).sum::<f32>())
        .into_iter()
        .fold(0.0f32, f32::max);
    if max_sum > 1.0 {
        for g in &mut matrix {
            g[0] /= max_sum;
            g[1] /= max_sum;
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_util::{
        estimate_frequency, ffmpeg, noise_bytes, peak_frame, rms, tone_amplitude, TempDir,
    };
    use std::path::PathBuf;

    /// A two-second source from lavfi, encoded with `codec_args` into `name`.
    struct Case {
        name: &'static str,
        source: &'static str,
        codec_args: &'static [&'static str],
        /// Allowed length error, in frames at 48 kHz.
        length_tolerance: usize,
        /// Left is 440 Hz; right is 660 Hz when true, else a copy of the left.
        distinct_right: bool,
    }

    const fn case(
        name: &'static str,
        source: &'static str,
        codec_args: &'static [&'static str],
        length_tolerance: usize,
        distinct_right: bool,
    ) -> Case {
        Case {
            name,
            source,
            codec_args,
            length_tolerance,
            distinct_right,
        }
    }

    const MONO_8K: &str = "sine=frequency=440:sample_rate=8000:duration=2";
    const MONO_16K: &str = "sine=frequency=440:sample_rate=16000:duration=2";
    const MONO_22K: &str = "sine=frequency=440:sample_rate=22050:duration=2";
    const MONO_44K: &str = "sine=frequency=440:sample_rate=44100:duration=2";
    const STEREO_22K: &str = concat!(
        "aevalsrc=exprs=0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):duration=2",
        ":sample_rate=22050"
    );
    const STEREO_44K: &str = concat!(
        "aevalsrc=exprs=0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):duration=2",
        ":sample_rate=44100"
    );
    const STEREO_48K: &str = concat!(
        "aevalsrc=exprs=0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):duration=2",
        ":sample_rate=48000"
    );
    const STEREO_96K: &str = concat!(
        "aevalsrc=exprs=0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):duration=2",
        ":sample_rate=96000"
    );

    /// The sample formats decoders produce: u8, s16, s32, flt, dbl packed (PCM WAV, FLAC);
    /// s16p (IMA ADPCM, ALAC) and fltp (MP3, AAC, Vorbis, Opus) planar; rates 8 to 96 kHz.
    const CASES: &[Case] = &[
        case(
            "s16_mono_44k.wav",
            MONO_44K,
            &["-c:a", "pcm_s16le"],
            1,
            false,
        ),
        case("u8_mono_8k.wav", MONO_8K, &["-c:a", "pcm_u8"], 1, false),
        case(
            "s32_stereo_96k.wav",
            STEREO_96K,
            &["-c:a", "pcm_s32le"],
            1,
            true,
        ),
        case(
            "f32_stereo_22k.wav",
            STEREO_22K,
            &["-c:a", "pcm_f32le"],
            1,
            true,
        ),
        case(
            "f64_mono_16k.wav",
            MONO_16K,
            &["-c:a", "pcm_f64le"],
            1,
            false,
        ),
        // IMA ADPCM pads the last block, like FFmpeg's own CLI decode.
        case(
            "s16p_adpcm_44k.wav",
            STEREO_44K,
            &["-c:a", "adpcm_ima_wav"],
            2048,
            true,
        ),
        case(
            "s16_stereo_44k.flac",
            STEREO_44K,
            &["-c:a", "flac"],
            1,
            true,
        ),
        case(
            "s32_stereo_48k.flac",
            STEREO_48K,
            &["-c:a", "flac", "-sample_fmt", "s32"],
            1,
            true,
        ),
        case(
            "fltp_stereo_44k.mp3",
            STEREO_44K,
            &["-c:a", "libmp3lame", "-b:a", "192k"],
            48,
            true,
        ),
        case(
            "fltp_mono_22k.mp3",
            MONO_22K,
            &["-c:a", "libmp3lame"],
            48,
            false,
        ),
        case(
            "fltp_stereo_44k.m4a",
            STEREO_44K,
            &["-c:a", "aac", "-b:a", "160k"],
            48,
            true,
        ),
        case(
            "fltp_stereo_44k.ogg",
            STEREO_44K,
            &["-c:a", "libvorbis"],
            48,
            true,
        ),
        case(
            "flt_stereo_48k.opus",
            STEREO_48K,
            &["-c:a", "libopus", "-b:a", "128k"],
            48,
            true,
        ),
        case("s16p_alac_44k.m4a", STEREO_44K, &["-c:a", "alac"], 1, true),
    ];

    fn generate(dir: &TempDir, case: &Case) -> PathBuf {
        let mut args = vec!["-f", "lavfi", "-i", case.source];
        args.extend_from_slice(case.codec_args);
        ffmpeg(&args, &dir.join(case.name))
    }

    #[test]
    fn decodes_every_format_to_48k_stereo() {
        let dir = TempDir::new("formats");
        for case in CASES {
            let path = generate(&dir, case);
            let pcm = decode_file(&path).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let frames = pcm.frames();
            eprintln!("{}: {} frames", case.name, frames);
            assert!(
                frames.abs_diff(96_000) <= case.length_tolerance,
                "{}: {frames} frames, expected 96000 ± {}",
                case.name,
                case.length_tolerance
            );
            let s = &pcm.samples;
            let left = estimate_frequency(s, 0, 4_800, 91_200);
            assert!(
                (left - 440.0).abs() < 1.0,
                "{}: left at {left} Hz",
                case.name
            );
            let right = estimate_frequency(s, 1, 4_800, 91_200);
            let expect_right = if case.distinct_right { 660.0 } else { 440.0 };
            assert!(
                (right - expect_right).abs() < 1.0,
                "{}: right at {right} Hz",
                case.name
            );
            if !case.distinct_right {
                let diff = s
                    .chunks_exact(2)
                    .map(|f| (f[0] - f[1]).abs())
                    .fold(0.0, f32::max);
                assert_eq!(diff, 0.0, "{}: mono not duplicated", case.name);
            }
            let level = rms(s, 0, 4_800, 91_200);
            assert!(level > 0.05, "{}: rms {level}", case.name);
        }
    }

    /// First frame where `channel` exceeds `threshold` in magnitude.
    fn onset(samples: &[f32], ch: usize, threshold: f32) -> Option<usize> {
        samples
            .chunks_exact(2)
            .position(|f| f[ch].abs() > threshold)
    }

    #[test]
    fn tone_onset_is_aligned_in_every_format() {
        // A 440 Hz tone of amplitude 0.5 starting at exactly 0.5 s crosses 0.1 (20 %) after
        // asin(0.2) / (2π · 440) = 73 µs: at frame 24003.5.
        let dir = TempDir::new("onset");
        let formats: &[(&str, &[&str], &str)] = &[
            ("44k.wav", &["-c:a", "pcm_s16le"], "44100"),
            ("22k.wav", &["-c:a", "pcm_s16le"], "22050"),
            ("11k.wav", &["-c:a", "pcm_f32le"], "11025"),
            ("96k.flac", &["-c:a", "flac"], "96000"),
            ("44k.mp3", &["-c:a", "libmp3lame", "-b:a", "192k"], "44100"),
            ("44k.m4a", &["-c:a", "aac", "-b:a", "192k"], "44100"),
            ("44k.ogg", &["-c:a", "libvorbis"], "44100"),
            ("48k.opus", &["-c:a", "libopus", "-b:a", "128k"], "48000"),
        ];
        for (name, codec, rate) in formats {
            let source = format!(
                "aevalsrc=exprs=if(gte(t\\,0.5)\\,0.5*sin(2*PI*440*(t-0.5))\\,0):\
                 sample_rate={rate}:duration=1"
            );
            let mut args = vec!["-f", "lavfi", "-i", &source];
            args.extend_from_slice(codec);
            let path = ffmpeg(&args, &dir.join(name));
            let pcm = decode_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let at = onset(&pcm.samples, 0, 0.1).unwrap_or(0) as f64;
            let error_ms = (at - 24_003.5) / 48.0;
            assert!(
                error_ms.abs() <= 1.0,
                "{name}: onset off by {error_ms:.3} ms"
            );
        }
    }

    #[test]
    fn click_lands_on_its_frame() {
        let dir = TempDir::new("click");
        for rate in [44_100u32, 22_050, 32_000, 88_200] {
            // One full-scale-ish sample at exactly 0.5 s.
            let source = format!(
                "aevalsrc=exprs=if(eq(n\\,{})\\,0.9\\,0):sample_rate={rate}:duration=1",
                rate / 2
            );
            let path = ffmpeg(
                &["-f", "lavfi", "-i", &source, "-c:a", "pcm_f32le"],
                &dir.join(&format!("click{rate}.wav")),
            );
            let pcm = decode_file(&path).expect("decode click");
            let at = peak_frame(&pcm.samples, 0);
            assert!(at.abs_diff(24_000) <= 1, "{rate} Hz: click at frame {at}");
        }
    }

    #[test]
    fn downmixes_surround() {
        let dir = TempDir::new("surround");
        let tone = "0.5*sin(2*PI*440*t)";
        let gen = |name: &str, exprs: String| {
            let source =
                format!("aevalsrc=exprs={exprs}:channel_layout=5.1:sample_rate=48000:duration=1");
            ffmpeg(
                &["-f", "lavfi", "-i", &source, "-c:a", "pcm_s16le"],
                &dir.join(name),
            )
        };
        // 5.1 is FL FR FC LFE SL SR; the left output sums FL + 0.707 FC + 0.707 SL, scaled
        // by 1 / (1 + 2 · 0.707) so full-scale input cannot clip.
        let norm = 1.0 / (1.0 + 2.0 * std::f64::consts::FRAC_1_SQRT_2);

        let centre = decode_file(&gen("centre.wav", format!("0|0|{tone}|0|0|0"))).expect("decode");
        let (l, r) = (
            tone_amplitude(&centre.samples, 0, 4_800, 43_200, 440.0),
            tone_amplitude(&centre.samples, 1, 4_800, 43_200, 440.0),
        );
        let expect = 0.5 * std::f64::consts::FRAC_1_SQRT_2 * norm;
        assert!(
            (l - expect).abs() < 0.002 && (r - expect).abs() < 0.002,
            "{l} {r} vs {expect}"
        );

        let front_left = decode_file(&gen("fl.wav", format!("{tone}|0|0|0|0|0"))).expect("decode");
        let l = tone_amplitude(&front_left.samples, 0, 4_800, 43_200, 440.0);
        assert!((l - 0.5 * norm).abs() < 0.002, "{l}");
        assert!(rms(&front_left.samples, 1, 0, 48_000) < 1e-4);

        let surround_right =
            decode_file(&gen("sr.wav", format!("0|0|0|0|0|{tone}"))).expect("decode");
        assert!(rms(&surround_right.samples, 0, 0, 48_000) < 1e-4);
        let r = tone_amplitude(&surround_right.samples, 1, 4_800, 43_200, 440.0);
        assert!(
            (r - 0.5 * std::f64::consts::FRAC_1_SQRT_2 * norm).abs() < 0.002,
            "{r}"
        );

        let lfe = decode_file(&gen("lfe.wav", format!("0|0|0|{tone}|0|0"))).expect("decode");
        assert!(rms(&lfe.samples, 0, 0, 48_000) < 1e-4);
        assert!(rms(&lfe.samples, 1, 0, 48_000) < 1e-4);
    }

    #[test]
    fn downmix_matrix_of_unknown_layouts_spreads_channels() {
        // Three channels with no layout take FFmpeg's default (2.1 → FL FR LFE).
        let m = downmix_matrix(0, 3);
        assert_eq!(m, vec![[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]);
        // 40 channels have no default layout: all spread equally, scaled to full scale.
        let m = downmix_matrix(0, 40);
        assert_eq!(m.len(), 40);
        let sum: f32 = m.iter().map(|g| g[0]).sum();
        assert!((sum - 1.0).abs() < 1e-5 && m.iter().all(|g| g[0] == g[1]));
    }

    #[test]
    fn sample_rate_change_mid_stream() {
        // Two MP3 streams at different rates, concatenated: the decoder reports the new rate
        // part-way, and each part is resampled on its own.
        let dir = TempDir::new("ratechange");
        let a = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=1",
                "-c:a",
                "libmp3lame",
                "-write_xing",
                "0",
                "-id3v2_version",
                "0",
            ],
            &dir.join("a.mp3"),
        );
        let b = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=22050:duration=1",
                "-c:a",
                "libmp3lame",
                "-write_xing",
                "0",
                "-id3v2_version",
                "0",
            ],
            &dir.join("b.mp3"),
        );
        let mut joined = std::fs::read(a).expect("read a");
        joined.extend(std::fs::read(b).expect("read b"));
        let path = dir.join("joined.mp3");
        std::fs::write(&path, joined).expect("write");
        let pcm = decode_file(&path).expect("decode");
        // Without gapless headers each part keeps its encoder delay and padding (< 0.1 s
        // each).
        assert!(
            pcm.frames().abs_diff(96_000) < 9_600,
            "{} frames",
            pcm.frames()
        );
        for (from, to) in [(9_600, 38_400), (60_000, 86_400)] {
            let f = estimate_frequency(&pcm.samples, 0, from, to);
            assert!((f - 440.0).abs() < 1.0, "{f} Hz in frames {from}..{to}");
        }
    }

    #[test]
    fn decoding_is_deterministic() {
        let dir = TempDir::new("determinism");
        let path = generate(&dir, &CASES[10]);
        let a = decode_file(&path).expect("decode");
        let b = decode_file(&path).expect("decode");
        assert!(a
            .samples
            .iter()
            .zip(&b.samples)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.samples.len(), b.samples.len());
    }

    /// A RIFF/WAVE file: `format` 1 is integer PCM, 3 is IEEE float.
    fn wav_bytes(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&format.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = TempDir::new("missing");
        let path = dir.join("voice.mp3");
        let err = decode_file(&path).expect_err("missing file");
        assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("voice.mp3") && err.to_string().contains("not found"));
    }

    #[test]
    fn directory_is_an_io_error() {
        let dir = TempDir::new("dir");
        let sub = dir.join("music.wav");
        std::fs::create_dir(&sub).expect("mkdir");
        let err = decode_file(&sub).expect_err("directory");
        assert!(matches!(err, AudioError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("audio file `music.wav` cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_garbage_files_are_errors() {
        let dir = TempDir::new("garbage");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty.mp3", Vec::new()),
            ("noise.wav", noise_bytes(64 * 1024, 7)),
            ("noise.m4a", noise_bytes(4096, 11)),
            ("text.mp3", b"this is not audio at all\n".repeat(100)),
            (
                "header_only.wav",
                wav_bytes(1, 2, 44_100, 16, &[])[..20].to_vec(),
            ),
        ];
        for (name, bytes) in cases {
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("write");
            let err = decode_file(&path).expect_err(name);
            let msg = err.to_string();
            assert!(msg.contains(name), "{name}: {msg}");
            assert!(
                !msg.contains(&*dir.join("").to_string_lossy()),
                "full path in {msg}"
            );
        }
    }

    #[test]
    fn zero_samples_is_an_empty_error() {
        let dir = TempDir::new("zero");
        let path = dir.join("silence.wav");
        std::fs::write(&path, wav_bytes(1, 1, 44_100, 16, &[])).expect("write");
        let err = decode_file(&path).expect_err("no samples");
        assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "audio file `silence.wav` contains no samples"
        );
    }

    #[test]
    fn non_finite_float_samples_are_rejected() {
        let dir = TempDir::new("nan");
        let data: Vec<u8> = [0.1f32, 0.2, f32::NAN, 0.3, f32::INFINITY, 0.0]
            .iter()
            .cycle()
            .take(4_800)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let path = dir.join("nan.wav");
        std::fs::write(&path, wav_bytes(3, 1, 48_000, 32, &data)).expect("write");
        let err = decode_file(&path).expect_err("NaN samples");
        assert!(
            matches!(err, AudioError::NonFiniteSamples { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn file_without_audio_names_the_file() {
        let dir = TempDir::new("noaudio");
        let png = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=16x16:d=1",
                "-frames:v",
                "1",
            ],
            &dir.join("still.png"),
        );
        let err = decode_file(&png).expect_err("image");
        assert!(matches!(err, AudioError::NoAudioStream { .. }), "{err:?}");
        assert_eq!(err.to_string(), "`still.png`: no audio stream");

        let video = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=32x32:d=0.5",
                "-c:v",
                "mpeg4",
            ],
            &dir.join("silent.mp4"),
        );
        let err = decode_file(&video).expect_err("video without sound");
        assert_eq!(err.to_string(), "`silent.mp4`: no audio stream");
    }

    #[test]
    fn truncated_wav_decodes_what_it_holds() {
        let dir = TempDir::new("truncwav");
        let path = generate(&dir, &CASES[0]);
        let bytes = std::fs::read(&path).expect("read");
        let cut = dir.join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let pcm = decode_file(&cut).expect("a truncated WAV decodes");
        assert!(
            pcm.frames().abs_diff(48_000) < 100,
            "{} frames",
            pcm.frames()
        );
    }

    #[test]
    fn truncated_and_corrupted_files_never_panic() {
        let dir = TempDir::new("corrupt");
        for case in CASES {
            let path = generate(&dir, case);
            let bytes = std::fs::read(&path).expect("read");
            let len = bytes.len();
            let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
            for percent in [3, 10, 50, 90, 99] {
                variants.push((
                    format!("cut{percent}"),
                    bytes[..len * percent / 100].to_vec(),
                ));
            }
            for seed in 1..=4u64 {
                // Overwrite runs of bytes past the header with noise.
                let mut b = bytes.clone();
                for (k, run) in noise_bytes(8 * 64, seed).chunks(64).enumerate() {
                    let at = len / 4 + (k * len / 12) % (len / 2);
                    let end = (at + run.len()).min(len);
                    b[at..end].copy_from_slice(&run[..end - at]);
                }
                variants.push((format!("noise{seed}"), b));
            }
            // Corrupt the header region too.
            let mut b = bytes.clone();
            let head = len.min(64);
            b[8..head].copy_from_slice(&noise_bytes(head - 8, 99));
            variants.push(("header".to_owned(), b));

            for (label, data) in variants {
                let name = format!("{label}_{}", case.name);
                let p = dir.join(&name);
                std::fs::write(&p, data).expect("write");
                match decode_file(&p) {
                    Ok(pcm) => {
                        assert!(pcm.samples.iter().all(|v| v.is_finite()), "{name}");
                        // Never more than the original (plus codec block padding).
                        assert!(pcm.frames() <= 96_000 + 4_800, "{name}: {}", pcm.frames());
                    }
                    Err(e) => assert!(e.to_string().contains(&name), "{name}: {e}"),
                }
            }
        }
    }

    #[test]
    fn damage_mid_stream_is_a_corrupt_error() {
        let dir = TempDir::new("midstream");
        let path = generate(&dir, &CASES[6]); // FLAC
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid..mid + 256].copy_from_slice(&noise_bytes(256, 5));
        let damaged = dir.join("damaged.flac");
        std::fs::write(&damaged, bytes).expect("write");
        let err = decode_file(&damaged).expect_err("damage mid-stream");
        assert!(matches!(err, AudioError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("`damaged.flac`: corrupt audio data after "),
            "{msg}"
        );
    }

    #[test]
    fn overlong_audio_is_rejected() {
        // 31 minutes of 8 kHz silence compresses to almost nothing.
        let dir = TempDir::new("long");
        let path = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "anullsrc=r=8000:cl=mono",
                "-t",
                "1860",
                "-c:a",
                "flac",
            ],
            &dir.join("long.flac"),
        );
        let err = decode_file(&path).expect_err("too long");
        assert!(matches!(err, AudioError::TooLong { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "audio file `long.flac` is longer than the limit of 1800 s"
        );
    }
}
