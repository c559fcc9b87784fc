//! Conversions between the wire and the types the template crate owns. Coordinator-owned types
//! (lanes, render states) convert in the coordinator's service layer.

use template::Preset;

use crate::v1;

impl From<Preset> for v1::Preset {
    fn from(p: Preset) -> v1::Preset {
        match p {
            Preset::P1080 => v1::Preset::Preset1080p,
            Preset::P720 => v1::Preset::Preset720p,
            Preset::Whatsapp => v1::Preset::Whatsapp,
        }
    }
}

/// The preset a wire value names: unset means 720p, as the protocol says; `None` for a value
/// this version does not know.
pub fn preset_from_wire(value: i32) -> Option<Preset> {
    match v1::Preset::try_from(value) {
        Ok(v1::Preset::Unspecified | v1::Preset::Preset720p) => Some(Preset::P720),
        Ok(v1::Preset::Preset1080p) => Some(Preset::P1080),
        Ok(v1::Preset::Whatsapp) => Some(Preset::Whatsapp),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_round_trip_and_default_to_720p() {
        for p in Preset::ALL {
            assert_eq!(preset_from_wire(v1::Preset::from(p) as i32), Some(p));
        }
        assert_eq!(
            preset_from_wire(v1::Preset::Unspecified as i32),
            Some(Preset::P720)
        );
        assert_eq!(preset_from_wire(99), None);
    }
}
