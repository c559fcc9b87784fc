//! Worst-case token values: for every token of a template, values that stress its layout in one
//! language (the longest allowed value in the widest glyphs of the language's script, a
//! one-character value, the fallback), each with a short human description of its class.
//!
//! "Widest" is measured, not guessed: candidate letters and syllables of the script are drawn
//! with the text engine the renderer uses, in the faces (regular or bold) the template's text
//! layers use, and ranked by ink width per character.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use template::{sanitize, LayerContent, Manifest, TokenKind, TokenSpec};

use crate::text::{Align, TextEngine, TextStyle};

/// One set of generated values for every token of a template, and what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorstCase {
    /// A short human phrase naming the value class, e.g. "longest `first_name` (40 characters,
    /// widest Tamil letters)". Never a real recipient's value.
    pub class: String,
    /// A sanitized, valid value for every declared token (accepted by `template::resolve_tokens`
    /// for the language).
    pub tokens: BTreeMap<String, String>,
    /// Whether the values read like words, so that a speech check should speak them. The
    /// widest-glyph values do not ("WWWWWWWW" is spelled out letter by letter, as no name is);
    /// the longest pronounceable values (consonant-vowel syllables, the most syllables a value
    /// of that length can hold) stand for them in speech.
    pub spoken: bool,
}

/// Characters per generated word: long values are written as words of about this length
/// separated by spaces, the way names are, so that wrapping is realistic.
const WORD_CHARS: usize = 8;
/// Font size candidates are measured at, in pixels.
const MEASURE_SIZE: f32 = 32.0;
/// Copies of a candidate drawn side by side when measuring it (so joining and spacing count).
const MEASURE_REPEAT: usize = 3;
/// Consonants combined with every vowel sign when looking for the widest syllable.
const TOP_CONSONANTS: usize = 6;

/// The letters a value can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Alphabet {
    /// Letters of a script, for `text` tokens.
    Script(Script),
    /// `[A-Za-z0-9_-]`, for `code` tokens.
    Code,
    /// Decimal digits, for `number` tokens.
    Digits,
}

/// The scripts the bundled fonts cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Script {
    Latin,
    Arabic,
    /// A Brahmic script laid out like ISCII in its Unicode block: independent vowels at
    /// `base+0x05..`, consonants at `base+0x15..=base+0x39`, dependent vowel signs at
    /// `base+0x3E..=base+0x4C`, virama at `base+0x4D`.
    Brahmic(&'static str, u32),
}

impl Script {
    /// The script a language (BCP 47 primary subtag) is usually written in; Latin for languages
    /// the bundled fonts do not give a script of their own.
    fn of_lang(lang: &str) -> Script {
        let primary = lang
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "hi" | "mr" | "ne" | "sa" | "mai" | "bho" | "kok" | "doi" | "new" | "awa" | "mag" => {
                Script::Brahmic("Devanagari", 0x0900)
            }
            "bn" | "as" | "mni" => Script::Brahmic("Bengali", 0x0980),
            "pa" => Script::Brahmic("Gurmukhi", 0x0A00),
            "gu" => Script::Brahmic("Gujarati", 0x0A80),
            "ta" => Script::Brahmic("Tamil", 0x0B80),
            "te" => Script::Brahmic("Telugu", 0x0C00),
            "kn" | "tcy" => Script::Brahmic("Kannada", 0x0C80),
            "ml" => Script::Brahmic("Malayalam", 0x0D00),
            "ar" | "ur" | "fa" | "ps" | "sd" | "ug" | "ckb" => Script::Arabic,
            _ => Script::Latin,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Script::Latin => "Latin",
            Script::Arabic => "Arabic",
            Script::Brahmic(name, _) => name,
        }
    }
}

impl Alphabet {
    fn of(kind: TokenKind, lang: &str) -> Alphabet {
        match kind {
            TokenKind::Text => Alphabet::Script(Script::of_lang(lang)),
            TokenKind::Code => Alphabet::Code,
            TokenKind::Number => Alphabet::Digits,
        }
    }

    /// How the class phrase names the glyphs, e.g. "widest Tamil letters".
    fn phrase(self) -> String {
        match self {
            Alphabet::Script(Script::Arabic) => "widest joined Arabic letters".to_owned(),
            Alphabet::Script(script) => format!("widest {} letters", script.name()),
            Alphabet::Code => "widest code characters".to_owned(),
            Alphabet::Digits => "widest digits".to_owned(),
        }
    }

    /// Whether long values are split into words.
    fn has_words(self) -> bool {
        matches!(self, Alphabet::Script(_))
    }

    /// The units a value is built from: single letters and, for Brahmic scripts, syllables.
    fn candidates(self, engine: &mut TextEngine, bold: bool) -> Vec<String> {
        let chars = |range: std::ops::RangeInclusive<u32>| -> Vec<String> {
            range
                .filter_map(char::from_u32)
                .filter(|c| c.is_alphanumeric())
                .map(String::from)
                .collect()
        };
        match self {
            Alphabet::Code => {
                let mut all = chars(0x30..=0x7A);
                all.retain(|s| s.bytes().all(|b| b.is_ascii_alphanumeric()));
                all.extend(["-".to_owned(), "_".to_owned()]);
                all
            }
            Alphabet::Digits => chars(0x30..=0x39),
            Alphabet::Script(Script::Latin) => {
                let mut all = chars(0x41..=0x5A);
                all.extend(chars(0x61..=0x7A));
                all
            }
            Alphabet::Script(Script::Arabic) => chars(0x0621..=0x064A),
            Alphabet::Script(Script::Brahmic(_, base)) => {
                let mut all = chars(base + 0x05..=base + 0x39);
                // Syllables: the widest consonants with every vowel sign and with the virama.
                let mut consonants: Vec<(String, f32)> = chars(base + 0x15..=base + 0x39)
                    .into_iter()
                    .filter_map(|c| {
                        let w = per_char_width(engine, &c, bold)?;
                        Some((c, w))
                    })
                    .collect();
                consonants.sort_by(|a, b| b.1.total_cmp(&a.1));
                let signs: Vec<char> = (base + 0x3E..=base + 0x4D)
                    .filter_map(char::from_u32)
                    .filter(|c| c.is_alphabetic() || u32::from(*c) == base + 0x4D)
                    .collect();
                for (consonant, _) in consonants.iter().take(TOP_CONSONANTS) {
                    for sign in &signs {
                        all.push(format!("{consonant}{sign}"));
                    }
                }
                all
            }
        }
    }
}

/// A unit of text and its ink width per character at [`MEASURE_SIZE`].
#[derive(Debug, Clone)]
struct Unit {
    text: String,
    chars: usize,
    width_per_char: f32,
}

/// The widest units of an alphabet in one face: the widest of any length and the widest single
/// character.
#[derive(Debug, Clone)]
struct Widest {
    unit: Unit,
    single: Unit,
}

/// Ink width per character of `text` drawn [`MEASURE_REPEAT`] times in a row; `None` when the
/// fonts lack a glyph for it or nothing is drawn.
fn per_char_width(engine: &mut TextEngine, text: &str, bold: bool) -> Option<f32> {
    let repeated = text.repeat(MEASURE_REPEAT);
    let width = ink_width(engine, &repeated, bold, 1024)?;
    Some(width / repeated.chars().count() as f32)
}

/// Ink width in pixels of `text` drawn on one line at [`MEASURE_SIZE`] in a box `box_width`
/// pixels wide; `None` when the fonts lack a glyph, the text needs more than one line, or
/// nothing is drawn.
fn ink_width(engine: &mut TextEngine, text: &str, bold: bool, box_width: u32) -> Option<f32> {
    let style = TextStyle {
        font_size: MEASURE_SIZE,
        min_font_size: MEASURE_SIZE,
        bold,
        align: Align::Start,
        line_height: 1.5,
        // The language only picks the primary family; the text's own script picks it here.
        lang: String::new(),
        ..TextStyle::default()
    };
    let (width, height) = (box_width, 96);
    let raster = engine.rasterize(text, width, height, &style).ok()?;
    if !raster.warnings.is_empty() || raster.lines != 1 || raster.font_size < MEASURE_SIZE {
        return None;
    }
    let (mut x0, mut x1) = (u32::MAX, 0);
    for y in 0..height {
        for x in 0..width {
            if raster.pixels[((y * width + x) * 4 + 3) as usize] > 0 {
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
            }
        }
    }
    (x1 > x0).then(|| (x1 - x0) as f32)
}

/// Measured widest units by alphabet and face (bold or not).
type WidestCache = HashMap<(Alphabet, bool), Option<Widest>>;

/// Measures every candidate of `alphabet` in the given face and keeps the widest; cached per
/// process since it depends only on the bundled fonts.
fn widest(engine: &mut TextEngine, alphabet: Alphabet, bold: bool) -> Option<Widest> {
    static CACHE: OnceLock<Mutex<WidestCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(alphabet, bold))
    {
        return hit.clone();
    }
    let mut best: Option<Unit> = None;
    let mut single: Option<Unit> = None;
    for text in alphabet.candidates(engine, bold) {
        // Values are sanitized (NFC) before use, so measure what would be used.
        let text = sanitize(&text);
        let chars = text.chars().count();
        if chars == 0 {
            continue;
        }
        let Some(width_per_char) = per_char_width(engine, &text, bold) else {
            continue;
        };
        let unit = Unit {
            text,
            chars,
            width_per_char,
        };
        if best
            .as_ref()
            .is_none_or(|b| unit.width_per_char > b.width_per_char)
        {
            best = Some(unit.clone());
        }
        if chars == 1
            && single
                .as_ref()
                .is_none_or(|s| unit.width_per_char > s.width_per_char)
        {
            single = Some(unit);
        }
    }
    let found = match (best, single) {
        (Some(unit), Some(single)) => Some(Widest { unit, single }),
        _ => None,
    };
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((alphabet, bold), found.clone());
    found
}

/// The widest units over the faces in `bolds`: the one with the largest summed width.
fn widest_over(engine: &mut TextEngine, alphabet: Alphabet, bolds: &[bool]) -> Option<Widest> {
    let found: Vec<Widest> = bolds
        .iter()
        .filter_map(|&bold| widest(engine, alphabet, bold))
        .collect();
    // Faces may disagree; keep the face whose widest unit is widest (bold when both are used).
    found
        .into_iter()
        .max_by(|a, b| a.unit.width_per_char.total_cmp(&b.unit.width_per_char))
}

/// A value of exactly `length` characters (after sanitizing) built from the widest units, split
/// into words of about [`WORD_CHARS`] characters when `words`.
fn longest_value(widest: &Widest, length: usize, words: bool) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut in_word = 0;
    while count < length {
        let left = length - count;
        // A space between words, unless it would leave nothing after it or start the value.
        if words && in_word >= WORD_CHARS && left >= 2 {
            out.push(' ');
            count += 1;
            in_word = 0;
            continue;
        }
        let unit = if widest.unit.chars <= left
            && (!words || in_word + widest.unit.chars <= WORD_CHARS || in_word == 0)
        {
            &widest.unit
        } else {
            &widest.single
        };
        out.push_str(&unit.text);
        count += unit.chars;
        in_word += unit.chars;
    }
    // Composition across unit boundaries could change the count; trim to be safe.
    let mut value = sanitize(&out);
    while value.chars().count() > length {
        value.pop();
        value = sanitize(&value);
    }
    value
}

/// A value of exactly `length` characters of consonant-vowel syllables in `script` (`ka`, `ra`,
/// `ma`... with the vowel `a` or its script's sign for it), as capitalized words of about
/// [`WORD_CHARS`] characters: the most syllables a pronounceable value of that length holds.
fn syllable_value(script: Script, length: usize) -> String {
    // Offsets of KA, TA, NA, MA, RA, LA in a Brahmic block, and the sign of the vowel AA.
    const BRAHMIC: [u32; 6] = [0x15, 0x24, 0x28, 0x2E, 0x30, 0x32];
    const BRAHMIC_AA: u32 = 0x3E;
    let syllables: Vec<String> = match script {
        Script::Latin => ["ka", "ta", "na", "ma", "ra", "la"]
            .map(str::to_owned)
            .to_vec(),
        Script::Arabic => ['ك', 'ت', 'ن', 'م', 'ر', 'ل']
            .map(|c| format!("{c}ا"))
            .to_vec(),
        Script::Brahmic(_, base) => BRAHMIC
            .iter()
            .filter_map(|&o| {
                let consonant = char::from_u32(base + o).filter(|c| c.is_alphabetic())?;
                let sign = char::from_u32(base + BRAHMIC_AA).filter(|c| c.is_alphabetic())?;
                Some(format!("{consonant}{sign}"))
            })
            .collect(),
    };
    if syllables.is_empty() {
        return String::new();
    }
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut count = 0;
    let mut next = 0;
    while count < length {
        let in_word = word.chars().count();
        if in_word >= WORD_CHARS && length - count >= 3 {
            words.push(std::mem::take(&mut word));
            count += 1; // the space
            continue;
        }
        let syllable = &syllables[next % syllables.len()];
        next += 1;
        let take = syllable.chars().count().min(length - count);
        word.extend(syllable.chars().take(take));
        count += take;
    }
    words.push(word);
    let capitalized: Vec<String> = words
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect();
    let mut value = sanitize(&capitalized.join(" "));
    while value.chars().count() > length {
        value.pop();
        value = sanitize(&value);
    }
    value
}

/// The faces (regular and/or bold) of the text layers that use `token`; regular when none does.
fn faces_using(manifest: &Manifest, token: &str) -> Vec<bool> {
    let mut bolds = Vec::new();
    for layer in &manifest.layers {
        if let LayerContent::Text(t) = &layer.content {
            let uses = t
                .text
                .values()
                .any(|s| template::placeholders(s).is_some_and(|names| names.contains(&token)));
            if uses && !bolds.contains(&t.bold) {
                bolds.push(t.bold);
            }
        }
    }
    if bolds.is_empty() {
        bolds.push(false);
    }
    bolds
}

/// The fallback of `spec` for `lang` (or `"*"`), sanitized, if it has one.
fn fallback(spec: &TokenSpec, lang: &str) -> Option<String> {
    spec.fallback
        .get(lang)
        .or_else(|| spec.fallback.get("*"))
        .map(|v| sanitize(v))
        .filter(|v| !v.is_empty())
}

/// The generated values of one token.
struct TokenValues {
    longest: Option<(String, String)>,
    /// The longest value in consonant-vowel syllables, for text tokens.
    syllables: Option<(String, String)>,
    one: Option<(String, String)>,
    fallback: Option<String>,
}

fn token_values(
    engine: &mut TextEngine,
    manifest: &Manifest,
    lang: &str,
    name: &str,
    spec: &TokenSpec,
) -> TokenValues {
    let alphabet = Alphabet::of(spec.kind, lang);
    let widest = widest_over(engine, alphabet, &faces_using(manifest, name));
    let phrase = alphabet.phrase();
    let longest = widest.as_ref().map(|w| {
        let value = longest_value(w, spec.max_length, alphabet.has_words());
        let chars = value.chars().count();
        (
            format!("longest `{name}` ({chars} characters, {phrase})"),
            value,
        )
    });
    let one = widest.as_ref().map(|w| {
        let singular = phrase.trim_end_matches('s');
        (
            format!("one-character `{name}` ({singular})"),
            w.single.text.clone(),
        )
    });
    let syllables = match alphabet {
        Alphabet::Script(script) => {
            let value = syllable_value(script, spec.max_length);
            let chars = value.chars().count();
            (chars > 0).then(|| {
                (
                    format!(
                        "longest `{name}` ({chars} characters, spoken {} syllables)",
                        script.name()
                    ),
                    value,
                )
            })
        }
        Alphabet::Code | Alphabet::Digits => None,
    };
    TokenValues {
        longest,
        syllables,
        one,
        fallback: fallback(spec, lang),
    }
}

/// Worst-case token values of `manifest` in `language`, measured with a text engine of this
/// thread. See [`worst_cases_with`].
pub fn worst_cases(manifest: &Manifest, language: &str) -> Vec<WorstCase> {
    thread_local! {
        static ENGINE: std::cell::RefCell<Option<TextEngine>> = const { std::cell::RefCell::new(None) };
    }
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let engine = slot.get_or_insert_with(TextEngine::new);
        worst_cases_with(engine, manifest, language)
    })
}

/// Worst-case token values of `manifest` in `language`: for every token, in this order,
/// - the longest allowed value (`max_length` characters) written in the widest glyphs of the
///   language's script (for `code` tokens the widest of `[A-Za-z0-9_-]`, for `number` tokens
///   the widest digit), as words of about eight characters for text tokens;
/// - a one-character value (the widest single character);
/// - the token's fallback for the language, when it has one;
///
/// the other tokens holding their fallback, or else their one-character value. When the template
/// has several tokens, a last case holds every token at its longest.
///
/// Widths are measured with `engine` in the faces of the text layers that use the token. A
/// template without tokens has one case, "fixed text (no tokens)", with no values.
pub fn worst_cases_with(
    engine: &mut TextEngine,
    manifest: &Manifest,
    language: &str,
) -> Vec<WorstCase> {
    let values: BTreeMap<&str, TokenValues> = manifest
        .tokens
        .iter()
        .map(|(name, spec)| {
            (
                name.as_str(),
                token_values(engine, manifest, language, name, spec),
            )
        })
        .collect();
    if values.is_empty() {
        return vec![WorstCase {
            class: "fixed text (no tokens)".to_owned(),
            tokens: BTreeMap::new(),
            spoken: true,
        }];
    }
    // What the other tokens hold while one is varied.
    let typical = |name: &str| -> String {
        let v = &values[name];
        v.fallback
            .clone()
            .or_else(|| v.one.as_ref().map(|(_, s)| s.clone()))
            .unwrap_or_default()
    };
    let with = |name: &str, value: &str| -> BTreeMap<String, String> {
        values
            .keys()
            .map(|&other| {
                let v = if other == name {
                    value.to_owned()
                } else {
                    typical(other)
                };
                (other.to_owned(), v)
            })
            .collect()
    };
    let mut cases = Vec::new();
    for (&name, v) in &values {
        let code_like = !matches!(manifest.tokens[name].kind, TokenKind::Text);
        if let Some((class, value)) = &v.longest {
            cases.push(WorstCase {
                class: class.clone(),
                tokens: with(name, value),
                // Codes and numbers are read out character by character anyway.
                spoken: code_like,
            });
        }
        if let Some((class, value)) = &v.syllables {
            cases.push(WorstCase {
                class: class.clone(),
                tokens: with(name, value),
                spoken: true,
            });
        }
        if let Some((class, value)) = &v.one {
            cases.push(WorstCase {
                class: class.clone(),
                tokens: with(name, value),
                spoken: true,
            });
        }
        if let Some(value) = &v.fallback {
            cases.push(WorstCase {
                class: format!("fallback of `{name}` (no value given)"),
                tokens: with(name, value),
                spoken: true,
            });
        }
    }
    if values.len() > 1 && values.values().all(|v| v.longest.is_some()) {
        cases.push(WorstCase {
            class: "every token at its longest".to_owned(),
            tokens: values
                .iter()
                .map(|(&name, v)| {
                    let (_, value) = v.longest.as_ref().expect("checked above");
                    (name.to_owned(), value.clone())
                })
                .collect(),
            spoken: false,
        });
        cases.push(WorstCase {
            class: "every token at its longest, spoken".to_owned(),
            tokens: values
                .iter()
                .map(|(&name, v)| {
                    let (_, value) = v
                        .syllables
                        .as_ref()
                        .or(v.longest.as_ref())
                        .expect("checked above");
                    (name.to_owned(), value.clone())
                })
                .collect(),
            spoken: true,
        });
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(tokens: serde_json::Value, text: &str, bold: bool) -> Manifest {
        let json = serde_json::json!({
            "schema_version": 1,
            "name": "t",
            "width": 640,
            "height": 360,
            "fps": 30,
            "duration": 2,
            "languages": ["en", "ta", "ar"],
            "default_language": "en",
            "tokens": tokens,
            "layers": [{
                "id": "headline",
                "type": "text",
                "text": {"*": text},
                "size": {"width": 600, "height": 100},
                "font_size": 48,
                "bold": bold
            }]
        });
        Manifest::from_json(json.to_string().as_bytes()).expect("test manifest parses")
    }

    #[test]
    fn every_case_is_valid_and_longest_is_widest() {
        let m = manifest(
            serde_json::json!({
                "name": {"max_length": 40, "fallback": {"ta": "நண்பரே"}},
                "code": {"type": "code", "max_length": 12},
                "amount": {"type": "number", "max_length": 6}
            }),
            "{{name}} {{code}} {{amount}}",
            true,
        );
        let mut engine = TextEngine::new();
        for lang in ["en", "ta", "ar"] {
            let cases = worst_cases_with(&mut engine, &m, lang);
            for case in &cases {
                let resolved = template::resolve_tokens(&m, lang, &case.tokens)
                    .unwrap_or_else(|e| panic!("{lang} {}: {e}", case.class));
                assert_eq!(resolved, case.tokens, "{lang} {}", case.class);
            }
            let longest = cases
                .iter()
                .find(|c| c.class.starts_with("longest `name`"))
                .expect("a longest name case");
            let name = &longest.tokens["name"];
            assert_eq!(name.chars().count(), 40, "{lang}: {name:?}");
            assert!(name.contains(' '), "{lang}: words separated like names");
            assert!(
                cases
                    .iter()
                    .any(|c| c.class == "every token at its longest"),
                "{lang}"
            );
            let code = &cases
                .iter()
                .find(|c| c.class.starts_with("longest `code`"))
                .expect("a longest code case")
                .tokens["code"];
            assert_eq!(code.len(), 12);
            assert!(code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let amount = &cases
                .iter()
                .find(|c| c.class.starts_with("longest `amount`"))
                .expect("a longest amount case")
                .tokens["amount"];
            assert!(amount.len() == 6 && amount.bytes().all(|b| b.is_ascii_digit()));
        }

        let en = worst_cases_with(&mut engine, &m, "en");
        assert_eq!(
            en[0].class,
            "longest `amount` (6 characters, widest digits)"
        );
        let name = &en
            .iter()
            .find(|c| c.class == "longest `name` (40 characters, widest Latin letters)")
            .expect("Latin class")
            .tokens["name"];
        // In Noto Sans Bold the widest Latin letters are the capitals W and M.
        assert!(name.chars().all(|c| matches!(c, 'W' | 'M' | ' ')), "{name}");

        let ta = worst_cases_with(&mut engine, &m, "ta");
        let name = &ta
            .iter()
            .find(|c| c.class == "longest `name` (40 characters, widest Tamil letters)")
            .expect("Tamil class")
            .tokens["name"];
        assert!(
            name.chars()
                .all(|c| c == ' ' || ('\u{0B80}'..='\u{0BFF}').contains(&c)),
            "{name}"
        );
        // Wider than a real Tamil name of the same length, drawn the same way.
        let real: String = "ராமகிருஷ்ணன் சுப்பிரமணியன் வெங்கடேசன்".chars().take(40).collect();
        let widest = ink_width(&mut engine, name, true, 4096).expect("drawn");
        let typical = ink_width(&mut engine, &real, true, 4096).expect("drawn");
        assert!(widest > typical * 1.2, "{widest} vs {typical}");
        assert!(ta.iter().any(
            |c| c.class == "fallback of `name` (no value given)" && c.tokens["name"] == "நண்பரே"
        ));
        // Arabic is measured joined.
        let ar = worst_cases_with(&mut engine, &m, "ar");
        assert!(ar
            .iter()
            .any(|c| c.class == "longest `name` (40 characters, widest joined Arabic letters)"));
    }

    #[test]
    fn no_tokens_gives_one_fixed_case() {
        let m = manifest(serde_json::json!({}), "Hello", false);
        let cases = worst_cases(&m, "en");
        assert_eq!(cases.len(), 1);
        assert!(cases[0].tokens.is_empty());
    }
}
