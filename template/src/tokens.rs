//! Recipient token values: sanitizing untrusted text, `{{token}}` placeholders, and resolving a
//! request's values against a template's token schema.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;

use crate::error::TokenError;
use crate::manifest::{Manifest, TokenKind, TokenSpec};

/// Makes an untrusted value safe to render: removes control characters (line breaks and tabs
/// become spaces), bidirectional marks, embeddings, overrides and isolates (U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069, U+061C) and U+FEFF; NFC-normalizes; collapses runs of
/// whitespace into one space and trims both ends.
///
/// Zero-width joiner and non-joiner (U+200D, U+200C) are kept: Indic and Arabic spelling needs
/// them.
///
/// A value with no visible character — only spaces and invisible characters such as zero-width
/// space, joiners, word joiner, soft hyphen or variation selectors — becomes the empty string,
/// so it counts as missing: the token's fallback applies, or a required token is refused,
/// instead of rendering nothing.
pub fn sanitize(value: &str) -> String {
    let stripped: String = value
        .chars()
        .filter_map(|c| {
            if c.is_control() {
                c.is_whitespace().then_some(' ')
            } else if is_bidi_control(c) || c == '\u{FEFF}' {
                None
            } else {
                Some(c)
            }
        })
        .collect();
    let mut out = String::with_capacity(stripped.len());
    for word in stripped.nfc().collect::<String>().split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if !out.chars().any(|c| !c.is_whitespace() && !is_invisible(c)) {
        out.clear();
    }
    out
}

/// Characters that draw nothing on their own (Unicode's default-ignorable code points, less
/// the bidi controls already stripped, and the Hangul fillers).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// One piece of a text with placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text shown as is.
    Literal(&'a str),
    /// A `{{name}}` placeholder (spaces inside the braces are allowed and ignored).
    Token(&'a str),
}

/// A malformed placeholder in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlaceholderError {
    /// `{{` at this byte offset has no matching `}}`.
    Unclosed(usize),
    /// `{{...}}` holds something that is not a token name.
    BadName(String),
}

impl std::fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceholderError::Unclosed(at) => write!(
                f,
                "`{{{{` at character {} is never closed; write `{{{{token_name}}}}`",
                at + 1
            ),
            PlaceholderError::BadName(name) => write!(
                f,
                "`{{{{{name}}}}}` is not a placeholder: token names match `[a-z_][a-z0-9_]{{0,31}}`"
            ),
        }
    }
}

/// Splits `text` into literal pieces and `{{token}}` placeholders.
pub(crate) fn parse_placeholders(text: &str) -> Result<Vec<Segment<'_>>, PlaceholderError> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(Segment::Literal(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            let consumed = text.len() - rest.len();
            let at = text[..consumed + open].chars().count();
            return Err(PlaceholderError::Unclosed(at));
        };
        let name = after[..close].trim();
        if !is_token_name(name) {
            return Err(PlaceholderError::BadName(after[..close].to_owned()));
        }
        segments.push(Segment::Token(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest));
    }
    Ok(segments)
}

/// The token names used in `text`, in order of appearance (repeats included); `None` when a
/// placeholder is malformed.
pub fn placeholders(text: &str) -> Option<Vec<&str>> {
    let segments = parse_placeholders(text).ok()?;
    Some(
        segments
            .into_iter()
            .filter_map(|s| match s {
                Segment::Token(name) => Some(name),
                Segment::Literal(_) => None,
            })
            .collect(),
    )
}

/// True for a valid token name: `[a-z_][a-z0-9_]{0,31}`.
pub(crate) fn is_token_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= 32
        && (first.is_ascii_lowercase() || first == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// True when every character is an ASCII letter, digit, `-` or `_`.
pub(crate) fn is_code(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True for a plain decimal number: optional `-` or `+`, digits, optionally `.` and digits.
pub(crate) fn is_decimal(value: &str) -> bool {
    let unsigned = value
        .strip_prefix('-')
        .or_else(|| value.strip_prefix('+'))
        .unwrap_or(value);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// Checks a sanitized value against a token's length and kind.
pub(crate) fn check_value(name: &str, spec: &TokenSpec, value: &str) -> Result<(), TokenError> {
    let length = value.chars().count();
    if length > spec.max_length {
        return Err(TokenError::TooLong {
            name: name.to_owned(),
            length,
            max: spec.max_length,
        });
    }
    if value.is_empty() {
        return Ok(());
    }
    match spec.kind {
        TokenKind::Text => Ok(()),
        TokenKind::Code if is_code(value) => Ok(()),
        TokenKind::Code => Err(TokenError::NotCode {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
        TokenKind::Number if is_decimal(value) => Ok(()),
        TokenKind::Number => Err(TokenError::NotNumber {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// The template language a request's language tag stands for: the declared language equal to
/// `tag` (compared case-insensitively, `_` read as `-`), else the one equal to its primary
/// subtag (`en-IN` → `en`, `hi_IN` → `hi`). `None` when the template declares neither.
pub fn template_language<'a>(manifest: &'a Manifest, tag: &str) -> Option<&'a str> {
    let normalize = |s: &str| s.trim().replace('_', "-").to_ascii_lowercase();
    let tag = normalize(tag);
    let primary = tag.split('-').next().unwrap_or_default();
    let declared = || manifest.languages.iter();
    declared()
        .find(|l| normalize(l) == tag)
        .or_else(|| declared().find(|l| normalize(l) == primary))
        .map(String::as_str)
}

/// Resolves a request's token values for language `lang` (a tag such as `en-IN` means the
/// template's `en`; see [`template_language`]): every value is [`sanitize`]d; a
/// missing or empty value takes the token's fallback for `lang`, else its `"*"` fallback, else is
/// an error when the token is required, else the empty string. Each value is then checked against
/// the token's `max_length` (in characters) and kind.
///
/// Returns a value for every declared token. Fails on a language the template does not declare,
/// on a value for an undeclared token, and on the first value that breaks its token's rules.
pub fn resolve_tokens(
    manifest: &Manifest,
    lang: &str,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, TokenError> {
    let Some(lang) = template_language(manifest, lang) else {
        return Err(TokenError::UnknownLanguage {
            lang: lang.to_owned(),
            available: manifest.languages.clone(),
        });
    };
    if let Some(name) = values.keys().find(|k| !manifest.tokens.contains_key(*k)) {
        return Err(TokenError::UnknownToken {
            name: name.clone(),
            declared: manifest.tokens.keys().cloned().collect(),
        });
    }
    let mut resolved = BTreeMap::new();
    for (name, spec) in &manifest.tokens {
        let given = values.get(name).map(|v| sanitize(v)).unwrap_or_default();
        let value = if given.is_empty() {
            match spec.fallback.get(lang).or_else(|| spec.fallback.get("*")) {
                Some(fallback) => sanitize(fallback),
                None if spec.required => {
                    return Err(TokenError::Required {
                        name: name.clone(),
                        lang: lang.to_owned(),
                    })
                }
                None => String::new(),
            }
        } else {
            given
        };
        check_value(name, spec, &value)?;
        resolved.insert(name.clone(), value);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        assert_eq!(sanitize(input), expect, "sanitize({input:?})");
    }

    #[test]
    fn sanitize_cases() {
        check("Priya", "Priya");
        check("  Priya   Sharma \n", "Priya Sharma");
        check("a\nb\r\nc\td", "a b c d");
        check("a\u{0}b\u{7}c\u{1b}[31m", "abc[31m");
        check("\u{202E}evil\u{202C}", "evil");
        check(
            "\u{200E}\u{200F}\u{061C}x\u{2066}\u{2067}\u{2068}\u{2069}",
            "x",
        );
        check("\u{202A}\u{202B}\u{202D}y", "y");
        check("\u{FEFF}z", "z");
        check("e\u{301}", "\u{e9}");
        check("e\u{202E}\u{301}", "\u{e9}");
        check(
            "\u{915}\u{94D}\u{200D}\u{937}",
            "\u{915}\u{94D}\u{200D}\u{937}",
        );
        check(
            "\u{915}\u{94D}\u{200C}\u{937}",
            "\u{915}\u{94D}\u{200C}\u{937}",
        );
        check("a\u{a0}\u{2003}b", "a b");
        check("a\u{85}b", "a b");
        check("", "");
        check(" \n\t ", "");
        // Nothing visible: missing.
        check("\u{200B}\u{200C}\u{200D}\u{FEFF}", "");
        check("\u{200B} \u{2060}\u{00AD}\u{FE0F}", "");
        check("\u{3164}", "");
        // Something visible: kept whole, joiners included.
        check("\u{200B}a\u{200B}", "\u{200B}a\u{200B}");
        check("\u{915}\u{200D}", "\u{915}\u{200D}");
    }

    fn check_parse(input: &str, expect: Result<Vec<Segment<'_>>, PlaceholderError>) {
        assert_eq!(parse_placeholders(input), expect, "parse({input:?})");
    }

    #[test]
    fn placeholder_cases() {
        use Segment::{Literal, Token};
        check_parse("", Ok(vec![]));
        check_parse("Hi", Ok(vec![Literal("Hi")]));
        check_parse(
            "Hi {{first_name}}!",
            Ok(vec![Literal("Hi "), Token("first_name"), Literal("!")]),
        );
        check_parse("{{ a }}{{b}}", Ok(vec![Token("a"), Token("b")]));
        check_parse("a } b { c }}", Ok(vec![Literal("a } b { c }}")]));
        check_parse("Hi {{name", Err(PlaceholderError::Unclosed(3)));
        check_parse("é {{x}} {{", Err(PlaceholderError::Unclosed(8)));
        check_parse("{{First}}", Err(PlaceholderError::BadName("First".into())));
        check_parse("{{}}", Err(PlaceholderError::BadName(String::new())));
    }

    fn check_decimal(input: &str, expect: bool) {
        assert_eq!(is_decimal(input), expect, "is_decimal({input:?})");
    }

    #[test]
    fn decimal_cases() {
        check_decimal("0", true);
        check_decimal("42", true);
        check_decimal("-3.5", true);
        check_decimal("+10.25", true);
        check_decimal("", false);
        check_decimal("-", false);
        check_decimal("1.", false);
        check_decimal(".5", false);
        check_decimal("1e5", false);
        check_decimal("NaN", false);
        check_decimal("inf", false);
        check_decimal("1,000", false);
        check_decimal("१२", false);
    }

    #[test]
    fn token_name_cases() {
        for good in ["a", "_", "first_name", "x1", &"a".repeat(32)] {
            assert!(is_token_name(good), "{good}");
        }
        for bad in ["", "1a", "First", "a-b", "a b", "é", &"a".repeat(33)] {
            assert!(!is_token_name(bad), "{bad}");
        }
    }
}
