//! Delays, quiet hours (across midnight, DST changes, odd offsets) and the frequency cap
//! window.

use chrono_tz::Tz;
use serde_json::{json, Value};
use trigger::{apply_quiet_hours, decide, Decision, SuppressReason};

use crate::support::{campaign, event, expect_dispatch, hm, utc, NOW, TENANT};

/// The dispatch time of the base event (occurred 05:00Z, now 06:00Z) under `campaign_patch`.
fn dispatch_at(campaign_patch: Value, event_patch: Value) -> String {
    let c = campaign(campaign_patch);
    let d = expect_dispatch(decide(TENANT, &c, &event(event_patch), utc(NOW), &[]));
    d.at.to_rfc3339()
}

#[test]
fn delays() {
    let check = |delay: Value, event_patch: Value, expect: &str| {
        assert_eq!(
            dispatch_at(json!({ "delay": delay.clone() }), event_patch),
            utc(expect).to_rfc3339(),
            "{delay}"
        )
    };
    // No delay: now.
    check(Value::Null, json!({}), NOW);
    // Ten days after the event occurred (not after now).
    check(
        json!({"after_seconds": 864000}),
        json!({}),
        "2025-03-11T05:00:00Z",
    );
    check(json!({"after_seconds": 0}), json!({}), NOW);
    // An event that arrives late: the delay already passed → now.
    check(
        json!({"after_seconds": 3600}),
        json!({"occurred_at": "2025-02-01T00:00:00Z"}),
        NOW,
    );
    // The replenishment date the event carries (09:00 IST on the 20th = 03:30Z), one day early.
    check(
        json!({"at_field": "data.replenish_at"}),
        json!({}),
        "2025-03-20T03:30:00Z",
    );
    check(
        json!({"at_field": "data.replenish_at", "offset_seconds": -86400}),
        json!({}),
        "2025-03-19T03:30:00Z",
    );
    check(
        json!({"at_field": "data.replenish_at", "offset_seconds": 3600}),
        json!({}),
        "2025-03-20T04:30:00Z",
    );
    // A date without time is local midnight (IST), here plus 10 hours.
    check(
        json!({"at_field": "data.refill_on", "offset_seconds": 36000}),
        json!({"data": {"refill_on": "2025-03-20"}}),
        "2025-03-20T04:30:00Z",
    );
    // Customer attributes can carry the time too.
    check(
        json!({"at_field": "customer.attributes.birthday"}),
        json!({"customer": {"attributes": {"birthday": "2025-06-01T04:00:00Z"}}}),
        "2025-06-01T04:00:00Z",
    );
    // A time already past → now, not suppressed.
    check(
        json!({"at_field": "data.replenish_at"}),
        json!({"data": {"replenish_at": "2025-02-01T00:00:00Z"}}),
        NOW,
    );
    check(
        json!({"at_field": "data.replenish_at", "offset_seconds": -2_000_000}),
        json!({}),
        NOW,
    );
    // Missing or not a time → suppressed.
    for bad in [json!(null), json!("next week"), json!(1742443200)] {
        let c = campaign(json!({"delay": {"at_field": "data.replenish_at"}}));
        let e = event(json!({"data": {"replenish_at": bad}}));
        assert_eq!(
            decide(TENANT, &c, &e, utc(NOW), &[]),
            Decision::Suppressed(SuppressReason::MissingDelayTime {
                field: "data.replenish_at".into()
            })
        );
    }
}

/// `apply_quiet_hours` of `at` in `tz` with window `start`–`end`: the new time, or `None` for
/// "unchanged".
fn check(tz: Tz, at: &str, start: &str, end: &str, expect: Option<&str>) {
    let (got, moved) = apply_quiet_hours(utc(at), tz, hm(start), hm(end));
    let want = expect.map(utc).unwrap_or(utc(at));
    assert_eq!(got, want, "{tz} {at} in {start}–{end}: got {got}");
    assert_eq!(moved, expect.is_some(), "{tz} {at} in {start}–{end}");
}

#[test]
fn quiet_hours_spanning_midnight_in_kolkata() {
    let k = Tz::Asia__Kolkata; // UTC+05:30
    let (s, e) = ("21:00", "09:00");
    // 20:59 IST: before the window.
    check(k, "2025-03-01T15:29:00Z", s, e, None);
    // 21:00 IST: the window starts; moved to 09:00 IST next day (03:30Z).
    check(
        k,
        "2025-03-01T15:30:00Z",
        s,
        e,
        Some("2025-03-02T03:30:00Z"),
    );
    // 23:45 IST.
    check(
        k,
        "2025-03-01T18:15:00Z",
        s,
        e,
        Some("2025-03-02T03:30:00Z"),
    );
    // 00:30 IST (still the 1st in UTC): moved to 09:00 IST the same local day.
    check(
        k,
        "2025-03-01T19:00:00Z",
        s,
        e,
        Some("2025-03-02T03:30:00Z"),
    );
    // 08:59:59 IST.
    check(
        k,
        "2025-03-02T03:29:59Z",
        s,
        e,
        Some("2025-03-02T03:30:00Z"),
    );
    // 09:00 IST: the window has ended.
    check(k, "2025-03-02T03:30:00Z", s, e, None);
    // A window within one day.
    check(
        k,
        "2025-03-01T07:00:00Z",
        "12:00",
        "14:00",
        Some("2025-03-01T08:30:00Z"),
    );
    check(k, "2025-03-01T08:30:00Z", "12:00", "14:00", None);
    // Kathmandu, UTC+05:45: 22:00 local → 09:00 local = 03:15Z.
    check(
        Tz::Asia__Kathmandu,
        "2025-03-01T16:15:00Z",
        s,
        e,
        Some("2025-03-02T03:15:00Z"),
    );
    // UTC.
    check(
        Tz::UTC,
        "2025-03-01T22:00:00Z",
        s,
        e,
        Some("2025-03-02T09:00:00Z"),
    );
}

#[test]
fn quiet_hours_across_dst_changes_in_new_york() {
    let ny = Tz::America__New_York;
    // Spring forward, 2025-03-09 02:00 EST → 03:00 EDT.
    // 22:00 EST on the 8th → 09:00 EDT on the 9th, which is 13:00Z (not 14:00Z).
    check(
        ny,
        "2025-03-09T03:00:00Z",
        "21:00",
        "09:00",
        Some("2025-03-09T13:00:00Z"),
    );
    // A window ending at 02:30, which does not exist that night: the first instant after it
    // is the change itself, 03:00 EDT = 07:00Z.
    check(
        ny,
        "2025-03-09T06:00:00Z",
        "21:00",
        "02:30",
        Some("2025-03-09T07:00:00Z"),
    );
    // And a window starting inside the gap: 03:10 EDT is after 02:30 local, so quiet.
    check(
        ny,
        "2025-03-09T07:10:00Z",
        "02:30",
        "06:00",
        Some("2025-03-09T10:00:00Z"),
    );

    // Fall back, 2025-11-02 02:00 EDT → 01:00 EST; 01:00–02:00 happens twice.
    // 23:00 EDT on the 1st → 09:00 EST on the 2nd, 14:00Z.
    check(
        ny,
        "2025-11-02T03:00:00Z",
        "21:00",
        "09:00",
        Some("2025-11-02T14:00:00Z"),
    );
    // A window ending at the ambiguous 01:30: the first 01:10 (EDT) moves to the first 01:30
    // (EDT, 05:30Z)…
    check(
        ny,
        "2025-11-02T05:10:00Z",
        "00:00",
        "01:30",
        Some("2025-11-02T05:30:00Z"),
    );
    // …the 01:40 EDT between them is outside the window…
    check(ny, "2025-11-02T05:40:00Z", "00:00", "01:30", None);
    // …and the second 01:10 (EST) moves to the second 01:30 (EST, 06:30Z), never back in time.
    check(
        ny,
        "2025-11-02T06:10:00Z",
        "00:00",
        "01:30",
        Some("2025-11-02T06:30:00Z"),
    );
}

#[test]
fn quiet_hours_through_decide() {
    let quiet = json!({"quiet_hours": {"start": "21:00", "end": "09:00"}});
    // Now is 11:30 IST: not quiet.
    let c = campaign(quiet.clone());
    let d = expect_dispatch(decide(TENANT, &c, &event(json!({})), utc(NOW), &[]));
    assert_eq!((d.at, d.quiet_hours_deferred), (utc(NOW), false));
    // A 12-hour delay: occurred 10:30 IST + 12 h = 22:30 IST, quiet → 09:00 IST next day.
    let mut patch = quiet.clone();
    crate::support::merge(&mut patch, json!({"delay": {"after_seconds": 43200}}));
    let c = campaign(patch);
    let d = expect_dispatch(decide(TENANT, &c, &event(json!({})), utc(NOW), &[]));
    assert_eq!(d.at, utc("2025-03-02T03:30:00Z"));
    assert!(d.quiet_hours_deferred);
    // The same instant for a customer in New York (12:00 EST) is not quiet.
    let d = expect_dispatch(decide(
        TENANT,
        &c,
        &event(json!({"customer": {"tz": "America/New_York"}})),
        utc(NOW),
        &[],
    ));
    assert_eq!(
        (d.at, d.quiet_hours_deferred),
        (utc("2025-03-01T17:00:00Z"), false)
    );
    // Without a time zone the customer is in UTC: 17:00Z is not quiet either.
    let d = expect_dispatch(decide(
        TENANT,
        &c,
        &event(json!({"customer": {"tz": null}})),
        utc(NOW),
        &[],
    ));
    assert_eq!(d.at, utc("2025-03-01T17:00:00Z"));
}

#[test]
fn frequency_cap_window() {
    // At most 2 per 7 days; the dispatch is at NOW (2025-03-01T06:00:00Z).
    let c = campaign(json!({"frequency_cap": {"max": 2, "per_seconds": 604800}}));
    let check = |recent: &[&str], capped: bool| {
        let recent: Vec<_> = recent.iter().map(|t| utc(t)).collect();
        let d = decide(TENANT, &c, &event(json!({})), utc(NOW), &recent);
        assert_eq!(
            d == Decision::Suppressed(SuppressReason::FrequencyCap),
            capped,
            "{recent:?}: {d:?}"
        );
    };
    let week_before = "2025-02-22T06:00:00Z";
    let just_inside = "2025-02-22T06:00:01Z";
    check(&[], false);
    check(&["2025-02-28T06:00:00Z"], false);
    check(&["2025-02-28T06:00:00Z", "2025-02-27T06:00:00Z"], true);
    // Exactly one window before no longer counts; one second later does.
    check(&["2025-02-28T06:00:00Z", week_before], false);
    check(&["2025-02-28T06:00:00Z", just_inside], true);
    // A dispatch at the same instant counts; later ones (scheduled) do not.
    check(&["2025-02-28T06:00:00Z", NOW], true);
    check(
        &[
            "2025-02-28T06:00:00Z",
            "2025-03-01T06:00:01Z",
            "2025-03-05T00:00:00Z",
        ],
        false,
    );

    // The window ends at the dispatch time, after the delay: with a 10-day delay, last
    // week's dispatches are outside it.
    let delayed = campaign(json!({
        "frequency_cap": {"max": 1, "per_seconds": 604800},
        "delay": {"after_seconds": 864000}
    }));
    let recent = [utc("2025-02-28T06:00:00Z")];
    assert!(matches!(
        decide(TENANT, &delayed, &event(json!({})), utc(NOW), &recent),
        Decision::Dispatch(_)
    ));
    let recent = [utc("2025-03-08T06:00:00Z")];
    assert_eq!(
        decide(TENANT, &delayed, &event(json!({})), utc(NOW), &recent),
        Decision::Suppressed(SuppressReason::FrequencyCap)
    );
}
