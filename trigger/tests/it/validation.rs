//! Validation: every problem is listed with its JSON path; event errors never carry attribute
//! values.

use serde_json::{json, Value};
use trigger::{Campaign, Event, TriggerError, MAX_DATA_FIELDS, MAX_EVENT_INPUT_BYTES};

use crate::support::{base_campaign, base_event, merge, patched};

fn paths(err: &TriggerError) -> Vec<String> {
    err.problems().into_iter().map(|p| p.path).collect()
}

fn campaign_err(patch: Value) -> TriggerError {
    match Campaign::from_json(&patched(base_campaign(), patch.clone())) {
        Ok(_) => panic!("accepted: {patch}"),
        Err(e) => e,
    }
}

fn event_err(patch: Value) -> TriggerError {
    match Event::from_json(&patched(base_event(), patch.clone())) {
        Ok(_) => panic!("accepted: {patch}"),
        Err(e) => e,
    }
}

#[test]
fn campaign_lists_every_problem() {
    let err = campaign_err(json!({
        "name": "Spring Sale!",
        "event_type": "Order Delivered",
        "conditions": [
            {"field": "data.total", "op": "gt", "value": [1]},
            {"field": "total", "op": "eq", "value": 1},
            {"field": "data.x", "op": "exists", "value": 1},
            {"field": "data.x", "op": "in", "value": []},
            {"field": "data.x", "op": "eq"},
            {"field": "data.x", "op": "in", "value": [1, {"a": 1}]},
            {"field": "data.x", "op": "not_in", "value": "gold"},
            {"field": "customer.attributes.tier", "op": "ne", "value": "gold"}
        ],
        "variants": [
            {"name": "a", "template": "ok@live", "weight": 0},
            {"name": "a", "template": "Bad Name", "weight": 1},
            {"name": "b", "template": "ok@0", "weight": 10001}
        ],
        "languages": {"supported": ["en", "English", "en"], "fallback": "fr"},
        "tokens": {"First Name": "data.x", "offer": {"literal": " "}, "p": "data..x", "q": {"field": "order"}},
        "delay": {"at_field": "customer.lang", "offset_seconds": 99_999_999},
        "quiet_hours": {"start": "25:00", "end": "9am"},
        "frequency_cap": {"max": 0, "per_seconds": 0},
        "holdout_percent": 60,
        "destination": {"url": "ftp://hooks.example.com", "secret_ref": ""}
    }));
    assert!(matches!(err, TriggerError::InvalidCampaign(_)), "{err}");
    assert_eq!(
        paths(&err),
        [
            "name",
            "event_type",
            "conditions[0].value",
            "conditions[1].field",
            "conditions[2].value",
            "conditions[3].value",
            "conditions[4].value",
            "conditions[5].value[1]",
            "conditions[6].value",
            "variants[0].weight",
            "variants[1].name",
            "variants[1].template",
            "variants[2].template",
            "variants[2].weight",
            "languages.supported[1]",
            "languages.supported[2]",
            "languages.fallback",
            "tokens[\"First Name\"]",
            "tokens.offer",
            "tokens.p",
            "tokens.q",
            "delay.at_field",
            "delay.offset_seconds",
            "quiet_hours.start",
            "quiet_hours.end",
            "frequency_cap.max",
            "frequency_cap.per_seconds",
            "holdout_percent",
            "destination.url",
            "destination.secret_ref",
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("invalid campaign, 30 problems:"), "{text}");
    for needle in [
        "name: \"Spring Sale!\" is not a campaign name",
        "conditions[2].value: `exists` takes no value",
        "variants[1].name: \"a\" is used by an earlier variant",
        "languages.fallback: \"fr\" is not one of the supported languages (en, English, en)",
        "holdout_percent: 60 is out of range 0..=50",
        "delay.offset_seconds: 99999999 is out of range",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn campaign_smaller_rules() {
    let check = |patch: Value, expect: &[&str]| {
        assert_eq!(paths(&campaign_err(patch.clone())), expect, "{patch}");
    };
    check(json!({"variants": []}), &["variants"]);
    check(
        json!({"quiet_hours": {"start": "21:00", "end": "21:00"}}),
        &["quiet_hours.end"],
    );
    check(
        json!({"languages": {"supported": []}}),
        &["languages.supported", "languages.fallback"],
    );
    check(json!({"holdout_percent": -1}), &["holdout_percent"]);
    check(
        json!({"delay": {"after_seconds": 40_000_000}}),
        &["delay.after_seconds"],
    );
    check(
        json!({"destination": {"url": "https://user:pw@example.com/x"}}),
        &["destination.url"],
    );
    let many: Vec<Value> = (0..33)
        .map(|_| json!({"field": "data.x", "op": "exists"}))
        .collect();
    check(json!({ "conditions": many }), &["conditions"]);
    // A valid campaign has no problems; 50% holdout and a literal of 200 characters are fine.
    let ok = patched(
        base_campaign(),
        json!({"holdout_percent": 50, "tokens": {"t": {"literal": "x".repeat(200)}}}),
    );
    assert_eq!(Campaign::from_json(&ok).map(|_| ()), Ok(()));
}

#[test]
fn campaign_shape_errors_name_the_path() {
    let check = |patch: Value, path: &str, message: &str| {
        let err = campaign_err(patch.clone());
        match &err {
            TriggerError::Json {
                path: p,
                message: m,
                ..
            } => {
                assert_eq!(p, path, "{patch}");
                assert!(m.contains(message), "{patch}: {m}");
            }
            other => panic!("{patch}: expected a JSON error, got {other}"),
        }
    };
    check(
        json!({"quiet_hour": {}}),
        "quiet_hour",
        "unknown field `quiet_hour`",
    );
    check(
        json!({"conditions": [{"field": "data.x", "op": "equals", "value": 1}]}),
        "conditions[0].op",
        "unknown variant `equals`",
    );
    check(
        json!({"delay": {"after_seconds": 10, "at_field": "data.x"}}),
        "delay",
        "{\"after_seconds\": N} or {\"at_field\"",
    );
    check(
        json!({"delay": {"after_seconds": -1}}),
        "delay",
        "after_seconds",
    );
    check(
        json!({"tokens": {"t": {"literal": "x", "field": "data.x"}}}),
        "tokens.t",
        "{\"literal\": \"SAVE10\"}",
    );
    check(
        json!({"variants": [{"name": "a", "template": "t", "weight": 1.5}]}),
        "variants[0].weight",
        "invalid type",
    );
    let err = Campaign::from_json("{\"name\": ").map(|_| ());
    assert!(
        matches!(err, Err(TriggerError::Json { ref path, .. }) if path.is_empty()),
        "{err:?}"
    );
}

#[test]
fn event_lists_every_problem_without_attribute_values() {
    let mut doc = base_event();
    // Replace the attributes wholesale so that only the ones below exist.
    doc["customer"]["attributes"] = json!({
        "bad name": "SECRET-1",
        "address": {"street": "SECRET-2"},
        "ok": "SECRET-3",
        "list": ["SECRET-4"]
    });
    merge(
        &mut doc,
        json!({
            "id": "",
            "type": "Order!",
            "customer": {"id": "x".repeat(129), "lang": "english", "tz": "Mars/Base"},
            "data": {"bad.key": 1}
        }),
    );
    let err = Event::from_json(&doc.to_string())
        .map(|_| ())
        .expect_err("invalid");
    assert!(matches!(err, TriggerError::InvalidEvent(_)), "{err}");
    assert_eq!(
        paths(&err),
        [
            "id",
            "type",
            "customer.id",
            "customer.lang",
            "customer.tz",
            "customer.attributes.address",
            "customer.attributes[\"bad name\"]",
            "customer.attributes.list",
            "data[\"bad.key\"]",
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("customer.tz: unknown time zone \"Mars/Base\""),
        "{text}"
    );
    assert!(
        text.contains(
            "customer.attributes.address: must be a string, number, boolean or null, not an object"
        ),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "attribute value leaked:\n{text}");
}

#[test]
fn event_parse_errors_never_quote_values() {
    let check = |patch: Value, path: &str| {
        let err = event_err(patch.clone());
        let text = err.to_string();
        assert!(matches!(err, TriggerError::Json { .. }), "{patch}: {text}");
        assert_eq!(paths(&err), [path], "{patch}: {text}");
        assert!(!text.contains("SECRET"), "value leaked: {text}");
    };
    check(
        json!({"customer": {"consent": "SECRET-5"}}),
        "customer.consent",
    );
    check(
        json!({"customer": {"attributes": "SECRET-6"}}),
        "customer.attributes",
    );
    check(json!({"customer": {"id": 12345}}), "customer.id");
    check(json!({"occurred_at": "SECRET-7"}), "occurred_at");
    check(json!({"data": ["SECRET-8"]}), "data");
    let err = event_err(json!({"customer": {"consnet": true}}));
    assert!(err.to_string().contains("unknown field `consnet`"), "{err}");
    // The message keeps the kinds: what was found and what was expected.
    let err = event_err(json!({"customer": {"consent": "SECRET-5"}}));
    assert!(
        err.to_string()
            .contains("invalid type: string, expected a boolean"),
        "{err}"
    );
}

#[test]
fn event_size_limits() {
    let fields = |n: usize| -> Value {
        Value::Object((0..n).map(|i| (format!("f{i}"), json!(i))).collect())
    };
    let with_data = |data: Value| {
        let mut doc = base_event();
        doc["data"] = data;
        Event::from_json(&doc.to_string())
    };
    assert!(with_data(fields(MAX_DATA_FIELDS)).is_ok());
    let err = with_data(fields(MAX_DATA_FIELDS + 1))
        .map(|_| ())
        .expect_err("65 fields");
    assert_eq!(paths(&err), ["data"]);

    // Over 8 KiB serialized.
    let err = with_data(json!({"blob": "x".repeat(8_000)}))
        .map(|_| ())
        .expect_err("too big");
    assert_eq!(paths(&err), [""]);
    assert!(
        err.to_string().contains("more than the 8192 allowed"),
        "{err}"
    );

    // Far too large input is refused before parsing.
    let huge = format!("{{\"id\": \"{}\"}}", "x".repeat(MAX_EVENT_INPUT_BYTES));
    assert!(matches!(
        Event::from_json(&huge),
        Err(TriggerError::TooLarge { what: "event", .. })
    ));
}
