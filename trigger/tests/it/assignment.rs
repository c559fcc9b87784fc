//! Holdout share, variant split, their stability and independence, and idempotency keys.

use std::collections::BTreeMap;

use serde_json::json;
use trigger::{
    assign_variant, decide, holdout_bucket, idempotency_key, in_holdout, Decision, SuppressReason,
    Variant,
};

use crate::support::{campaign, event, event_for, expect_dispatch, utc, NOW, TENANT};

const CUSTOMERS: usize = 10_000;
/// Allowed distance between an observed and an expected share, in percentage points.
const TOLERANCE: f64 = 1.5;

fn customers() -> impl Iterator<Item = String> {
    (0..CUSTOMERS).map(|i| format!("cust-{i:05}"))
}

fn share(count: usize) -> f64 {
    count as f64 * 100.0 / CUSTOMERS as f64
}

fn variants(weights: &[(&str, u32)]) -> Vec<Variant> {
    weights
        .iter()
        .map(|(name, weight)| Variant {
            name: (*name).into(),
            template: format!("t-{name}"),
            weight: *weight,
        })
        .collect()
}

#[test]
fn holdout_share_matches_the_percentage() {
    for percent in [0.0, 1.0, 5.0, 12.5, 33.3, 50.0] {
        let held = customers()
            .filter(|c| in_holdout("spring-sale", c, percent))
            .count();
        let observed = share(held);
        assert!(
            (observed - percent).abs() <= TOLERANCE,
            "{percent}%: observed {observed}%"
        );
    }
}

#[test]
fn holdout_through_decide_is_stable() {
    let c = campaign(json!({"holdout_percent": 10}));
    let now = utc(NOW);
    let run = || -> Vec<bool> {
        customers()
            .map(|id| {
                decide(TENANT, &c, &event_for(&id), now, &[])
                    == Decision::Suppressed(SuppressReason::Holdout)
            })
            .collect()
    };
    let first = run();
    let observed = share(first.iter().filter(|h| **h).count());
    assert!((observed - 10.0).abs() <= TOLERANCE, "observed {observed}%");
    assert_eq!(first, run(), "holdout must not change between calls");
    // Nor with the event: a second event of the same customer lands in the same group.
    let e2 = event(json!({"id": "evt-2", "customer": {"id": "cust-00007"}}));
    assert_eq!(
        decide(TENANT, &c, &e2, now, &[]) == Decision::Suppressed(SuppressReason::Holdout),
        first[7]
    );
}

#[test]
fn holdout_grows_monotonically_with_the_share() {
    for c in customers() {
        if in_holdout("spring-sale", &c, 5.0) {
            assert!(in_holdout("spring-sale", &c, 10.0), "{c}");
        }
        let b = holdout_bucket("spring-sale", &c);
        assert_eq!(b, holdout_bucket("spring-sale", &c));
        assert!((0.0..100.0).contains(&b));
    }
}

#[test]
fn variant_split_matches_the_weights() {
    let check = |weights: &[(&str, u32)]| {
        let vs = variants(weights);
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in customers() {
            let v = assign_variant("spring-sale", &c, &vs).map(|v| v.name.as_str());
            *counts.entry(v.unwrap_or("none")).or_default() += 1;
            // Stable across calls.
            assert_eq!(
                assign_variant("spring-sale", &c, &vs).map(|v| v.name.as_str()),
                v
            );
        }
        for (name, weight) in weights {
            let expected = f64::from(*weight) * 100.0 / f64::from(total);
            let observed = share(counts.get(name).copied().unwrap_or(0));
            assert!(
                (observed - expected).abs() <= TOLERANCE,
                "{weights:?}: {name} expected {expected}%, observed {observed}%"
            );
        }
        assert_eq!(counts.get("none"), None);
    };
    check(&[("a", 50), ("b", 50)]);
    check(&[("a", 50), ("b", 30), ("c", 20)]);
    check(&[("a", 1), ("b", 9)]);
    check(&[("only", 7)]);
    assert!(assign_variant("x", "c", &[]).is_none());
}

#[test]
fn variant_through_decide_is_stable() {
    let c = campaign(json!({"variants": [
        {"name": "a", "template": "order-delivered@live", "weight": 70},
        {"name": "b", "template": "order-delivered-short@3", "weight": 30}
    ]}));
    let run = || -> Vec<(String, String)> {
        customers()
            .take(2_000)
            .map(|id| {
                let d = expect_dispatch(decide(TENANT, &c, &event_for(&id), utc(NOW), &[]));
                (d.variant, d.template)
            })
            .collect()
    };
    let first = run();
    assert_eq!(first, run());
    let b = first.iter().filter(|(v, _)| v == "b").count();
    assert!(first
        .iter()
        .all(|(v, t)| (v == "a" && t == "order-delivered@live")
            || (v == "b" && t == "order-delivered-short@3")));
    // 30% of 2,000, give or take 3 points.
    assert!((510..=690).contains(&b), "{b}");
}

#[test]
fn holdout_and_variant_are_independent() {
    // Within the 50% holdout group and outside it, variant A's share is the same 50%.
    let vs = variants(&[("a", 1), ("b", 1)]);
    let (mut held, mut held_a, mut kept, mut kept_a) = (0usize, 0usize, 0usize, 0usize);
    for c in customers() {
        let a = assign_variant("spring-sale", &c, &vs).is_some_and(|v| v.name == "a");
        if in_holdout("spring-sale", &c, 50.0) {
            held += 1;
            held_a += usize::from(a);
        } else {
            kept += 1;
            kept_a += usize::from(a);
        }
    }
    let held_share = held_a as f64 * 100.0 / held as f64;
    let kept_share = kept_a as f64 * 100.0 / kept as f64;
    // Each share has a standard deviation of about 0.7 points here.
    assert!((held_share - 50.0).abs() <= 2.5, "{held_share}");
    assert!((kept_share - 50.0).abs() <= 2.5, "{kept_share}");

    // Campaigns are independent of each other too.
    let both = customers()
        .filter(|c| in_holdout("spring-sale", c, 50.0) && in_holdout("diwali", c, 50.0))
        .count();
    assert!((share(both) - 25.0).abs() <= TOLERANCE, "{}", share(both));
}

#[test]
fn idempotency_key_is_stable_per_tenant_campaign_customer_and_event() {
    // Pinned: keys are stored with dispatches and sent as render idempotency keys, so a change
    // must be deliberate. (The tenant joined the key when two tenants sharing campaign, customer
    // and event ids were found to collide; each stored event is decided once, so events decided
    // before that change are not decided again under the new key.)
    assert_eq!(
        idempotency_key(TENANT, "thanks", "c-1", "evt-1"),
        "trg-957fcbad5ad8a62aa17941d9752eca0c657769e99fdcbe6ecabae43d952f704d"
    );
    assert_ne!(
        idempotency_key(TENANT, "thanks", "c-1", "evt-1"),
        idempotency_key("other-brand", "thanks", "c-1", "evt-1"),
        "two tenants with the same campaign, customer and event ids get two dispatches"
    );
    let c = campaign(json!({}));
    let d1 = expect_dispatch(decide(TENANT, &c, &event(json!({})), utc(NOW), &[]));
    assert_eq!(
        d1.idempotency_key,
        idempotency_key(TENANT, "thanks", "c-1", "evt-1")
    );
    // Same event decided later, or by another version of the campaign: same key.
    let v2 = campaign(json!({"variants": [{"name": "z", "template": "other", "weight": 3}]}));
    let d2 = expect_dispatch(decide(
        TENANT,
        &v2,
        &event(json!({})),
        utc("2025-03-02T06:00:00Z"),
        &[],
    ));
    assert_eq!(d1.idempotency_key, d2.idempotency_key);
    // Another event, customer or campaign: another key.
    let other_event = expect_dispatch(decide(
        TENANT,
        &c,
        &event(json!({"id": "evt-2"})),
        utc(NOW),
        &[],
    ));
    let other_customer = expect_dispatch(decide(TENANT, &c, &event_for("c-2"), utc(NOW), &[]));
    let other_campaign = expect_dispatch(decide(
        TENANT,
        &campaign(json!({"name": "thanks-2"})),
        &event(json!({})),
        utc(NOW),
        &[],
    ));
    for d in [&other_event, &other_customer, &other_campaign] {
        assert_ne!(d.idempotency_key, d1.idempotency_key);
    }
    for key in [&d1.idempotency_key, &other_event.idempotency_key] {
        assert!(key.len() <= 128 && key.starts_with("trg-"));
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
    }
}
