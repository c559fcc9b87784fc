//! What each output preset means to the encoder. The presets themselves (names, canvas sizes)
//! are the template crate's [`Preset`]; the encoder settings of each live here, beside the
//! encoder.

pub use template::Preset;

use crate::media::{EncoderSettings, H264Profile};

impl EncoderSettings {
    /// Encoder settings for `preset` at `width`x`height` and `fps`.
    pub fn for_preset(preset: Preset, width: u32, height: u32, fps: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            fps,
            crf: 23.0,
            preset: "veryfast".to_owned(),
            profile: match preset {
                Preset::Whatsapp => H264Profile::Main,
                Preset::P1080 | Preset::P720 => H264Profile::High,
            },
            max_bitrate_kbps: match preset {
                Preset::Whatsapp => Some(3000),
                Preset::P1080 | Preset::P720 => None,
            },
            // A GOP is a segment: the one-encoder render and the smart render cut alike.
            gop_frames: fps * crate::segments::SEGMENT_SECONDS,
            threads: ENCODER_THREADS,
            audio_bitrate: 128_000,
        }
    }
}

/// x264 threads. Fixed, not the core count, so the same inputs give the same bytes on every
/// machine.
pub const ENCODER_THREADS: usize = 4;
