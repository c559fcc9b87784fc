//! Every suppression reason, and the order in which the checks run.

use serde_json::{json, Value};
use trigger::{decide, in_holdout, Decision, SuppressReason};

use crate::support::{campaign, event, utc, NOW, TENANT};

/// What the base campaign and event, patched, decide at `NOW` with `recent` dispatches.
fn check(
    campaign_patch: Value,
    event_patch: Value,
    recent: &[&str],
    expect: Option<SuppressReason>,
) {
    let c = campaign(campaign_patch.clone());
    let e = event(event_patch.clone());
    let recent: Vec<_> = recent.iter().map(|t| utc(t)).collect();
    let decision = decide(TENANT, &c, &e, utc(NOW), &recent);
    match (&decision, &expect) {
        (Decision::Suppressed(got), Some(want)) => {
            assert_eq!(got, want, "{campaign_patch} {event_patch}")
        }
        (Decision::Dispatch(_), None) => {}
        _ => panic!("{campaign_patch} {event_patch}: expected {expect:?}, got {decision:?}"),
    }
}

/// A customer id in (`true`) or out of the holdout group of `percent` in campaign `thanks`.
fn customer_with_holdout(percent: f64, held_out: bool) -> String {
    (0..)
        .map(|i| format!("c-{i}"))
        .find(|id| in_holdout("thanks", id, percent) == held_out)
        .unwrap_or_default()
}

#[test]
fn every_reason() {
    use SuppressReason::*;
    let none = json!({});
    check(none.clone(), none.clone(), &[], None);
    check(
        none.clone(),
        json!({"customer": {"opted_out": true}}),
        &[],
        Some(OptedOut),
    );
    check(
        none.clone(),
        json!({"customer": {"consent": false}}),
        &[],
        Some(NoConsent),
    );
    // Consent defaults to false.
    check(
        none.clone(),
        json!({"customer": {"consent": null}}),
        &[],
        Some(NoConsent),
    );

    let held = customer_with_holdout(50.0, true);
    let kept = customer_with_holdout(50.0, false);
    let holdout = json!({"holdout_percent": 50});
    check(
        holdout.clone(),
        json!({"customer": {"id": held}}),
        &[],
        Some(Holdout),
    );
    check(
        holdout.clone(),
        json!({"customer": {"id": kept}}),
        &[],
        None,
    );

    let cap = json!({"frequency_cap": {"max": 1, "per_seconds": 86400}});
    check(
        cap.clone(),
        none.clone(),
        &["2025-03-01T00:00:00Z"],
        Some(FrequencyCap),
    );
    check(cap.clone(), none.clone(), &["2025-02-27T00:00:00Z"], None);

    check(
        json!({"delay": {"at_field": "data.refill_at"}}),
        none.clone(),
        &[],
        Some(MissingDelayTime {
            field: "data.refill_at".into(),
        }),
    );
    check(
        json!({"delay": {"at_field": "data.product"}}),
        none.clone(),
        &[],
        Some(MissingDelayTime {
            field: "data.product".into(),
        }),
    );

    let no_fallback = json!({"languages": {"supported": ["ta"], "fallback": null}});
    check(
        no_fallback.clone(),
        none.clone(),
        &[],
        Some(UnsupportedLanguage),
    );
    check(no_fallback, json!({"customer": {"lang": "ta"}}), &[], None);

    check(
        json!({"tokens": {"coupon": "data.coupon"}}),
        none.clone(),
        &[],
        Some(MissingToken {
            token: "coupon".into(),
        }),
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    use SuppressReason::*;
    let held = customer_with_holdout(50.0, true);
    // Everything wrong at once: opt-out wins, then consent, then holdout, then the delay
    // time, then the cap, then language, then tokens.
    let all = json!({
        "holdout_percent": 50,
        "delay": {"at_field": "data.refill_at"},
        "frequency_cap": {"max": 1, "per_seconds": 86400},
        "languages": {"supported": ["ta"], "fallback": null},
        "tokens": {"coupon": "data.coupon"}
    });
    let cap_hit = ["2025-03-01T05:00:00Z"];
    check(
        all.clone(),
        json!({"customer": {"id": held, "opted_out": true, "consent": false}}),
        &cap_hit,
        Some(OptedOut),
    );
    check(
        all.clone(),
        json!({"customer": {"id": held, "consent": false}}),
        &cap_hit,
        Some(NoConsent),
    );
    check(
        all.clone(),
        json!({"customer": {"id": held}}),
        &cap_hit,
        Some(Holdout),
    );

    let kept = customer_with_holdout(50.0, false);
    let c = |patch: Value| {
        let mut all = all.clone();
        crate::support::merge(&mut all, patch);
        all
    };
    check(
        c(json!({})),
        json!({"customer": {"id": kept}}),
        &cap_hit,
        Some(MissingDelayTime {
            field: "data.refill_at".into(),
        }),
    );
    let timed =
        c(json!({"delay": {"at_field": "data.replenish_at", "offset_seconds": -1_728_000}}));
    check(
        timed.clone(),
        json!({"customer": {"id": kept}}),
        &cap_hit,
        Some(FrequencyCap),
    );
    check(
        timed.clone(),
        json!({"customer": {"id": kept}}),
        &[],
        Some(UnsupportedLanguage),
    );
    check(
        timed.clone(),
        json!({"customer": {"id": kept, "lang": "ta"}}),
        &[],
        Some(MissingToken {
            token: "coupon".into(),
        }),
    );
    check(
        timed,
        json!({"customer": {"id": kept, "lang": "ta"}, "data": {"coupon": "X"}}),
        &[],
        None,
    );
}

#[test]
fn labels_are_stable() {
    use SuppressReason::*;
    let labels: Vec<&str> = [
        OptedOut,
        NoConsent,
        Holdout,
        FrequencyCap,
        MissingDelayTime {
            field: "data.x".into(),
        },
        UnsupportedLanguage,
        MissingToken { token: "t".into() },
    ]
    .iter()
    .map(SuppressReason::as_str)
    .collect();
    assert_eq!(
        labels,
        [
            "opted_out",
            "no_consent",
            "holdout",
            "frequency_cap",
            "missing_delay_time",
            "unsupported_language",
            "missing_token"
        ]
    );
    assert_eq!(
        MissingToken {
            token: "first_name".into()
        }
        .to_string(),
        "missing_token: token `first_name` has no value"
    );
}
