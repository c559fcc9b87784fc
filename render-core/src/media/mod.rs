//! Media IO through FFmpeg: video decoding, image loading, H.264/AAC/MP4 encoding.
//!
//! - [`load_image`] / [`save_png`]: PNG, JPEG and WebP stills as premultiplied RGBA8.
//! - [`VideoReader`]: a video file as RGBA8 frames at a chosen size, addressed by time, with
//!   trimming and looping; forward requests decode without seeking.
//! - [`Mp4Writer`]: I420 frames and f32 stereo audio into a fast-start MP4 (libx264 +
//!   FFmpeg's AAC-LC), byte-identical for identical input and [`EncoderSettings`].
//! - [`SegmentEncoder`] / [`EncodedSegment`]: runs of frames encoded independently (closed
//!   GOPs, parameter sets out of band), joined by stream copy into an MP4 ([`mux_mp4`]) with
//!   the audio encoded once ([`AacTrack`]), or remuxed one by one into MPEG-TS ([`write_ts`]).
//!
//! Every entry point calls [`init`] itself; calling it earlier only moves the one-time cost.

mod codec_step;
mod decode;
mod encode;
mod error;
mod segment;
mod still;
mod sys;
#[cfg(test)]
mod test_util;

use std::sync::Once;

pub(crate) use codec_step::CodecStep;
pub use decode::{probe_video_size, VideoReader, VideoReaderOptions};
pub use encode::{
    EncodeStats, EncoderSettings, H264Profile, Mp4Writer, AUDIO_SAMPLE_RATE, X264_PRESETS,
};
pub use error::MediaError;
pub use segment::{
    mux_mp4, write_ts, AacTrack, EncodedPacket, EncodedSegment, SegmentEncoder, TsContinuity,
};
pub use still::{load_image, save_png, RgbaImage, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE};

/// Initialises FFmpeg once per process and sets its log level to errors only. Idempotent and
/// thread-safe.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg_next::init() {
            // Only error-string registration can fail, and FFmpeg works without it.
            tracing::warn!(error = %e, "FFmpeg initialisation reported an error");
        }
        // Lines go to `tracing` at debug level (target `ffmpeg`), never straight to stderr.
        sys::route_log_to_tracing();
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Info);
    });
}
