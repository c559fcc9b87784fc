//! Output presets: the canvas size and encoder settings each named preset stands for.
//!
//! Kept apart from the renderer so the presets can move to the template crate without
//! touching the render path.

use crate::media::{EncoderSettings, H264Profile};

/// Output presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The template's own size (1920x1080 for HD templates), x264 veryfast CRF 23, High profile.
    P1080,
    /// 1280 pixels wide (height scaled to keep the aspect), x264 veryfast CRF 23, High profile.
    P720,
    /// For WhatsApp: 1280 wide, Main profile, VBV-capped at 3 Mb/s so 30 s stays well under 16 MB.
    Whatsapp,
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1080p" => Ok(Preset::P1080),
            "720p" => Ok(Preset::P720),
            "whatsapp" => Ok(Preset::Whatsapp),
            other => Err(format!(
                "unknown preset `{other}`; expected one of 1080p, 720p, whatsapp"
            )),
        }
    }
}

impl Preset {
    /// Output canvas size for a template of `width`x`height`.
    pub fn canvas(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Preset::P1080 => (width, height),
            Preset::P720 | Preset::Whatsapp => {
                if width <= 1280 {
                    return (width, height);
                }
                let w = 1280u32;
                let h = (f64::from(height) * 1280.0 / f64::from(width) / 2.0).round() as u32 * 2;
                (w, h.max(2))
            }
        }
    }

    /// Encoder settings for this preset at `width`x`height` and `fps`.
    pub fn encoder(self, width: u32, height: u32, fps: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            fps,
            crf: 23.0,
            preset: "veryfast".to_owned(),
            profile: match self {
                Preset::Whatsapp => H264Profile::Main,
                _ => H264Profile::High,
            },
            max_bitrate_kbps: match self {
                Preset::Whatsapp => Some(3000),
                _ => None,
            },
            gop_frames: fps * 2,
            threads: ENCODER_THREADS,
            audio_bitrate: 128_000,
        }
    }
}

/// x264 threads. Fixed, not the core count, so the same inputs give the same bytes on every
/// machine.
pub const ENCODER_THREADS: usize = 4;
