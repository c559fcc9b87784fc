//! Output presets: the size and delivery profile a render is made for. The encoder settings of
//! each live with the encoder (render-core); the wire form with the protocol (proto).

use std::fmt;
use std::str::FromStr;

/// Output presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The template's own size (1920x1080 for HD templates), x264 veryfast CRF 23, High profile.
    P1080,
    /// 1280 pixels wide (height scaled to keep the aspect), x264 veryfast CRF 23, High profile.
    P720,
    /// For WhatsApp: 1280 wide, Main profile, VBV-capped at 3 Mb/s so 30 s stays well under 16 MB.
    Whatsapp,
}

impl Preset {
    /// The preset of a render that names none: on the command line (`render`, `still`,
    /// `submit`, the demo and the benchmarks) as on the wire (`PRESET_UNSPECIFIED`).
    pub const DEFAULT: Preset = Preset::P720;

    /// Every preset.
    pub const ALL: [Preset; 3] = [Preset::P1080, Preset::P720, Preset::Whatsapp];

    /// The name on the command line and in stores: `1080p`, `720p` or `whatsapp`.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::P1080 => "1080p",
            Preset::P720 => "720p",
            Preset::Whatsapp => "whatsapp",
        }
    }

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
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset `{s}`; expected one of 1080p, 720p, whatsapp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
        }
        assert_eq!(
            "4k".parse::<Preset>(),
            Err("unknown preset `4k`; expected one of 1080p, 720p, whatsapp".to_owned())
        );
    }

    #[test]
    fn the_default_is_720p() {
        assert_eq!(Preset::DEFAULT, Preset::P720);
        assert_eq!(Preset::DEFAULT.name(), "720p");
    }

    #[test]
    fn canvases_keep_the_aspect() {
        assert_eq!(Preset::P1080.canvas(1920, 1080), (1920, 1080));
        assert_eq!(Preset::P720.canvas(1920, 1080), (1280, 720));
        assert_eq!(Preset::Whatsapp.canvas(1080, 1920), (1080, 1920));
    }
}
