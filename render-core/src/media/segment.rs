//! Segments: runs of frames encoded independently and joined by stream copy.
//!
//! A [`SegmentEncoder`] opens libx264 afresh for each segment with the same settings, so every
//! segment starts with an IDR frame, its GOPs are closed and its parameter sets (kept out of
//! band, in the extradata) are byte for byte those of every other segment. An
//! [`EncodedSegment`] is the packets in memory; [`mux_mp4`] joins segments in order, with the
//! audio encoded once for the whole video ([`AacTrack`]), into a fast-start MP4, and
//! [`write_ts`] remuxes one segment with its share of the same audio packets into MPEG-TS for
//! an HLS playlist. Nothing is decoded or re-encoded on the way: the MP4 and the stream carry
//! the very bytes the encoder made.

use std::path::Path;

use ffmpeg_next::{format, packet, Dictionary, Packet, Rational};
use sha2::{Digest, Sha256};

use super::encode::{
    add_streams, create_output, fill_video_frame, new_audio_frame, new_video_frame, open_aac,
    open_x264,
};
use super::{sys, CodecStep, EncoderSettings, MediaError, AUDIO_SAMPLE_RATE};

/// One encoded packet: timestamps in frames (video, from the segment's first frame) or in
/// samples at 48 kHz (audio, from the start of the video).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPacket {
    /// Presentation time.
    pub pts: i64,
    /// Decode time.
    pub dts: i64,
    /// Length, in the same unit.
    pub duration: i64,
    /// A keyframe (for video: an IDR frame).
    pub key: bool,
    /// The packet's bytes as the encoder gave them (H.264 in Annex B, raw AAC).
    pub data: Vec<u8>,
}

/// One segment's H.264: its packets and the parameter sets they were encoded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSegment {
    /// Frames in the segment.
    pub frames: u64,
    /// The encoder's extradata (SPS and PPS); the same for every segment of a video.
    pub extradata: Vec<u8>,
    /// Packets in decode order.
    pub packets: Vec<EncodedPacket>,
}

/// First bytes of a stored segment, with the format's version.
const MAGIC: &[u8; 8] = b"RFSEG\x001\n";

impl EncodedSegment {
    /// Bytes of the packets (what a cache holds).
    pub fn payload_bytes(&self) -> u64 {
        self.packets.iter().map(|p| p.data.len() as u64).sum()
    }

    /// The segment as bytes: a magic, a SHA-256 of the rest, then frames, extradata and packets
    /// (little-endian lengths). [`EncodedSegment::from_bytes`] reads it back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.payload_bytes() as usize + 64);
        body.extend_from_slice(&self.frames.to_le_bytes());
        put_bytes(&mut body, &self.extradata);
        body.extend_from_slice(&(self.packets.len() as u64).to_le_bytes());
        for p in &self.packets {
            body.extend_from_slice(&p.pts.to_le_bytes());
            body.extend_from_slice(&p.dts.to_le_bytes());
            body.extend_from_slice(&p.duration.to_le_bytes());
            body.push(u8::from(p.key));
            put_bytes(&mut body, &p.data);
        }
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&Sha256::digest(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Reads bytes written by [`EncodedSegment::to_bytes`]; any damage (a wrong magic or
    /// checksum, a truncation, trailing bytes) is an error that says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a segment (bad magic)")?;
        if rest.len() < 32 {
            return Err("truncated before its checksum".to_owned());
        }
        let (sum, body) = rest.split_at(32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("checksum mismatch".to_owned());
        }
        let mut r = Reader(body);
        let frames = r.u64()?;
        let extradata = r.bytes()?.to_vec();
        let count = r.u64()?;
        let mut packets = Vec::with_capacity(count.min(100_000) as usize);
        for _ in 0..count {
            let pts = r.u64()? as i64;
            let dts = r.u64()? as i64;
            let duration = r.u64()? as i64;
            let key = r.take(1)?[0] != 0;
            let data = r.bytes()?.to_vec();
            packets.push(EncodedPacket {
                pts,
                dts,
                duration,
                key,
                data,
            });
        }
        if !r.0.is_empty() {
            return Err(format!("{} trailing bytes", r.0.len()));
        }
        if packets.len() as u64 != frames {
            return Err(format!("{} packets for {frames} frames", packets.len()));
        }
        Ok(Self {
            frames,
            extradata,
            packets,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".to_owned());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| "length out of range".to_owned())?;
        self.take(n)
    }
}

/// Encodes one segment's frames into packets in memory.
pub struct SegmentEncoder {
    settings: EncoderSettings,
    label: std::path::PathBuf,
    encoder: ffmpeg_next::encoder::video::Encoder,
    vframe: ffmpeg_next::frame::Video,
    frames: u64,
    packets: Vec<EncodedPacket>,
    packet: Packet,
}

impl std::fmt::Debug for SegmentEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentEncoder")
            .field("label", &self.label)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl SegmentEncoder {
    /// Opens libx264 with `settings` (parameter sets out of band); `label` names the segment
    /// in errors (the output it is for).
    pub fn new(settings: &EncoderSettings, label: &Path) -> Result<Self, MediaError> {
        super::init();
        if let Some(message) = settings.problems() {
            return Err(MediaError::InvalidSettings {
                path: label.to_owned(),
                message,
            });
        }
        let (_, encoder) = open_x264(settings, true, label)?;
        Ok(Self {
            settings: settings.clone(),
            label: label.to_owned(),
            encoder,
            vframe: new_video_frame(settings, label)?,
            frames: 0,
            packets: Vec::new(),
            packet: Packet::empty(),
        })
    }

    /// Encodes the next frame (planar I420, as [`super::Mp4Writer::write_video_frame`] takes).
    pub fn push(&mut self, yuv420p: &[u8]) -> Result<(), MediaError> {
        fill_video_frame(
            &mut self.vframe,
            yuv420p,
            &self.settings,
            &self.label,
            self.frames,
        )?;
        self.vframe.set_pts(Some(self.frames as i64));
        self.encoder
            .send_frame(&self.vframe)
            .map_err(|source| MediaError::Encode {
                path: self.label.clone(),
                stage: "encoding a video frame",
                source,
            })?;
        self.frames += 1;
        self.drain()
    }

    /// Flushes the encoder and returns the segment.
    pub fn finish(mut self) -> Result<EncodedSegment, MediaError> {
        self.encoder
            .send_eof()
            .map_err(|source| MediaError::Encode {
                path: self.label.clone(),
                stage: "flushing libx264",
                source,
            })?;
        self.drain()?;
        Ok(EncodedSegment {
            frames: self.frames,
            extradata: sys::extradata(&self.encoder),
            packets: self.packets,
        })
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        loop {
            match CodecStep::of(self.encoder.receive_packet(&mut self.packet)) {
                Ok(CodecStep::Done) => self.packets.push(EncodedPacket {
                    pts: self.packet.pts().unwrap_or(0),
                    dts: self.packet.dts().unwrap_or(0),
                    duration: self.packet.duration().max(1),
                    key: self.packet.is_key(),
                    data: self.packet.data().unwrap_or_default().to_vec(),
                }),
                Ok(CodecStep::Again | CodecStep::Eof) => return Ok(()),
                Err(source) => {
                    return Err(MediaError::Encode {
                        path: self.label.clone(),
                        stage: "receiving a video packet",
                        source,
                    })
                }
            }
        }
    }
}

/// A whole video's audio, AAC-LC encoded once: packets with timestamps in samples at 48 kHz.
#[derive(Debug, Clone, Default)]
pub struct AacTrack {
    /// Packets in order; the first may start before 0 (the encoder's priming).
    pub packets: Vec<EncodedPacket>,
}

impl AacTrack {
    /// Encodes interleaved stereo f32 samples at 48 kHz; `label` names the output in errors.
    pub fn encode(
        interleaved_stereo_48k: &[f32],
        settings: &EncoderSettings,
        label: &Path,
    ) -> Result<Self, MediaError> {
        super::init();
        let invalid = |message: String| MediaError::InvalidAudio {
            path: label.to_owned(),
            message,
        };
        if !interleaved_stereo_48k.len().is_multiple_of(2) {
            return Err(invalid(format!(
                "{} samples is not a whole number of stereo pairs",
                interleaved_stereo_48k.len()
            )));
        }
        if let Some(i) = interleaved_stereo_48k.iter().position(|s| !s.is_finite()) {
            return Err(invalid(format!("sample {i} is not finite")));
        }
        let enc_err = |stage: &'static str| {
            move |source| MediaError::Encode {
                path: label.to_owned(),
                stage,
                source,
            }
        };
        let (_, mut encoder, frame_len) = open_aac(settings, true, label)?;
        let mut frame = new_audio_frame(frame_len, label)?;
        let mut packets = Vec::new();
        let mut packet = Packet::empty();
        let mut drain = |encoder: &mut ffmpeg_next::encoder::audio::Encoder,
                         packets: &mut Vec<EncodedPacket>|
         -> Result<(), MediaError> {
            loop {
                match CodecStep::of(encoder.receive_packet(&mut packet)) {
                    Ok(CodecStep::Done) => packets.push(EncodedPacket {
                        pts: packet.pts().unwrap_or(0),
                        dts: packet.dts().unwrap_or(0),
                        duration: packet.duration(),
                        key: true,
                        data: packet.data().unwrap_or_default().to_vec(),
                    }),
                    Ok(CodecStep::Again | CodecStep::Eof) => return Ok(()),
                    Err(source) => return Err(enc_err("receiving an audio packet")(source)),
                }
            }
        };
        let mut done = 0u64;
        for chunk in interleaved_stereo_48k.chunks(frame_len * 2) {
            let n = chunk.len() / 2;
            sys::make_writable(&mut frame).map_err(enc_err("reusing the audio frame"))?;
            if n < frame_len {
                // AAC accepts a short last frame.
                frame.set_samples(n);
            }
            for (plane, side) in [(0usize, 0usize), (1, 1)] {
                let dst = &mut frame.plane_mut::<f32>(plane)[..n];
                for (d, pair) in dst.iter_mut().zip(chunk.chunks_exact(2)) {
                    *d = pair[side];
                }
            }
            frame.set_pts(Some(done as i64));
            encoder
                .send_frame(&frame)
                .map_err(enc_err("encoding audio"))?;
            done += n as u64;
            drain(&mut encoder, &mut packets)?;
        }
        encoder
            .send_eof()
            .map_err(enc_err("flushing the aac encoder"))?;
        drain(&mut encoder, &mut packets)?;
        Ok(Self { packets })
    }

    /// The packets that start in `[from, to)` samples; the first range (from 0) also takes
    /// the priming packets before 0.
    pub fn between(&self, from: i64, to: i64) -> &[EncodedPacket] {
        let lo = if from <= 0 {
            0
        } else {
            self.packets.partition_point(|p| p.pts < from)
        };
        let hi = self.packets.partition_point(|p| p.pts < to);
        &self.packets[lo..hi.max(lo)]
    }
}

/// The output of a muxer with an H.264 stream of `settings` whose parameter sets are
/// `extradata`, and an AAC stream. `container` is FFmpeg's name for the format.
struct Muxer {
    octx: format::context::Output,
    /// Stream index, stream time base and packet time base of the video and of the audio.
    video: (usize, Rational, Rational),
    audio: (usize, Rational, Rational),
    label: std::path::PathBuf,
}

impl Muxer {
    fn create(
        path: &Path,
        container: &str,
        settings: &EncoderSettings,
        extradata: &[u8],
        header_opts: Dictionary<'_>,
    ) -> Result<Self, MediaError> {
        super::init();
        let label = path.to_owned();
        let enc_err = |stage: &'static str| {
            let label = label.clone();
            move |source| MediaError::Encode {
                path: label,
                stage,
                source,
            }
        };
        if let Some(message) = settings.problems() {
            return Err(MediaError::InvalidSettings {
                path: label.clone(),
                message,
            });
        }
        let mut octx = create_output(path, container)?;
        // An encoder opened with the same settings supplies the stream parameters; its
        // parameter sets must be the segments', or the joined stream would not decode.
        let (x264, venc) = open_x264(settings, true, path)?;
        if sys::extradata(&venc) != extradata {
            return Err(MediaError::InvalidSettings {
                path: label.clone(),
                message: "the segments' H.264 parameter sets differ from these settings' (they \
                          were encoded with other settings or another libx264)"
                    .to_owned(),
            });
        }
        let (aac, aenc, _) = open_aac(settings, true, path)?;
        let video_tb = Rational::new(1, settings.fps as i32);
        let audio_tb = Rational::new(1, AUDIO_SAMPLE_RATE as i32);
        let (video_index, audio_index) =
            add_streams(&mut octx, settings, (x264, &venc), (aac, &aenc), path)?;
        octx.write_header_with(header_opts)
            .map_err(enc_err("writing the header"))?;
        let tb = |i: usize, dflt: Rational| octx.stream(i).map(|s| s.time_base()).unwrap_or(dflt);
        let video = (video_index, tb(video_index, video_tb), video_tb);
        let audio = (audio_index, tb(audio_index, audio_tb), audio_tb);
        Ok(Self {
            octx,
            video,
            audio,
            label,
        })
    }

    /// Writes `p` to the video stream (`offset` frames later) or the audio stream.
    fn write(&mut self, p: &EncodedPacket, audio: bool, offset: i64) -> Result<(), MediaError> {
        let ((index, stream_tb, codec_tb), stage) = if audio {
            (self.audio, "muxing an audio packet")
        } else {
            (self.video, "muxing a video packet")
        };
        let mut packet = Packet::copy(&p.data);
        packet.set_pts(Some(p.pts + offset));
        packet.set_dts(Some(p.dts + offset));
        packet.set_duration(p.duration);
        if p.key {
            packet.set_flags(packet::Flags::KEY);
        }
        packet.set_stream(index);
        packet.rescale_ts(codec_tb, stream_tb);
        packet
            .write_interleaved(&mut self.octx)
            .map_err(|source| MediaError::Encode {
                path: self.label.clone(),
                stage,
                source,
            })
    }

    fn finish(mut self) -> Result<(), MediaError> {
        self.octx
            .write_trailer()
            .map_err(|source| MediaError::Encode {
                path: self.label.clone(),
                stage: "writing the trailer",
                source,
            })
    }
}

/// Samples at 48 kHz at the start of frame `frame` at `fps`.
fn frame_to_samples(frame: u64, fps: u32) -> i64 {
    (frame as i64 * i64::from(AUDIO_SAMPLE_RATE)) / i64::from(fps)
}

/// Joins `segments` (in order, the first starting at frame 0) and `audio` into a fast-start
/// MP4 at `path` by stream copy. Returns the file's size.
pub fn mux_mp4(
    path: &Path,
    settings: &EncoderSettings,
    segments: &[&EncodedSegment],
    audio: &AacTrack,
) -> Result<u64, MediaError> {
    let extradata = segments
        .first()
        .map(|s| s.extradata.as_slice())
        .unwrap_or(&[]);
    if let Some(i) = segments.iter().position(|s| s.extradata != extradata) {
        return Err(MediaError::InvalidSettings {
            path: path.to_owned(),
            message: format!("segment {i} has other H.264 parameter sets than segment 0"),
        });
    }
    let mut opts = Dictionary::new();
    opts.set("movflags", "+faststart");
    opts.set("fflags", "+bitexact");
    // 0: never write a packet before every stream has one queued (no 10 s window).
    opts.set("max_interleave_delta", "0");
    let mut mux = Muxer::create(path, "mp4", settings, extradata, opts)?;
    let mut start = 0u64;
    let mut audio_at = i64::MIN;
    for seg in segments {
        let end = start + seg.frames;
        let until = frame_to_samples(end, settings.fps);
        for p in audio.between(audio_at, until) {
            mux.write(p, true, 0)?;
        }
        audio_at = until;
        for p in &seg.packets {
            mux.write(p, false, start as i64)?;
        }
        start = end;
    }
    for p in audio.between(audio_at, i64::MAX) {
        mux.write(p, true, 0)?;
    }
    mux.finish()?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })
}

/// The continuity counters of an MPEG-TS stream cut into files.
///
/// Each file is muxed on its own, so its counters would start again at 0, and a player that
/// reads the files as one stream (as HLS players do) sees every cut as lost packets.
/// [`write_ts`] renumbers each file's packets to continue from the previous file's.
#[derive(Debug, Clone, Default)]
pub struct TsContinuity {
    /// The next counter of each PID.
    next: std::collections::HashMap<u16, u8>,
}

impl TsContinuity {
    /// Renumbers the 188-byte packets of `ts` in place.
    fn apply(&mut self, ts: &mut [u8]) {
        for packet in ts.chunks_exact_mut(188) {
            if packet[0] != 0x47 {
                continue;
            }
            let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
            let next = self.next.entry(pid).or_insert(0);
            let has_payload = packet[3] & 0x10 != 0;
            // A packet without payload repeats the last counter.
            let cc = if has_payload {
                let cc = *next;
                *next = (cc + 1) & 0x0f;
                cc
            } else {
                next.wrapping_sub(1) & 0x0f
            };
            packet[3] = (packet[3] & 0xf0) | cc;
        }
    }
}

/// Writes one segment starting at frame `first_frame`, with the audio packets that start in
/// its time, as an MPEG-TS file at `path` (one media segment of an HLS playlist), its
/// continuity counters following on from the files `continuity` has seen. `last` takes the
/// audio that runs past the final frame.
pub fn write_ts(
    path: &Path,
    settings: &EncoderSettings,
    segment: &EncodedSegment,
    first_frame: u64,
    audio: &AacTrack,
    last: bool,
    continuity: &mut TsContinuity,
) -> Result<u64, MediaError> {
    let mut opts = Dictionary::new();
    opts.set("fflags", "+bitexact");
    opts.set("max_interleave_delta", "0");
    let mut mux = Muxer::create(path, "mpegts", settings, &segment.extradata, opts)?;
    let from = if first_frame == 0 {
        i64::MIN
    } else {
        frame_to_samples(first_frame, settings.fps)
    };
    let to = if last {
        i64::MAX
    } else {
        frame_to_samples(first_frame + segment.frames, settings.fps)
    };
    for p in audio.between(from, to) {
        mux.write(p, true, 0)?;
    }
    for p in &segment.packets {
        mux.write(p, false, first_frame as i64)?;
    }
    mux.finish()?;
    let io = |source| MediaError::Io {
        path: path.to_owned(),
        source,
    };
    let mut ts = std::fs::read(path).map_err(io)?;
    continuity.apply(&mut ts);
    std::fs::write(path, &ts).map_err(io)?;
    Ok(ts.len() as u64)
}
