//! The bundled Noto fonts: embedded bytes, the font database built from them, and the choice of
//! a primary family from the language tag or, failing that, from the text itself.

use std::sync::Arc;

use cosmic_text::skrifa::{self, MetadataProvider as _};
use cosmic_text::{fontdb, FontSystem};

/// Locale handed to cosmic-text. Fixed, never the host's, so fallback does not vary by machine.
const LOCALE: &str = "en-US";

/// One font file compiled into the binary.
#[derive(Debug)]
pub(crate) struct BundledFont {
    /// File name under `assets/fonts/`.
    pub(crate) file: &'static str,
    /// The font file.
    pub(crate) data: &'static [u8],
}

macro_rules! bundled {
    ($file:literal) => {
        BundledFont {
            file: $file,
            data: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../assets/fonts/",
                $file
            )),
        }
    };
}

/// Every bundled face. Noto Sans comes first: it is the common fallback for Latin, digits and
/// punctuation.
pub(crate) static BUNDLED_FONTS: [BundledFont; 20] = [
    bundled!("NotoSans-Regular.ttf"),
    bundled!("NotoSans-Bold.ttf"),
    bundled!("NotoSansArabic-Regular.ttf"),
    bundled!("NotoSansArabic-Bold.ttf"),
    bundled!("NotoSansBengali-Regular.ttf"),
    bundled!("NotoSansBengali-Bold.ttf"),
    bundled!("NotoSansDevanagari-Regular.ttf"),
    bundled!("NotoSansDevanagari-Bold.ttf"),
    bundled!("NotoSansGujarati-Regular.ttf"),
    bundled!("NotoSansGujarati-Bold.ttf"),
    bundled!("NotoSansGurmukhi-Regular.ttf"),
    bundled!("NotoSansGurmukhi-Bold.ttf"),
    bundled!("NotoSansKannada-Regular.ttf"),
    bundled!("NotoSansKannada-Bold.ttf"),
    bundled!("NotoSansMalayalam-Regular.ttf"),
    bundled!("NotoSansMalayalam-Bold.ttf"),
    bundled!("NotoSansTamil-Regular.ttf"),
    bundled!("NotoSansTamil-Bold.ttf"),
    bundled!("NotoSansTelugu-Regular.ttf"),
    bundled!("NotoSansTelugu-Bold.ttf"),
];

/// The scripts the bundled fonts cover, each with its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Latin,
    Arabic,
    Bengali,
    Devanagari,
    Gujarati,
    Gurmukhi,
    Kannada,
    Malayalam,
    Tamil,
    Telugu,
}

impl Script {
    /// The bundled family for this script.
    pub(crate) const fn family(self) -> &'static str {
        match self {
            Self::Latin => "Noto Sans",
            Self::Arabic => "Noto Sans Arabic",
            Self::Bengali => "Noto Sans Bengali",
            Self::Devanagari => "Noto Sans Devanagari",
            Self::Gujarati => "Noto Sans Gujarati",
            Self::Gurmukhi => "Noto Sans Gurmukhi",
            Self::Kannada => "Noto Sans Kannada",
            Self::Malayalam => "Noto Sans Malayalam",
            Self::Tamil => "Noto Sans Tamil",
            Self::Telugu => "Noto Sans Telugu",
        }
    }

    /// The script a BCP 47 tag's primary language subtag is written in by default, if it is one
    /// of the bundled scripts and the language is not usually written in Latin.
    fn from_lang(lang: &str) -> Option<Self> {
        let primary = lang
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Some(match primary.as_str() {
            "hi" | "mr" | "ne" | "sa" | "mai" | "bho" | "kok" | "doi" | "new" | "awa" | "mag" => {
                Self::Devanagari
            }
            "bn" | "as" | "mni" => Self::Bengali,
            "ta" => Self::Tamil,
            "te" => Self::Telugu,
            "kn" | "tcy" => Self::Kannada,
            "ml" => Self::Malayalam,
            "gu" => Self::Gujarati,
            "pa" => Self::Gurmukhi,
            "ar" | "ur" | "fa" | "ps" | "sd" | "ug" | "ckb" => Self::Arabic,
            _ => return None,
        })
    }

    /// The bundled script of a character with a strong script, by Unicode block.
    fn of_char(c: char) -> Option<Self> {
        Some(match u32::from(c) {
            0x0041..=0x005A | 0x0061..=0x007A | 0x00C0..=0x024F | 0x1E00..=0x1EFF => Self::Latin,
            0x0600..=0x06FF
            | 0x0750..=0x077F
            | 0x08A0..=0x08FF
            | 0xFB50..=0xFDFF
            | 0xFE70..=0xFEFF => Self::Arabic,
            0x0900..=0x097F | 0xA8E0..=0xA8FF => Self::Devanagari,
            0x0980..=0x09FF => Self::Bengali,
            0x0A00..=0x0A7F => Self::Gurmukhi,
            0x0A80..=0x0AFF => Self::Gujarati,
            0x0B80..=0x0BFF => Self::Tamil,
            0x0C00..=0x0C7F => Self::Telugu,
            0x0C80..=0x0CFF => Self::Kannada,
            0x0D00..=0x0D7F => Self::Malayalam,
            _ => return None,
        })
    }
}

/// The primary family for a text: the script of `lang` when the language has one among the
/// bundled scripts, else the script of the first character that has one, else Noto Sans.
///
/// The primary family supplies spaces, digits and punctuation; characters it lacks fall back to
/// the family of their script.
pub(crate) fn primary_family(lang: &str, text: &str) -> &'static str {
    Script::from_lang(lang)
        .or_else(|| text.chars().find_map(Script::of_char))
        .unwrap_or(Script::Latin)
        .family()
}

/// Builds the font system over the bundled fonts only (no system fonts) and returns, for each
/// loaded face, its database id and bundled entry.
pub(crate) fn font_system() -> (FontSystem, Vec<(fontdb::ID, &'static BundledFont)>) {
    let mut db = fontdb::Database::new();
    let mut loaded = Vec::with_capacity(BUNDLED_FONTS.len());
    for font in &BUNDLED_FONTS {
        let source = fontdb::Source::Binary(Arc::new(font.data));
        for id in db.load_font_source(source) {
            loaded.push((id, font));
        }
    }
    db.set_sans_serif_family(Script::Latin.family());
    db.set_serif_family(Script::Latin.family());
    let system = FontSystem::new_with_locale_and_db(LOCALE.to_owned(), db);
    (system, loaded)
}

/// Whether any bundled font maps `c` to a glyph.
pub(crate) fn any_font_covers(c: char) -> bool {
    BUNDLED_FONTS
        .iter()
        .any(|font| skrifa::FontRef::new(font.data).is_ok_and(|f| f.charmap().map(c).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_picks_script_family() {
        assert_eq!(primary_family("ta", "Hello"), "Noto Sans Tamil");
        assert_eq!(primary_family("hi-IN", "Hello"), "Noto Sans Devanagari");
        assert_eq!(primary_family("AR", ""), "Noto Sans Arabic");
        assert_eq!(primary_family("en", "Hi ராகுல்"), "Noto Sans");
        assert_eq!(primary_family("", "123 مرحبا"), "Noto Sans Arabic");
        assert_eq!(primary_family("", "123"), "Noto Sans");
    }

    #[test]
    fn bundled_fonts_load_with_expected_families() {
        let (system, loaded) = font_system();
        assert_eq!(loaded.len(), BUNDLED_FONTS.len());
        for (id, font) in loaded {
            let face = system.db().face(id).expect("face loaded");
            // "NotoSansTamil-Bold.ttf" holds family "Noto Sans Tamil", weight 700.
            let (stem, style) = font.file.split_once('-').expect("file name has a style");
            assert!(
                face.families
                    .iter()
                    .any(|(name, _)| name.replace(' ', "") == stem),
                "{} has families {:?}",
                font.file,
                face.families
            );
            assert_eq!(
                face.weight.0 >= 600,
                style.starts_with("Bold"),
                "{}",
                font.file
            );
            let script_families = [
                Script::Latin,
                Script::Arabic,
                Script::Bengali,
                Script::Devanagari,
                Script::Gujarati,
                Script::Gurmukhi,
                Script::Kannada,
                Script::Malayalam,
                Script::Tamil,
                Script::Telugu,
            ]
            .map(Script::family);
            assert!(face
                .families
                .iter()
                .any(|(name, _)| script_families.contains(&name.as_str())));
        }
    }
}
