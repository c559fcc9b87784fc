//! Builders shared by the tests: a base campaign and event as JSON, patched per test.

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::{json, Value};
use trigger::{decide, Campaign, Decision, Dispatch, Event};

/// The `now` of most tests: 11:30 in Kolkata, outside any quiet window used here.
pub const NOW: &str = "2025-03-01T06:00:00Z";
/// The tenant the rules tests decide for.
pub const TENANT: &str = "acme";

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
        .with_timezone(&Utc)
}

pub fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
}

pub fn base_campaign() -> Value {
    json!({
        "name": "thanks",
        "event_type": "order_delivered",
        "variants": [{"name": "a", "template": "order-delivered@live", "weight": 1}],
        "languages": {"supported": ["en", "hi"], "fallback": "en"},
        "destination": {"url": "https://hooks.example.com/reelfarm", "secret_ref": "brand-hook"}
    })
}

pub fn base_event() -> Value {
    json!({
        "id": "evt-1",
        "type": "order_delivered",
        "customer": {
            "id": "c-1",
            "lang": "hi",
            "tz": "Asia/Kolkata",
            "consent": true,
            "attributes": {"first_name": "Asha", "tier": "gold", "age": 34, "vip": true, "nickname": null}
        },
        "occurred_at": "2025-03-01T05:00:00Z",
        "data": {
            "order_id": "A-1001",
            "product": "Masala Chai",
            "total": 1299.5,
            "total_text": "1299.50",
            "delivered_on": "2025-03-01",
            "replenish_at": "2025-03-20T09:00:00+05:30",
            "items": [{"sku": "CHAI-250"}],
            "note": "  "
        }
    })
}

/// Deep-merges `patch` into `base`: objects merge key by key, `null` removes a key, anything
/// else replaces.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    base.remove(&k);
                } else {
                    merge(base.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

pub fn patched(mut base: Value, patch: Value) -> String {
    merge(&mut base, patch);
    base.to_string()
}

/// The base campaign with `patch`, which must be valid.
pub fn campaign(patch: Value) -> Campaign {
    let json = patched(base_campaign(), patch);
    Campaign::from_json(&json).unwrap_or_else(|e| panic!("invalid test campaign: {e}\n{json}"))
}

/// The base event with `patch`, which must be valid.
pub fn event(patch: Value) -> Event {
    let json = patched(base_event(), patch);
    Event::from_json(&json).unwrap_or_else(|e| panic!("invalid test event: {e}\n{json}"))
}

/// Decides at [`NOW`] with no recent dispatches.
pub fn decide_now(campaign: &Campaign, event: &Event) -> Decision {
    decide(TENANT, campaign, event, utc(NOW), &[])
}

pub fn expect_dispatch(decision: Decision) -> Dispatch {
    match decision {
        Decision::Dispatch(d) => d,
        other => panic!("expected a dispatch, got {other:?}"),
    }
}

/// An event for customer `id` (other fields from the base event).
pub fn event_for(id: &str) -> Event {
    event(json!({"customer": {"id": id}}))
}
