//! Phonemes (IPA, as eSpeak NG names them) → mouth shapes, and the timing rules that turn a
//! phoneme timeline into a track a viewer reads as speech.
//!
//! The table is one for all languages: it works on the IPA symbol, not on the language, and
//! every language in [`LANGUAGES`] was checked against the phoneme names eSpeak NG emits for it.
//! Diacritics (nasalization, length, aspiration, pharyngealization, stress) are stripped first.

use crate::{Cue, Shape};

/// Languages with a checked phoneme → shape table and a voice: Hindi, Tamil, Bengali, Telugu,
/// Marathi, Kannada, Malayalam, Gujarati, Punjabi, English, Arabic, Spanish.
pub const LANGUAGES: &[&str] = &[
    "hi", "ta", "bn", "te", "mr", "kn", "ml", "gu", "pa", "en", "ar", "es",
];

/// Whether `lang` is one of [`LANGUAGES`].
pub fn supported(lang: &str) -> bool {
    LANGUAGES.contains(&lang)
}

/// A phoneme with its time span, as the mapping consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// Start in milliseconds.
    pub start_ms: f64,
    /// End in milliseconds.
    pub end_ms: f64,
    /// IPA name; `_` (or empty) is a pause.
    pub ipa: String,
}

/// What a phoneme asks of the mouth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A fixed shape.
    Fixed(Shape),
    /// Whatever the neighbouring vowel does (velars, glottals: the lips are free).
    Any,
    /// A pause.
    Pause,
}

/// Long vowels of the open class and laterals switch shape with duration.
const LONG_OPEN_MS: f64 = 120.0;
const LONG_LATERAL_MS: f64 = 150.0;
const SHORT_SCHWA_MS: f64 = 60.0;

fn is_modifier(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' // combining diacritics: nasal tilde, syllabic, dental...
        | 'ː' | 'ˑ' | 'ʰ' | 'ʱ' | 'ˤ' | 'ˈ' | 'ˌ' | 'ʼ' | 'ⁿ' | 'ˠ' | '\'' | ';' | ','
        | '-' | '!' | '#' | '*' | '.' | '0'..='9'
    )
}

/// The base symbols of `ipa`, modifiers removed.
fn base(ipa: &str) -> Vec<char> {
    ipa.chars().filter(|c| !is_modifier(*c)).collect()
}

fn vowel_shape(c: char, ms: f64) -> Option<Shape> {
    Some(match c {
        // Close unrounded vowels spread the lips over nearly closed teeth (Tamil's ɯ too).
        'i' | 'ɪ' | 'ɨ' | 'ɯ' => Shape::B,
        'e' | 'ɛ' | 'ʌ' | 'ɜ' | 'ɘ' | 'æ' | 'ɞ' => Shape::C,
        'ə' => {
            if ms < SHORT_SCHWA_MS {
                Shape::B
            } else {
                Shape::C
            }
        }
        'a' | 'ɑ' | 'ɐ' | 'ä' => {
            if ms >= LONG_OPEN_MS {
                Shape::D
            } else {
                Shape::C
            }
        }
        'o' | 'ɔ' | 'ɒ' | 'ø' | 'œ' | 'ɚ' | 'ɝ' | 'ɵ' => Shape::E,
        'u' | 'ʊ' | 'ʉ' | 'y' | 'ʏ' => Shape::F,
        _ => return None,
    })
}

fn consonant_target(c: char, ms: f64) -> Option<Target> {
    use Target::{Any, Fixed};
    Some(match c {
        'p' | 'b' | 'm' | 'ɓ' | 'β' | 'ɸ' => Fixed(Shape::A),
        'f' | 'v' | 'ʋ' | 'ɱ' => Fixed(Shape::G),
        'w' | 'ɥ' | 'ʍ' => Fixed(Shape::F),
        'ɹ' | 'ɻ' => Fixed(Shape::E),
        'l' | 'ɭ' | 'ʎ' | 'ɫ' | 'L' => {
            if ms >= LONG_LATERAL_MS {
                Fixed(Shape::H)
            } else {
                Fixed(Shape::B)
            }
        }
        'k' | 'g' | 'ɡ' | 'q' | 'Q' | 'ɢ' | 'x' | 'ɣ' | 'χ' | 'ʁ' | 'h' | 'ɦ' | 'ʔ' | 'ħ' | 'ʕ'
        | 'ŋ' | 'ɴ' => Any,
        't' | 'd' | 'ʈ' | 'ɖ' | 'c' | 'ɟ' | 's' | 'z' | 'ʃ' | 'ʒ' | 'ɕ' | 'ʑ' | 'ʂ' | 'ʐ' | 'n'
        | 'ɳ' | 'ɲ' | 'r' | 'ɾ' | 'ɽ' | 'ʀ' | 'θ' | 'ð' | 'j' | 'ʲ' | 'ç' | 'ʝ' | 'ɬ' | 'ɮ'
        | 'ʧ' | 'ʤ' => Fixed(Shape::B),
        _ => return None,
    })
}

/// The phoneme's target(s): one, or two for a diphthong (split 60/40).
fn targets(ipa: &str, ms: f64) -> Vec<(f64, Target)> {
    // eSpeak NG marks a switch of language as a phoneme such as `(en)`: no sound of its own.
    if ipa.starts_with('(') {
        return vec![(1.0, Target::Any)];
    }
    let chars = base(ipa);
    if chars.is_empty() || chars == ['_'] {
        return vec![(1.0, Target::Pause)];
    }
    let vowels: Vec<Shape> = chars
        .iter()
        .filter_map(|&c| vowel_shape(c, ms * 0.6))
        .collect();
    if let Some(&first) = vowels.first() {
        // A diphthong (aɪ, aʊ, oʊ, eɪ...) opens to its first vowel and moves to its second.
        if vowels.len() >= 2 && vowels[1] != first {
            let first = match chars.first() {
                Some('a') | Some('ɑ') => Shape::D,
                _ => first,
            };
            return vec![(0.6, Target::Fixed(first)), (0.4, Target::Fixed(vowels[1]))];
        }
        // A vowel, possibly with a glide eSpeak writes into the same phoneme.
        return vec![(1.0, Target::Fixed(vowel_shape_full(&chars, ms)))];
    }
    let first = chars[0];
    match consonant_target(first, ms) {
        Some(t) => vec![(1.0, t)],
        None => {
            tracing::trace!(ipa, "unknown phoneme, treated as a consonant");
            vec![(1.0, Target::Fixed(Shape::B))]
        }
    }
}

fn vowel_shape_full(chars: &[char], ms: f64) -> Shape {
    chars
        .iter()
        .find_map(|&c| vowel_shape(c, ms))
        .unwrap_or(Shape::C)
}

/// The shape each phoneme asks for, with "any" consonants resolved to the next vowel's shape
/// (or the previous one's before a pause), as `(start_ms, end_ms, shape)` in order. Pauses are X.
/// This is the reference against which tracks are scored: the mouth a phoneme requires, before
/// timing rules.
pub fn segments(phones: &[Timed]) -> Vec<(f64, f64, Shape)> {
    let mut raw: Vec<(f64, f64, Target)> = Vec::with_capacity(phones.len() + 8);
    for p in phones {
        let ms = (p.end_ms - p.start_ms).max(0.0);
        if ms <= 0.0 {
            continue;
        }
        let mut at = p.start_ms;
        for (share, t) in targets(&p.ipa, ms) {
            let end = at + ms * share;
            raw.push((at, end, t));
            at = end;
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    for i in 0..raw.len() {
        let (s, e, t) = raw[i];
        let shape = match t {
            Target::Fixed(shape) => shape,
            Target::Pause => Shape::X,
            Target::Any => resolve_any(&raw, i),
        };
        out.push((s, e, shape));
    }
    out
}

fn resolve_any(raw: &[(f64, f64, Target)], i: usize) -> Shape {
    // The nearest vowel-ish target before a pause, after the phoneme first, else before it.
    nearest_fixed(raw[i + 1..].iter())
        .or_else(|| nearest_fixed(raw[..i].iter().rev()))
        .unwrap_or(Shape::B)
}

/// The first target that is not "any" among `targets`, when it is a lip shape a free
/// consonant can take (not a closure or teeth on lip) and comes before a pause.
fn nearest_fixed<'a>(mut targets: impl Iterator<Item = &'a (f64, f64, Target)>) -> Option<Shape> {
    match targets.find(|(_, _, t)| *t != Target::Any)?.2 {
        Target::Fixed(s) if !matches!(s, Shape::A | Shape::G) => Some(s),
        _ => None,
    }
}

/// Timing rules, all in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Shortest cue; shorter ones are absorbed by a neighbour (closures are stretched instead).
    pub min_cue_ms: f64,
    /// Shortest lip closure (A): long enough to be seen on two or more frames at 30 fps.
    pub min_closure_ms: f64,
    /// How much earlier than its phoneme a shape may start (anticipation).
    pub max_lead_ms: f64,
    /// How much later than its phoneme a shape may start.
    pub max_lag_ms: f64,
    /// Pauses shorter than this keep the previous shape instead of resting.
    pub hold_pause_ms: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            min_cue_ms: 60.0,
            min_closure_ms: 90.0,
            max_lead_ms: 40.0,
            max_lag_ms: 20.0,
            hold_pause_ms: 80.0,
        }
    }
}

/// Turns phoneme segments into cues a viewer reads as speech: equal neighbours merged, short
/// pauses held, lip closures stretched to be seen, other too-short shapes absorbed. A shape
/// that stays starts at most `max_lead_ms` before and `max_lag_ms` after its phoneme.
pub fn animate(segs: &[(f64, f64, Shape)], timing: &Timing) -> Vec<Cue> {
    // (start, end, shape, original start)
    let mut v = merge_equal(
        segs.iter()
            .filter(|(s, e, _)| e > s)
            .map(|&(s, e, shape)| (s, e, shape, s))
            .collect(),
    );
    // Short pauses inside speech keep the mouth where it was.
    for i in 1..v.len().saturating_sub(1) {
        if v[i].2 == Shape::X && v[i].1 - v[i].0 < timing.hold_pause_ms {
            v[i].2 = v[i - 1].2;
        }
    }
    let mut v = merge_equal(v);
    // Too-short shapes: stretch closures (they must be seen), absorb the rest.
    let mut changed = true;
    while changed {
        changed = false;
        let mut i = 0;
        while i < v.len() {
            let len = v[i].1 - v[i].0;
            let min = if v[i].2 == Shape::A {
                timing.min_closure_ms
            } else {
                timing.min_cue_ms
            };
            if len >= min || v.len() == 1 {
                i += 1;
                continue;
            }
            let need = min - len;
            if v[i].2 == Shape::A {
                // Start earlier into the previous shape, within the lead limit and keeping
                // the previous shape long enough; then end later within the lag limit.
                let mut grown = 0.0;
                if i > 0 {
                    let room = (v[i - 1].1 - v[i - 1].0 - timing.min_cue_ms).max(0.0);
                    let lead_left = timing.max_lead_ms - (v[i].3 - v[i].0);
                    let d = need.min(room).min(lead_left.max(0.0));
                    v[i].0 -= d;
                    v[i - 1].1 -= d;
                    grown += d;
                }
                if grown < need && i + 1 < v.len() {
                    let room = (v[i + 1].1 - v[i + 1].0 - timing.min_cue_ms).max(0.0);
                    let lag_left = timing.max_lag_ms - (v[i + 1].0 - v[i + 1].3);
                    let d = (need - grown).min(room).min(lag_left.max(0.0));
                    v[i].1 += d;
                    v[i + 1].0 += d;
                }
                i += 1;
                continue;
            }
            // Absorb: the next shape starts earlier (within its lead limit) and the previous
            // one holds until then. With no previous shape and the next too far, keep it.
            let s = v[i].0;
            let has_next = i + 1 < v.len();
            if i > 0 {
                let cut = if has_next {
                    let cut = s.max(v[i + 1].3 - timing.max_lead_ms).min(v[i].1);
                    v[i + 1].0 = cut;
                    cut
                } else {
                    v[i].1
                };
                v[i - 1].1 = cut;
            } else if has_next && v[i + 1].3 - s <= timing.max_lead_ms {
                v[i + 1].0 = s;
            } else {
                i += 1;
                continue;
            }
            v.remove(i);
            v = merge_equal(v);
            changed = true;
        }
    }
    v.into_iter()
        .map(|(s, e, shape, _)| Cue {
            start_ms: s.max(0.0).round() as u32,
            end_ms: e.max(0.0).round() as u32,
            shape,
        })
        .filter(|c| c.end_ms > c.start_ms)
        .collect()
}

fn merge_equal(v: Vec<(f64, f64, Shape, f64)>) -> Vec<(f64, f64, Shape, f64)> {
    let mut out: Vec<(f64, f64, Shape, f64)> = Vec::with_capacity(v.len());
    for c in v {
        match out.last_mut() {
            Some(last) if last.2 == c.2 => last.1 = c.1,
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: f64, end: f64, ipa: &str) -> Timed {
        Timed {
            start_ms: start,
            end_ms: end,
            ipa: ipa.to_owned(),
        }
    }

    fn shapes(phones: &[Timed]) -> String {
        segments(phones).iter().map(|s| s.2.letter()).collect()
    }

    #[test]
    fn table_covers_the_usual_symbols() {
        let check = |ipa: &str, ms: f64, want: Shape| {
            assert_eq!(
                shapes(&[t(0.0, ms, ipa)]),
                want.letter().to_string(),
                "{ipa}"
            );
        };
        check("p", 80.0, Shape::A);
        check("bʰ", 80.0, Shape::A);
        check("m", 80.0, Shape::A);
        check("aː", 150.0, Shape::D);
        check("a", 80.0, Shape::C);
        check("ɛ̃", 100.0, Shape::C);
        check("iː", 100.0, Shape::B);
        check("uː", 100.0, Shape::F);
        check("oː", 100.0, Shape::E);
        check("ʋ", 60.0, Shape::G);
        check("f", 60.0, Shape::G);
        check("l", 200.0, Shape::H);
        check("l", 60.0, Shape::B);
        check("ʈʰ", 60.0, Shape::B);
        check("_", 200.0, Shape::X);
        check("ʃ", 60.0, Shape::B);
        check("w", 60.0, Shape::F);
    }

    #[test]
    fn diphthongs_split_and_any_consonants_follow_the_vowel() {
        assert_eq!(shapes(&[t(0.0, 200.0, "aɪ")]), "DB");
        assert_eq!(shapes(&[t(0.0, 200.0, "oʊ")]), "EF");
        // h before u takes the rounded shape; k before a pause takes the previous vowel's.
        assert_eq!(
            shapes(&[
                t(0.0, 50.0, "h"),
                t(50.0, 150.0, "u"),
                t(150.0, 200.0, "k"),
                t(200.0, 400.0, "_")
            ]),
            "FFFX"
        );
    }

    #[test]
    fn animation_keeps_closures_and_respects_lead_and_lag() {
        let segs = vec![
            (0.0, 200.0, Shape::D),
            (200.0, 230.0, Shape::A),
            (230.0, 260.0, Shape::B),
            (260.0, 400.0, Shape::E),
            (400.0, 450.0, Shape::X),
            (450.0, 600.0, Shape::C),
        ];
        let cues = animate(&segs, &Timing::default());
        let letters: String = cues.iter().map(|c| c.shape.letter()).collect();
        assert_eq!(letters, "DAEC", "{cues:?}");
        let a = cues[1];
        assert!(a.end_ms - a.start_ms >= 60, "{a:?}");
        assert!(
            a.start_ms + 40 >= 200,
            "closure leads by at most 40 ms: {a:?}"
        );
        // Every kept shape starts within [-40, +20] ms of its phoneme.
        let e = cues[2];
        assert!(e.start_ms + 40 >= 260 && e.start_ms <= 280, "{e:?}");
        // Contiguous.
        for w in cues.windows(2) {
            assert_eq!(w[0].end_ms, w[1].start_ms);
        }
    }
}
