//! H.264 (libx264) + AAC-LC encoding into a fast-start MP4.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ffmpeg_next::{
    codec, encoder, format, frame, picture, ChannelLayout, Dictionary, Packet, Rational,
};

use super::sys;
use super::{CodecStep, MediaError};

/// Audio sample rate of the output, in Hz.
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;

/// x264 presets accepted in [`EncoderSettings::preset`].
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// H.264 profile of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Profile {
    /// Main profile (no 8x8 transform); for older decoders.
    Main,
    /// High profile; the default.
    High,
}

impl H264Profile {
    /// The name x264 knows the profile by.
    pub fn as_x264_str(self) -> &'static str {
        match self {
            H264Profile::Main => "main",
            H264Profile::High => "high",
        }
    }
}

/// Everything that determines the encoded bytes, apart from the input.
///
/// Identical settings and identical input give byte-identical files, which is what lets
/// separately encoded ranges with closed GOPs on fixed boundaries be joined by stream copy.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    /// Frame width in pixels; even, 2..=8192.
    pub width: u32,
    /// Frame height in pixels; even, 2..=8192.
    pub height: u32,
    /// Frames per second, 1..=240.
    pub fps: u32,
    /// x264 constant rate factor, 0..=51 (23 is x264's default).
    pub crf: f32,
    /// x264 preset, one of [`X264_PRESETS`] (the farm uses "veryfast").
    pub preset: String,
    /// H.264 profile.
    pub profile: H264Profile,
    /// VBV maximum rate in kbit/s (buffer = 2 × rate); `None` for pure CRF.
    pub max_bitrate_kbps: Option<u32>,
    /// Keyframe interval in frames: every GOP is closed and exactly this long (scene-cut
    /// detection is off), so GOP boundaries are predictable.
    pub gop_frames: u32,
    /// x264 threads, >= 1. Fixed rather than automatic so output does not depend on the
    /// machine's core count.
    pub threads: usize,
    /// AAC bitrate in bits/s, 16000..=512000.
    pub audio_bitrate: u32,
}

impl Default for EncoderSettings {
    /// The reference workload's settings: 1920×1080, 30 fps, veryfast, CRF 23, High,
    /// one-second GOPs, 2 threads, AAC 128 kb/s.
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
            fps: 30,
            crf: 23.0,
            preset: "veryfast".to_owned(),
            profile: H264Profile::High,
            max_bitrate_kbps: None,
            gop_frames: 30,
            threads: 2,
            audio_bitrate: 128_000,
        }
    }
}

impl EncoderSettings {
    /// Bytes of one I420 frame: `width * height * 3 / 2`.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3 / 2
    }

    /// Every problem with these settings, or `None` if they are valid.
    pub(super) fn problems(&self) -> Option<String> {
        let mut p = Vec::new();
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(2..=8192).contains(&v) || !v.is_multiple_of(2) {
                p.push(format!("{name} {v} must be even and in 2..=8192"));
            }
        }
        if !(1..=240).contains(&self.fps) {
            p.push(format!("fps {} out of range 1..=240", self.fps));
        }
        if !self.crf.is_finite() || !(0.0..=51.0).contains(&self.crf) {
            p.push(format!("crf {} out of range 0..=51", self.crf));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            p.push(format!(
                "preset `{}` is not one of {}",
                self.preset,
                X264_PRESETS.join(", ")
            ));
        }
        if let Some(r) = self.max_bitrate_kbps {
            if !(1..=1_000_000).contains(&r) {
                p.push(format!("max_bitrate_kbps {r} out of range 1..=1000000"));
            }
        }
        if !(1..=1000).contains(&self.gop_frames) {
            p.push(format!(
                "gop_frames {} out of range 1..=1000",
                self.gop_frames
            ));
        }
        if !(1..=64).contains(&self.threads) {
            p.push(format!("threads {} out of range 1..=64", self.threads));
        }
        if !(16_000..=512_000).contains(&self.audio_bitrate) {
            p.push(format!(
                "audio_bitrate {} out of range 16000..=512000",
                self.audio_bitrate
            ));
        }
        (!p.is_empty()).then(|| p.join("; "))
    }

    /// The `x264-params` string: fixed, closed GOPs, BT.709 limited-range colour tags (what the
    /// compositor's YUV conversion produces) and optional VBV.
    fn x264_params(&self) -> String {
        let mut s = format!(
            "keyint={g}:min-keyint={g}:scenecut=0:open-gop=0:colorprim=bt709:transfer=bt709:colormatrix=bt709:range=tv",
            g = self.gop_frames
        );
        if let Some(asm) = x264_asm_cap() {
            s.push_str(":asm=");
            s.push_str(asm);
        }
        if let Some(r) = self.max_bitrate_kbps {
            s.push_str(&format!(
                ":vbv-maxrate={r}:vbv-bufsize={}",
                2 * u64::from(r)
            ));
        }
        s
    }
}

/// Figures about a finished encode.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeStats {
    /// Video frames written.
    pub frames: u64,
    /// Audio sample frames written (per channel).
    pub audio_samples: u64,
    /// Size of the finished file in bytes.
    pub bytes: u64,
    /// Video length in seconds (`frames / fps`).
    pub video_secs: f64,
    /// Time spent inside the video encoder (send frame + receive packets), in seconds.
    pub video_encode_secs: f64,
    /// Time spent inside the audio encoder, in seconds.
    pub audio_encode_secs: f64,
    /// Time spent copying frames in and muxing packets, in seconds.
    pub wrapper_secs: f64,
}

/// Writes H.264 video and AAC-LC audio into an MP4 with the index (`moov`) at the front.
///
/// Video frames are planar I420; audio is interleaved stereo f32 at 48 kHz, in chunks of any
/// length. Both start at time 0. Packets are interleaved by decode time; audio may be written
/// ahead of video or alongside it (the muxer waits until both streams have data before it
/// writes, so no interleaving window is lost). [`Mp4Writer::finish`] must be called: a writer
/// dropped without it leaves an unplayable file.
pub struct Mp4Writer {
    path: PathBuf,
    settings: EncoderSettings,
    octx: format::context::Output,
    video: StreamSlot,
    audio: StreamSlot,
    vframe: frame::Video,
    aframe: frame::Audio,
    /// Samples per AAC frame (1024).
    aac_frame_len: usize,
    /// Samples per channel already placed in `aframe`.
    afill: usize,
    audio_samples: u64,
    frames: u64,
    packet: Packet,
    wrapper_time: Duration,
}

/// Which of the writer's two streams a [`StreamSlot`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Video,
    Audio,
}

/// One output stream: its encoder, where its packets go and the time spent encoding it.
struct StreamSlot {
    kind: StreamKind,
    /// The opened encoder (libx264 or aac), through the interface both share.
    encoder: encoder::Encoder,
    /// Index of the stream in the output.
    index: usize,
    /// The encoder's time base, which its packets come out in.
    codec_tb: Rational,
    /// The stream's time base as the muxer chose it, which packets are rescaled to.
    stream_tb: Rational,
    /// Time spent inside the encoder (sending frames, receiving packets).
    time: Duration,
}

impl StreamSlot {
    /// What errors call each step for this stream: receiving a packet, muxing one, flushing
    /// the encoder.
    fn stages(&self) -> (&'static str, &'static str, &'static str) {
        match self.kind {
            StreamKind::Video => (
                "receiving a video packet",
                "muxing a video packet",
                "flushing libx264",
            ),
            StreamKind::Audio => (
                "receiving an audio packet",
                "muxing an audio packet",
                "flushing the aac encoder",
            ),
        }
    }
}

impl Mp4Writer {
    /// Creates `path` (overwriting it) and opens both encoders.
    pub fn create(path: &Path, settings: &EncoderSettings) -> Result<Self, MediaError> {
        super::init();
        let owned = || path.to_path_buf();
        if let Some(message) = settings.problems() {
            return Err(MediaError::InvalidSettings {
                path: owned(),
                message,
            });
        }
        let enc_err = |stage: &'static str| {
            move |source| MediaError::Encode {
                path: path.to_path_buf(),
                stage,
                source,
            }
        };

        let mut octx = create_output(path, "mp4")?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

        let (x264, video) = open_x264(settings, global_header, path)?;
        let video_tb = Rational::new(1, settings.fps as i32);
        let (aac, audio, aac_frame_len) = open_aac(settings, global_header, path)?;
        let audio_tb = Rational::new(1, AUDIO_SAMPLE_RATE as i32);
        let (video_index, audio_index) =
            add_streams(&mut octx, settings, (x264, &video), (aac, &audio), path)?;

        let mut hopts = Dictionary::new();
        hopts.set("movflags", "+faststart");
        hopts.set("fflags", "+bitexact");
        // 0: never write a packet before every stream has one queued (no 10 s window).
        hopts.set("max_interleave_delta", "0");
        octx.write_header_with(hopts)
            .map_err(enc_err("writing the MP4 header"))?;
        let stream_tb = |i: usize| octx.stream(i).map(|s| s.time_base());
        let video = StreamSlot {
            kind: StreamKind::Video,
            encoder: video.0 .0,
            index: video_index,
            codec_tb: video_tb,
            stream_tb: stream_tb(video_index).unwrap_or(video_tb),
            time: Duration::ZERO,
        };
        let audio = StreamSlot {
            kind: StreamKind::Audio,
            encoder: audio.0 .0,
            index: audio_index,
            codec_tb: audio_tb,
            stream_tb: stream_tb(audio_index).unwrap_or(audio_tb),
            time: Duration::ZERO,
        };

        let vframe = new_video_frame(settings, path)?;
        let aframe = new_audio_frame(aac_frame_len, path)?;

        tracing::debug!(
            path = %path.display(),
            width = settings.width,
            height = settings.height,
            fps = settings.fps,
            preset = %settings.preset,
            crf = settings.crf,
            "opened mp4 writer"
        );
        Ok(Self {
            path: owned(),
            settings: settings.clone(),
            octx,
            video,
            audio,
            vframe,
            aframe,
            aac_frame_len,
            afill: 0,
            audio_samples: 0,
            frames: 0,
            packet: Packet::empty(),
            wrapper_time: Duration::ZERO,
        })
    }

    /// Encodes one frame of planar I420 (`width * height` bytes of Y, then U and V of
    /// `width/2 * height/2` bytes each, rows without padding). Its timestamp is its index.
    pub fn write_video_frame(&mut self, yuv420p: &[u8]) -> Result<(), MediaError> {
        let copy_start = Instant::now();
        fill_video_frame(
            &mut self.vframe,
            yuv420p,
            &self.settings,
            &self.path,
            self.frames,
        )?;
        self.vframe.set_pts(Some(self.frames as i64));
        self.wrapper_time += copy_start.elapsed();

        let start = Instant::now();
        let sent = self.video.encoder.send_frame(&self.vframe);
        self.video.time += start.elapsed();
        sent.map_err(|source| MediaError::Encode {
            path: self.path.clone(),
            stage: "encoding a video frame",
            source,
        })?;
        self.frames += 1;
        self.drain(StreamKind::Video)
    }

    /// Queues interleaved stereo samples (L, R, L, R, ...) at 48 kHz, any number of them; they
    /// are encoded in AAC frames of 1024 samples as those fill up.
    pub fn write_audio(&mut self, interleaved_stereo_48k: &[f32]) -> Result<(), MediaError> {
        if !interleaved_stereo_48k.len().is_multiple_of(2) {
            return Err(MediaError::InvalidAudio {
                path: self.path.clone(),
                message: format!(
                    "{} samples is not a whole number of stereo pairs",
                    interleaved_stereo_48k.len()
                ),
            });
        }
        if let Some(i) = interleaved_stereo_48k.iter().position(|s| !s.is_finite()) {
            return Err(MediaError::InvalidAudio {
                path: self.path.clone(),
                message: format!(
                    "sample {i} of this chunk ({}) is not finite",
                    interleaved_stereo_48k[i]
                ),
            });
        }
        let mut rest = interleaved_stereo_48k;
        while !rest.is_empty() {
            let copy_start = Instant::now();
            if self.afill == 0 {
                sys::make_writable(&mut self.aframe).map_err(|source| MediaError::Encode {
                    path: self.path.clone(),
                    stage: "reusing the audio frame",
                    source,
                })?;
            }
            let take = (self.aac_frame_len - self.afill).min(rest.len() / 2);
            let (chunk, tail) = rest.split_at(take * 2);
            let fill = self.afill;
            {
                let left = &mut self.aframe.plane_mut::<f32>(0)[fill..fill + take];
                for (dst, pair) in left.iter_mut().zip(chunk.chunks_exact(2)) {
                    *dst = pair[0];
                }
            }
            {
                let right = &mut self.aframe.plane_mut::<f32>(1)[fill..fill + take];
                for (dst, pair) in right.iter_mut().zip(chunk.chunks_exact(2)) {
                    *dst = pair[1];
                }
            }
            self.afill += take;
            rest = tail;
            self.wrapper_time += copy_start.elapsed();
            if self.afill == self.aac_frame_len {
                self.send_audio_frame()?;
            }
        }
        Ok(())
    }

    /// Flushes both encoders, writes the trailer (moving the index to the front) and
    /// closes the file.
    pub fn finish(mut self) -> Result<EncodeStats, MediaError> {
        if self.afill > 0 {
            // AAC accepts a short last frame.
            self.aframe.set_samples(self.afill);
            self.send_audio_frame()?;
        }
        self.flush(StreamKind::Audio)?;
        self.flush(StreamKind::Video)?;

        let start = Instant::now();
        self.octx
            .write_trailer()
            .map_err(|source| MediaError::Encode {
                path: self.path.clone(),
                stage: "writing the MP4 trailer",
                source,
            })?;
        self.wrapper_time += start.elapsed();
        let bytes = std::fs::metadata(&self.path)
            .map_err(|source| MediaError::Io {
                path: self.path.clone(),
                source,
            })?
            .len();
        let stats = EncodeStats {
            frames: self.frames,
            audio_samples: self.audio_samples,
            bytes,
            video_secs: self.frames as f64 / f64::from(self.settings.fps),
            video_encode_secs: self.video.time.as_secs_f64(),
            audio_encode_secs: self.audio.time.as_secs_f64(),
            wrapper_secs: self.wrapper_time.as_secs_f64(),
        };
        tracing::debug!(path = %self.path.display(), ?stats, "finished mp4");
        Ok(stats)
    }

    fn send_audio_frame(&mut self) -> Result<(), MediaError> {
        self.aframe.set_pts(Some(self.audio_samples as i64));
        let start = Instant::now();
        let sent = self.audio.encoder.send_frame(&self.aframe);
        self.audio.time += start.elapsed();
        sent.map_err(|source| MediaError::Encode {
            path: self.path.clone(),
            stage: "encoding audio",
            source,
        })?;
        self.audio_samples += self.afill as u64;
        self.afill = 0;
        self.drain(StreamKind::Audio)
    }

    /// The stream slot of `kind`.
    fn slot(&mut self, kind: StreamKind) -> &mut StreamSlot {
        match kind {
            StreamKind::Video => &mut self.video,
            StreamKind::Audio => &mut self.audio,
        }
    }

    /// Tells the encoder of `kind` that no more input comes, and moves its last packets into
    /// the muxer.
    fn flush(&mut self, kind: StreamKind) -> Result<(), MediaError> {
        let slot = self.slot(kind);
        let (_, _, stage) = slot.stages();
        let start = Instant::now();
        let sent = slot.encoder.send_eof();
        slot.time += start.elapsed();
        sent.map_err(|source| MediaError::Encode {
            path: self.path.clone(),
            stage,
            source,
        })?;
        self.drain(kind)
    }

    /// Moves every packet the encoder of `kind` has ready into the muxer.
    fn drain(&mut self, kind: StreamKind) -> Result<(), MediaError> {
        let Self {
            path,
            octx,
            video,
            audio,
            packet,
            wrapper_time,
            ..
        } = self;
        let slot = match kind {
            StreamKind::Video => video,
            StreamKind::Audio => audio,
        };
        let (receiving, muxing, _) = slot.stages();
        loop {
            let start = Instant::now();
            let got = slot.encoder.receive_packet(packet);
            slot.time += start.elapsed();
            match CodecStep::of(got) {
                Ok(CodecStep::Done) => {
                    // A video packet that comes without a duration lasts one frame (one tick
                    // of the codec time base).
                    if kind == StreamKind::Video && packet.duration() <= 0 {
                        packet.set_duration(1);
                    }
                    packet.set_stream(slot.index);
                    packet.rescale_ts(slot.codec_tb, slot.stream_tb);
                    let start = Instant::now();
                    let res = packet.write_interleaved(octx);
                    *wrapper_time += start.elapsed();
                    res.map_err(|source| MediaError::Encode {
                        path: path.clone(),
                        stage: muxing,
                        source,
                    })?;
                }
                Ok(CodecStep::Again | CodecStep::Eof) => return Ok(()),
                Err(source) => {
                    return Err(MediaError::Encode {
                        path: path.clone(),
                        stage: receiving,
                        source,
                    })
                }
            }
        }
    }
}

impl std::fmt::Debug for Mp4Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4Writer")
            .field("path", &self.path)
            .field("settings", &self.settings)
            .field("frames", &self.frames)
            .field("audio_samples", &self.audio_samples)
            .finish_non_exhaustive()
    }
}

/// The instruction-set level x264 is limited to, by name.
///
/// With its AVX-512 code paths enabled, x264 0.164 (Debian 12's) encoded identical input to
/// different bytes once several encoders had run in the same process (first GOP only; not
/// reproducible under valgrind, which lacks AVX-512). Capping x264 at AVX2 restores
/// byte-identical output, keeps it the same on machines with and without AVX-512, and
/// measured slightly faster. x264 trusts this setting, so only a level the CPU and OS
/// support is named.
fn x264_asm_cap() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2") && has!("lzcnt") {
            Some("AVX2")
        } else if has!("avx") && has!("sse4.2") {
            Some("AVX")
        } else if has!("sse4.2") {
            Some("SSE4.2")
        } else if has!("ssse3") {
            Some("SSSE3")
        } else {
            Some("SSE2")
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Creates the output file `path` in `container` (FFmpeg's name), overwriting it.
pub(super) fn create_output(
    path: &Path,
    container: &str,
) -> Result<format::context::Output, MediaError> {
    format::output_as(path, container).map_err(|source| match source {
        ffmpeg_next::Error::Other { errno } if errno == ffmpeg_next::error::ENOENT => {
            MediaError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from_raw_os_error(errno),
            }
        }
        source => MediaError::Encode {
            path: path.to_path_buf(),
            stage: "creating the output file",
            source,
        },
    })
}

/// Adds the H.264 stream of `video` and the AAC stream of `audio` (each codec with the opened
/// encoder whose parameters the stream takes) to `octx`; returns their indexes.
pub(super) fn add_streams(
    octx: &mut format::context::Output,
    settings: &EncoderSettings,
    video: (ffmpeg_next::Codec, &encoder::video::Encoder),
    audio: (ffmpeg_next::Codec, &encoder::audio::Encoder),
    path: &Path,
) -> Result<(usize, usize), MediaError> {
    let enc_err = |stage: &'static str| {
        move |source| MediaError::Encode {
            path: path.to_path_buf(),
            stage,
            source,
        }
    };
    let video_index = {
        let mut st = octx
            .add_stream(video.0)
            .map_err(enc_err("adding the video stream"))?;
        st.set_parameters(video.1);
        st.set_time_base(Rational::new(1, settings.fps as i32));
        st.set_avg_frame_rate(Rational::new(settings.fps as i32, 1));
        st.index()
    };
    let audio_index = {
        let mut st = octx
            .add_stream(audio.0)
            .map_err(enc_err("adding the audio stream"))?;
        st.set_parameters(audio.1);
        st.set_time_base(Rational::new(1, AUDIO_SAMPLE_RATE as i32));
        st.index()
    };
    Ok((video_index, audio_index))
}

/// Opens libx264 with `settings` (checked by the caller), its parameters in the codec's
/// extradata when `global_header` is set (MP4 and the segment path) rather than before every
/// keyframe. `path` names the output in errors.
pub(super) fn open_x264(
    settings: &EncoderSettings,
    global_header: bool,
    path: &Path,
) -> Result<(ffmpeg_next::Codec, encoder::video::Encoder), MediaError> {
    let enc_err = |stage: &'static str| {
        move |source| MediaError::Encode {
            path: path.to_path_buf(),
            stage,
            source,
        }
    };
    let x264 = encoder::find_by_name("libx264").ok_or_else(|| MediaError::EncoderNotFound {
        path: path.to_path_buf(),
        name: "libx264",
    })?;
    let mut v = codec::context::Context::new_with_codec(x264)
        .encoder()
        .video()
        .map_err(enc_err("configuring libx264"))?;
    v.set_width(settings.width);
    v.set_height(settings.height);
    v.set_format(format::Pixel::YUV420P);
    v.set_time_base(Rational::new(1, settings.fps as i32));
    v.set_frame_rate(Some(Rational::new(settings.fps as i32, 1)));
    v.set_gop(settings.gop_frames);
    v.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: settings.threads,
        ..Default::default()
    });
    if global_header {
        v.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut vopts = Dictionary::new();
    vopts.set("preset", &settings.preset);
    vopts.set("crf", &format!("{}", settings.crf));
    vopts.set("profile", settings.profile.as_x264_str());
    vopts.set("x264-params", &settings.x264_params());
    vopts.set("flags", "+bitexact");
    let video = v.open_with(vopts).map_err(enc_err("opening libx264"))?;
    Ok((x264, video))
}

/// Opens FFmpeg's native AAC-LC encoder for stereo at 48 kHz; returns it with its frame length
/// in samples.
pub(super) fn open_aac(
    settings: &EncoderSettings,
    global_header: bool,
    path: &Path,
) -> Result<(ffmpeg_next::Codec, encoder::audio::Encoder, usize), MediaError> {
    let enc_err = |stage: &'static str| {
        move |source| MediaError::Encode {
            path: path.to_path_buf(),
            stage,
            source,
        }
    };
    let aac = encoder::find_by_name("aac").ok_or_else(|| MediaError::EncoderNotFound {
        path: path.to_path_buf(),
        name: "aac",
    })?;
    let mut a = codec::context::Context::new_with_codec(aac)
        .encoder()
        .audio()
        .map_err(enc_err("configuring aac"))?;
    a.set_rate(AUDIO_SAMPLE_RATE as i32);
    a.set_channel_layout(ChannelLayout::STEREO);
    a.set_channels(2);
    a.set_format(format::Sample::F32(format::sample::Type::Planar));
    a.set_bit_rate(settings.audio_bitrate as usize);
    a.set_time_base(Rational::new(1, AUDIO_SAMPLE_RATE as i32));
    if global_header {
        a.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut aopts = Dictionary::new();
    aopts.set("profile", "aac_low");
    aopts.set("flags", "+bitexact");
    let audio = a
        .open_with(aopts)
        .map_err(enc_err("opening the aac encoder"))?;
    let frame_len = match audio.frame_size() {
        0 => 1024,
        n => n as usize,
    };
    Ok((aac, audio, frame_len))
}

/// A reusable I420 frame of the settings' size.
pub(super) fn new_video_frame(
    settings: &EncoderSettings,
    path: &Path,
) -> Result<frame::Video, MediaError> {
    let mut vframe = frame::Video::new(format::Pixel::YUV420P, settings.width, settings.height);
    if vframe.planes() != 3 || vframe.width() != settings.width {
        return Err(MediaError::Encode {
            path: path.to_path_buf(),
            stage: "allocating the video frame",
            source: ffmpeg_next::Error::Other {
                errno: ffmpeg_next::error::ENOMEM,
            },
        });
    }
    vframe.set_kind(picture::Type::None);
    Ok(vframe)
}

/// A reusable planar stereo frame of `len` samples at 48 kHz.
pub(super) fn new_audio_frame(len: usize, path: &Path) -> Result<frame::Audio, MediaError> {
    let mut aframe = frame::Audio::new(
        format::Sample::F32(format::sample::Type::Planar),
        len,
        ChannelLayout::STEREO,
    );
    aframe.set_rate(AUDIO_SAMPLE_RATE);
    if aframe.planes() != 2 {
        aframe.set_channels(2);
    }
    if aframe.planes() != 2 || aframe.samples() != len {
        return Err(MediaError::Encode {
            path: path.to_path_buf(),
            stage: "allocating the audio frame",
            source: ffmpeg_next::Error::Other {
                errno: ffmpeg_next::error::ENOMEM,
            },
        });
    }
    Ok(aframe)
}

/// Copies one planar I420 frame (`width * height` bytes of Y, then U and V of `width/2 *
/// height/2` bytes each, rows without padding) into `vframe`; `index` names it in errors.
pub(super) fn fill_video_frame(
    vframe: &mut frame::Video,
    yuv420p: &[u8],
    settings: &EncoderSettings,
    path: &Path,
    index: u64,
) -> Result<(), MediaError> {
    let (w, h) = (settings.width as usize, settings.height as usize);
    let expected = settings.frame_bytes();
    if yuv420p.len() != expected {
        return Err(MediaError::FrameSize {
            path: path.to_path_buf(),
            index,
            actual: yuv420p.len(),
            expected,
            width: settings.width,
            height: settings.height,
        });
    }
    sys::make_writable(vframe).map_err(|source| MediaError::Encode {
        path: path.to_path_buf(),
        stage: "reusing the video frame",
        source,
    })?;
    let (y, chroma) = yuv420p.split_at(w * h);
    let (u, v) = chroma.split_at(w / 2 * (h / 2));
    copy_plane(vframe, 0, y, w, h);
    copy_plane(vframe, 1, u, w / 2, h / 2);
    copy_plane(vframe, 2, v, w / 2, h / 2);
    Ok(())
}

/// Copies a tightly packed `w` × `h` plane into plane `index` of `frame`, whose rows may be
/// padded (linesize > width).
fn copy_plane(frame: &mut frame::Video, index: usize, src: &[u8], w: usize, h: usize) {
    let stride = frame.stride(index);
    let dst = frame.data_mut(index);
    if stride == w {
        dst[..w * h].copy_from_slice(src);
    } else {
        for (d, s) in dst.chunks_mut(stride).zip(src.chunks_exact(w)).take(h) {
            d[..w].copy_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_util::{ffprobe_json, TempDir};
    use std::process::Command;

    fn settings(width: u32, height: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            gop_frames: 30,
            ..EncoderSettings::default()
        }
    }

    /// A diagonal gradient moving `i` pixels per frame, with slowly changing chroma.
    fn gradient_frame(buf: &mut Vec<u8>, w: usize, h: usize, i: usize) {
        buf.clear();
        for y in 0..h {
            for x in 0..w {
                buf.push(((x + 2 * y + 4 * i) % 256) as u8);
            }
        }
        for plane in 0..2 {
            for y in 0..h / 2 {
                for x in 0..w / 2 {
                    let v = if plane == 0 { x + i } else { y + 2 * i };
                    buf.push((64 + v % 128) as u8);
                }
            }
        }
    }

    fn sine(samples: usize, offset: usize) -> Vec<f32> {
        (offset..offset + samples)
            .flat_map(|n| {
                let s = (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 48_000.0).sin() * 0.5;
                [s as f32, s as f32]
            })
            .collect()
    }

    /// Encodes 60 frames at 30 fps plus 2 s of 440 Hz, audio in uneven chunks between
    /// frames.
    fn encode_clip(path: &Path, s: &EncoderSettings) -> EncodeStats {
        let mut wr = Mp4Writer::create(path, s).expect("create");
        let (w, h) = (s.width as usize, s.height as usize);
        let mut buf = Vec::new();
        let total = 96_000usize;
        let mut written = 0;
        for i in 0..60 {
            gradient_frame(&mut buf, w, h, i);
            wr.write_video_frame(&buf).expect("frame");
            let upto = ((i + 1) * 1600).min(total);
            // Uneven split: two chunks per frame.
            let mid = written + (upto - written) / 3;
            wr.write_audio(&sine(mid - written, written))
                .expect("audio");
            wr.write_audio(&sine(upto - mid, mid)).expect("audio");
            written = upto;
        }
        wr.finish().expect("finish")
    }

    fn f(v: &serde_json::Value) -> f64 {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .expect("numeric string")
    }

    /// Top-level MP4 boxes as (type, offset).
    fn top_level_boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos + 8 <= data.len() {
            let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4"));
            let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
            let size = match size32 {
                0 => data.len() - pos,
                1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().expect("8")) as usize,
                n => n as usize,
            };
            assert!(size >= 8, "box {kind} at {pos} has size {size}");
            out.push((kind, pos));
            pos += size;
        }
        assert_eq!(pos, data.len(), "boxes cover the file exactly");
        out
    }

    #[test]
    fn writer_is_send() {
        fn send<T: Send>() {}
        send::<Mp4Writer>();
    }

    #[test]
    fn encodes_h264_aac_faststart_mp4() {
        let dir = TempDir::new("enc_probe");
        let path = dir.path("out.mp4");
        let s = settings(320, 240);
        let stats = encode_clip(&path, &s);
        assert_eq!(stats.frames, 60);
        assert_eq!(stats.audio_samples, 96_000);
        assert_eq!(stats.bytes, std::fs::metadata(&path).expect("meta").len());
        assert!(stats.video_encode_secs > 0.0);

        let probe = ffprobe_json(&path, &[]);
        let streams = probe["streams"].as_array().expect("streams");
        let v = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("video stream");
        let a = streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .expect("audio stream");
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(v["pix_fmt"], "yuv420p");
        assert_eq!(v["profile"], "High");
        assert_eq!(v["width"], 320);
        assert_eq!(v["height"], 240);
        assert_eq!(v["avg_frame_rate"], "30/1");
        assert_eq!(v["nb_frames"], "60");
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(a["profile"], "LC");
        assert_eq!(a["sample_rate"], "48000");
        assert_eq!(a["channels"], 2);

        let frame = 1.0 / 30.0;
        let duration = f(&probe["format"]["duration"]);
        assert!((duration - 2.0).abs() <= frame, "duration {duration}");
        let v_start = f(&v["start_time"]);
        let a_start = f(&a["start_time"]);
        assert!(
            v_start.abs() <= frame && a_start.abs() <= frame,
            "{v_start} {a_start}"
        );
        assert!((v_start - a_start).abs() <= frame, "{v_start} vs {a_start}");
        for st in [v, a] {
            let d = f(&st["duration"]);
            assert!((d - 2.0).abs() <= frame, "stream duration {d}");
        }

        let data = std::fs::read(&path).expect("read");
        let boxes = top_level_boxes(&data);
        let pos = |k: &str| boxes.iter().position(|(t, _)| t == k);
        let (moov, mdat) = (pos("moov").expect("moov"), pos("mdat").expect("mdat"));
        assert!(moov < mdat, "moov before mdat: {boxes:?}");
        // Bit-exact muxing writes no "Lavf" version tag.
        assert!(!data.windows(4).any(|w| w == b"Lavf"));
    }

    #[test]
    fn main_profile_and_gop_boundaries() {
        let dir = TempDir::new("enc_main");
        let path = dir.path("main.mp4");
        let s = EncoderSettings {
            profile: H264Profile::Main,
            gop_frames: 15,
            max_bitrate_kbps: Some(800),
            ..settings(320, 240)
        };
        encode_clip(&path, &s);
        let probe = ffprobe_json(&path, &["-select_streams", "v"]);
        assert_eq!(probe["streams"][0]["profile"], "Main");

        // Keyframes exactly every 15 frames, and each one an IDR (closed GOP).
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "frame=key_frame,pict_type",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe");
        let text = String::from_utf8_lossy(&out.stdout);
        // Side-data sections print as empty lines.
        let frames: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(frames.len(), 60);
        for (i, line) in frames.iter().enumerate() {
            let key = line.starts_with('1');
            assert_eq!(key, i % 15 == 0, "frame {i}: {line}");
            if key {
                assert!(line.contains('I'), "frame {i}: {line}");
            }
        }
        let raw = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "packet=flags",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe");
        let keys = String::from_utf8_lossy(&raw.stdout)
            .lines()
            .filter(|l| l.starts_with('K'))
            .count();
        assert_eq!(keys, 4);
    }

    #[test]
    fn identical_input_gives_identical_bytes() {
        // Several encodes in one process, with a differently sized one in between: heap
        // reuse across encoders is what exposed x264's AVX-512 nondeterminism.
        let dir = TempDir::new("enc_same");
        let s = settings(320, 240);
        let first = dir.path("first.mp4");
        encode_clip(&first, &s);
        let expected = std::fs::read(&first).expect("first");
        assert!(!expected.is_empty());
        encode_clip(&dir.path("other.mp4"), &settings(640, 360));
        for i in 0..4 {
            let path = dir.path(&format!("again{i}.mp4"));
            encode_clip(&path, &s);
            let again = std::fs::read(&path).expect("again");
            assert!(
                again == expected,
                "encode {i} differs ({} vs {} bytes)",
                again.len(),
                expected.len()
            );
        }
    }

    #[test]
    fn padded_linesize_is_handled() {
        // 322 is not a multiple of FFmpeg's 32/64-byte row alignment, so rows are padded.
        let dir = TempDir::new("enc_pad");
        let path = dir.path("pad.mp4");
        let s = settings(322, 180);
        let mut wr = Mp4Writer::create(&path, &s).expect("create");
        // Flat mid-grey with a white first column: padding mistakes would smear it.
        let (w, h) = (322usize, 180usize);
        let mut buf = vec![128u8; s.frame_bytes()];
        for y in 0..h {
            buf[y * w] = 235;
        }
        for _ in 0..5 {
            wr.write_video_frame(&buf).expect("frame");
        }
        wr.write_audio(&sine(4800, 0)).expect("audio");
        wr.finish().expect("finish");

        let raw = crate::media::test_util::ffmpeg_stdout(&[
            "-i",
            path.to_str().expect("utf8"),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ]);
        assert_eq!(raw.len(), w * h);
        for y in 0..h {
            let row = &raw[y * w..(y + 1) * w];
            assert!(row[0] > 200, "row {y} first pixel {}", row[0]);
            assert!(
                row[w / 2].abs_diff(128) <= 3,
                "row {y} middle {}",
                row[w / 2]
            );
            assert!(row[w - 1].abs_diff(128) <= 3, "row {y} last {}", row[w - 1]);
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = TempDir::new("enc_bad");
        let path = dir.path("bad.mp4");
        let s = settings(320, 240);
        let mut wr = Mp4Writer::create(&path, &s).expect("create");
        let err = wr.write_video_frame(&[0u8; 100]).expect_err("short frame");
        let msg = err.to_string();
        assert!(
            msg.contains("100 bytes") && msg.contains("115200") && msg.contains("bad.mp4"),
            "{msg}"
        );
        assert!(matches!(
            wr.write_audio(&[0.0; 3]),
            Err(MediaError::InvalidAudio { .. })
        ));
        assert!(matches!(
            wr.write_audio(&[0.0, f32::NAN]),
            Err(MediaError::InvalidAudio { .. })
        ));
        // The writer is still usable after rejected input.
        wr.write_video_frame(&vec![16u8; s.frame_bytes()])
            .expect("frame");
        wr.finish().expect("finish");

        let bad = EncoderSettings {
            width: 321,
            threads: 0,
            preset: "warp".to_owned(),
            ..s
        };
        let err = Mp4Writer::create(&dir.path("x.mp4"), &bad).expect_err("settings");
        let msg = err.to_string();
        assert!(
            msg.contains("width 321") && msg.contains("threads 0") && msg.contains("`warp`"),
            "{msg}"
        );
        let err = Mp4Writer::create(&dir.path("no/such/dir/x.mp4"), &settings(320, 240))
            .expect_err("missing dir");
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }

    /// Encode throughput at the reference workload's settings. Prints, asserts only
    /// correctness: run with `--nocapture` to see the figure.
    #[test]
    fn throughput_1080p_veryfast() {
        let dir = TempDir::new("enc_1080");
        let path = dir.path("w1.mp4");
        let s = EncoderSettings::default();
        let (w, h) = (1920usize, 1080usize);
        let n = 90usize;
        // Pre-generate a few distinct frames so generation is not measured.
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                let mut b = Vec::new();
                gradient_frame(&mut b, w, h, i * 3);
                b
            })
            .collect();
        let audio = sine(48_000 * n / 30, 0);
        let start = Instant::now();
        let mut wr = Mp4Writer::create(&path, &s).expect("create");
        wr.write_audio(&audio).expect("audio");
        for i in 0..n {
            wr.write_video_frame(&frames[i % frames.len()])
                .expect("frame");
        }
        let stats = wr.finish().expect("finish");
        let wall = start.elapsed().as_secs_f64();
        assert_eq!(stats.frames, n as u64);
        println!(
            "1080p30 veryfast crf23 threads=2: {n} frames in {wall:.2} s wall = {:.1} fps; \
             inside x264 {:.2} s ({:.1} fps), aac {:.3} s, wrapper {:.3} s, {} bytes",
            n as f64 / wall,
            stats.video_encode_secs,
            n as f64 / stats.video_encode_secs,
            stats.audio_encode_secs,
            stats.wrapper_secs,
            stats.bytes
        );
    }
}
