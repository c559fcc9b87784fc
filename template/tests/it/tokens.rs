//! Recipient values against the token schema.

use std::collections::BTreeMap;

use template::{resolve, resolve_tokens, template_language, Manifest, TokenError};

use crate::support::{full, manifest};

fn fixture() -> Manifest {
    manifest(&full())
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err(lang: &str, pairs: &[(&str, &str)]) -> String {
    match resolve_tokens(&fixture(), lang, &values(pairs)) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn values_are_sanitized_and_every_token_gets_a_value() {
    let got = resolve_tokens(
        &fixture(),
        "en",
        &values(&[
            ("first_name", "  Priya\u{202E}  Sharma\n"),
            ("offer_code", "DIWALI-25"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        got,
        values(&[
            ("amount", ""),
            ("first_name", "Priya Sharma"),
            ("offer_code", "DIWALI-25")
        ])
    );
}

#[test]
fn fallbacks_by_language_then_star() {
    let got = resolve_tokens(&fixture(), "hi", &values(&[("first_name", " \u{200E} ")]))
        .expect("fallback");
    assert_eq!(got["first_name"], "दोस्त");
    assert_eq!(got["offer_code"], "WELCOME");
    let got = resolve_tokens(
        &fixture(),
        "en",
        &values(&[("first_name", "Asha"), ("offer_code", "")]),
    )
    .expect("fallback");
    assert_eq!(got["offer_code"], "WELCOME");
}

#[test]
fn language_tags_fall_back_to_their_primary_subtag() {
    let m = fixture();
    for (tag, want) in [
        ("hi", Some("hi")),
        ("hi-IN", Some("hi")),
        ("hi_IN", Some("hi")),
        ("EN-in", Some("en")),
        (" en ", Some("en")),
        ("ta-IN", None),
        ("eng", None),
        ("", None),
    ] {
        assert_eq!(template_language(&m, tag), want, "{tag:?}");
    }
    // A tag resolves as its language: the language's fallbacks, and a timeline in `hi`.
    let tokens = resolve_tokens(&m, "hi-IN", &values(&[("first_name", "")])).expect("hi-IN");
    assert_eq!(tokens["first_name"], "दोस्त");
    assert_eq!(resolve(&m, "hi-IN", &tokens).expect("resolve").lang, "hi");
    assert_eq!(
        err("ta-IN", &[("first_name", "Asha")]),
        "unknown language `ta-IN` (template languages: en, hi)"
    );
}

#[test]
fn required_token_without_fallback() {
    assert_eq!(
        err("en", &[]),
        "token `first_name` is required and has no fallback for language `en`"
    );
    assert_eq!(
        err("en", &[("first_name", "\u{202E}\n")]),
        "token `first_name` is required and has no fallback for language `en`"
    );
}

/// A value made only of zero-width characters would render as nothing: it is missing, so the
/// fallback applies, or a required token without one is refused.
#[test]
fn invisible_values_are_missing() {
    let invisible = "\u{200B}\u{200C}\u{200D}\u{FEFF}";
    assert_eq!(
        err("en", &[("first_name", invisible)]),
        "token `first_name` is required and has no fallback for language `en`"
    );
    let got =
        resolve_tokens(&fixture(), "hi", &values(&[("first_name", invisible)])).expect("fallback");
    assert_eq!(got["first_name"], "दोस्त");
    let got = resolve_tokens(
        &fixture(),
        "en",
        &values(&[("first_name", "A"), ("offer_code", "\u{2060}\u{200B}")]),
    )
    .expect("fallback");
    assert_eq!(got["offer_code"], "WELCOME");
}

#[test]
fn too_long_counts_characters_after_normalizing() {
    let long = "a".repeat(57);
    assert_eq!(
        err("en", &[("first_name", &long)]),
        "token `first_name`: 57 characters, at most 40 allowed"
    );
    // 40 decomposed "é" are 80 scalar values but 40 after NFC.
    let decomposed = "e\u{301}".repeat(40);
    let got =
        resolve_tokens(&fixture(), "en", &values(&[("first_name", &decomposed)])).expect("fits");
    assert_eq!(got["first_name"].chars().count(), 40);
}

#[test]
fn code_and_number_kinds() {
    assert_eq!(
        err("en", &[("first_name", "A"), ("offer_code", "AB C!")]),
        "token `offer_code`: may hold only ASCII letters, digits, '-' and '_' (found U+0020 at position 3)"
    );
    assert_eq!(
        err("en", &[("first_name", "A"), ("offer_code", "ÄB")]),
        "token `offer_code`: may hold only ASCII letters, digits, '-' and '_' (found U+00C4 at position 1)"
    );
    let message = err("en", &[("first_name", "A"), ("amount", "1e9")]);
    assert!(
        message.starts_with("token `amount`: a 3-character value that is not a decimal number"),
        "{message}"
    );
    let got = resolve_tokens(
        &fixture(),
        "en",
        &values(&[("first_name", "A"), ("amount", "-12.50")]),
    )
    .expect("number");
    assert_eq!(got["amount"], "-12.50");
}

#[test]
fn unknown_token_and_language() {
    assert_eq!(
        err("en", &[("frist_name", "Priya")]),
        "unknown token `frist_name` (template tokens: amount, first_name, offer_code)"
    );
    assert_eq!(
        err("ta", &[("first_name", "x")]),
        "unknown language `ta` (template languages: en, hi)"
    );
}

#[test]
fn errors_name_their_token() {
    let e = resolve_tokens(&fixture(), "en", &values(&[])).expect_err("required");
    assert_eq!(e.token(), Some("first_name"));
    assert!(matches!(e, TokenError::Required { .. }));
    let e = resolve_tokens(&fixture(), "xx", &values(&[])).expect_err("language");
    assert_eq!(e.token(), None);
}

#[test]
fn required_without_fallback_for_one_language_only() {
    let mut m = fixture();
    m.languages.push("ta".into());
    if let Some(spec) = m.tokens.get_mut("first_name") {
        spec.fallback.clear();
    }
    let e = resolve_tokens(&m, "ta", &values(&[])).expect_err("required");
    assert_eq!(
        e.to_string(),
        "token `first_name` is required and has no fallback for language `ta`"
    );
}
