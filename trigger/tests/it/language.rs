//! Language: the customer's preference, then a supported relative, then the fallback.

use serde_json::json;
use trigger::{choose_language, Decision, Languages, SuppressReason};

use crate::support::{campaign, decide_now, event, expect_dispatch};

fn check(
    preferred: Option<&str>,
    supported: &[&str],
    fallback: Option<&str>,
    expect: Option<&str>,
) {
    let languages = Languages {
        supported: supported.iter().map(|s| (*s).to_owned()).collect(),
        fallback: fallback.map(str::to_owned),
    };
    assert_eq!(
        choose_language(&languages, preferred),
        expect,
        "{preferred:?} in {supported:?} (fallback {fallback:?})"
    );
}

#[test]
fn preference_then_supported_then_fallback() {
    let s = &["en", "hi", "pt-BR", "ta"];
    check(Some("hi"), s, Some("en"), Some("hi"));
    check(Some("HI"), s, Some("en"), Some("hi"));
    check(Some("pt-BR"), s, Some("en"), Some("pt-BR"));
    check(Some("pt_br"), s, Some("en"), Some("pt-BR"));
    // A regional preference falls back to its base language…
    check(Some("en-IN"), s, Some("hi"), Some("en"));
    check(Some("ta-Latn-IN"), s, Some("en"), Some("ta"));
    // …and a base preference to a supported regional variant.
    check(Some("pt"), s, Some("en"), Some("pt-BR"));
    check(Some("pt-PT"), s, Some("en"), Some("pt-BR"));
    // An exact match wins over the base language.
    check(Some("en-GB"), &["en", "en-GB"], None, Some("en-GB"));
    // Unsupported or absent → fallback.
    check(Some("bn"), s, Some("en"), Some("en"));
    check(None, s, Some("hi"), Some("hi"));
    // No fallback → none.
    check(Some("bn"), s, None, None);
    check(None, s, None, None);
}

#[test]
fn through_decide() {
    let c = campaign(json!({"languages": {"supported": ["en", "hi", "ta"], "fallback": "en"}}));
    let lang = |patch| expect_dispatch(decide_now(&c, &event(patch))).lang;
    assert_eq!(lang(json!({})), "hi");
    assert_eq!(lang(json!({"customer": {"lang": "ta_IN"}})), "ta");
    assert_eq!(lang(json!({"customer": {"lang": "fr"}})), "en");
    assert_eq!(lang(json!({"customer": {"lang": null}})), "en");

    let strict = campaign(json!({"languages": {"supported": ["hi"], "fallback": null}}));
    assert_eq!(
        decide_now(&strict, &event(json!({"customer": {"lang": "fr"}}))),
        Decision::Suppressed(SuppressReason::UnsupportedLanguage)
    );
    assert_eq!(
        expect_dispatch(decide_now(&strict, &event(json!({})))).lang,
        "hi"
    );
}
