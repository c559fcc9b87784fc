//! JSON round trips of a realistic campaign and event, and the decision they lead to.

use std::collections::BTreeMap;

use trigger::{decide, in_holdout, Campaign, Decision, Event, SuppressReason};

use crate::support::{expect_dispatch, utc, TENANT};

const CAMPAIGN: &str = include_str!("data/campaign.json");
const EVENT: &str = include_str!("data/event.json");

fn parse() -> (Campaign, Event) {
    let campaign = Campaign::from_json(CAMPAIGN).unwrap_or_else(|e| panic!("{e}"));
    let event = Event::from_json(EVENT).unwrap_or_else(|e| panic!("{e}"));
    (campaign, event)
}

#[test]
fn campaign_round_trips() {
    let (campaign, _) = parse();
    let json = serde_json::to_string_pretty(&campaign).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Campaign::from_json(&json), Ok(campaign.clone()));
    // Nothing is lost or invented: the serialized form is the file's content.
    let original: serde_json::Value =
        serde_json::from_str(CAMPAIGN).unwrap_or_else(|e| panic!("{e}"));
    let mut reserialized = serde_json::to_value(&campaign).unwrap_or_else(|e| panic!("{e}"));
    // 10 and 10.0 are the same holdout; the file says 10.
    assert_eq!(reserialized["holdout_percent"], 10.0);
    reserialized["holdout_percent"] = original["holdout_percent"].clone();
    assert_eq!(reserialized, original);
}

#[test]
fn event_round_trips() {
    let (_, event) = parse();
    // The offset is normalized to UTC.
    assert_eq!(event.occurred_at, utc("2025-03-01T05:00:00Z"));
    let json = serde_json::to_string(&event).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        json.contains("\"occurred_at\":\"2025-03-01T05:00:00Z\""),
        "{json}"
    );
    assert_eq!(Event::from_json(&json), Ok(event));
}

#[test]
fn the_example_dispatches() {
    let (campaign, event) = parse();
    assert!(!in_holdout(
        &campaign.name,
        &event.customer.id,
        campaign.holdout_percent
    ));
    let d = expect_dispatch(decide(
        TENANT,
        &campaign,
        &event,
        utc("2025-03-01T05:00:05Z"),
        &[],
    ));
    // replenish_at 07:00 IST on the 31st, one day early: 07:00 IST on the 30th is quiet, so
    // 09:00 IST (03:30Z).
    assert_eq!(d.at, utc("2025-03-30T03:30:00Z"));
    assert!(d.quiet_hours_deferred);
    assert_eq!(d.lang, "hi");
    assert!(["presenter", "short"].contains(&d.variant.as_str()));
    let tokens: BTreeMap<&str, &str> = d
        .tokens
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tokens,
        BTreeMap::from([
            ("first_name", "आशा"),
            ("offer_code", "CHAI15"),
            ("order_id", "A-1001"),
            ("product", "Masala Chai 250 g"),
        ])
    );
    // The Dispatch itself round-trips (the store will keep it).
    let json = serde_json::to_string(&d).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::from_str::<trigger::Dispatch>(&json).ok(),
        Some(d)
    );

    // Two dispatches this week (including one scheduled before ours) cap it.
    let recent = [utc("2025-03-25T10:00:00Z"), utc("2025-03-29T10:00:00Z")];
    assert_eq!(
        decide(
            TENANT,
            &campaign,
            &event,
            utc("2025-03-01T05:00:05Z"),
            &recent
        ),
        Decision::Suppressed(SuppressReason::FrequencyCap)
    );
}
