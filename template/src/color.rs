//! Parsing of [`Color`] strings.

use crate::error::ColorError;
use crate::manifest::Color;

impl Color {
    /// The colour as straight-alpha `[r, g, b, a]`: `#RRGGBB` (opaque) or `#RRGGBBAA`, hex digits
    /// in either case.
    pub fn rgba(&self) -> Result<[u8; 4], ColorError> {
        let bad = || ColorError(self.0.clone());
        let hex = self.0.strip_prefix('#').ok_or_else(bad)?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut rgba = [0, 0, 0, 255];
        for (slot, pair) in rgba.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *slot = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(rgba)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Option<[u8; 4]>) {
        let got = Color(input.to_owned()).rgba().ok();
        assert_eq!(got, expect, "colour {input:?}");
    }

    #[test]
    fn parses_hex_colours() {
        check("#000000", Some([0, 0, 0, 255]));
        check("#ff8800", Some([255, 136, 0, 255]));
        check("#FF8800", Some([255, 136, 0, 255]));
        check("#00000080", Some([0, 0, 0, 128]));
        check("#12345678", Some([0x12, 0x34, 0x56, 0x78]));
    }

    #[test]
    fn rejects_other_forms() {
        check("", None);
        check("#", None);
        check("ff8800", None);
        check("#fff", None);
        check("#ff880", None);
        check("#ff88000", None);
        check("#gg8800", None);
        check("#+f8800", None);
        check("red", None);
        check("#ff8800\u{301}", None);
        check("#ééé", None);
    }

    #[test]
    fn error_names_the_value_and_the_form() {
        let err = Color("red".to_owned())
            .rgba()
            .expect_err("not a colour")
            .to_string();
        assert!(err.contains("`red`"), "{err}");
        assert!(err.contains("#RRGGBB"), "{err}");
    }
}
