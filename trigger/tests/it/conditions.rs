//! Condition operators on numbers, strings, booleans and missing fields.

use serde_json::{json, Value};
use trigger::{decide, Decision, NoMatch};

use crate::support::{campaign, decide_now, event, utc, NOW, TENANT};

/// Whether the base event matches a campaign with the single condition `condition`.
fn check(condition: Value, expect: bool) {
    let c = campaign(json!({"conditions": [condition.clone()]}));
    let e = event(json!({}));
    let matched = !matches!(decide_now(&c, &e), Decision::NotMatched(_));
    assert_eq!(matched, expect, "{condition}");
    // The building block agrees with the decision.
    assert_eq!(c.conditions[0].matches(&e), expect, "{condition}");
}

#[test]
fn numbers_compare_numerically() {
    let total = |op: &str, value: Value, expect: bool| {
        check(
            json!({"field": "data.total", "op": op, "value": value}),
            expect,
        )
    };
    // data.total is 1299.5.
    total("eq", json!(1299.5), true);
    total("eq", json!(1299), false);
    total("ne", json!(1299), true);
    total("ne", json!(1299.5), false);
    total("gt", json!(1299), true);
    total("gt", json!(1299.5), false);
    total("gte", json!(1299.5), true);
    total("gte", json!(1300), false);
    total("lt", json!(1300), true);
    total("lt", json!(1299.5), false);
    total("lte", json!(1299.5), true);
    total("lte", json!(1000), false);
    total("in", json!([1, 1299.5]), true);
    total("in", json!([1, 2]), false);
    total("not_in", json!([1, 2]), true);
    total("not_in", json!([1299.5]), false);
    // Not "9" > "1299.5" as strings would say: numbers are compared as numbers.
    total("gt", json!(9), true);
    // A string condition does not compare with a number.
    total("eq", json!("1299.5"), false);
    total("gt", json!("1"), false);

    // Integers and floats compare by value.
    check(
        json!({"field": "customer.attributes.age", "op": "eq", "value": 34.0}),
        true,
    );
    check(
        json!({"field": "customer.attributes.age", "op": "gte", "value": 18}),
        true,
    );
    check(
        json!({"field": "customer.attributes.age", "op": "lt", "value": 18}),
        false,
    );
    // A numeric string in the event compares numerically with a number condition.
    check(
        json!({"field": "data.total_text", "op": "gt", "value": 1000}),
        true,
    );
    check(
        json!({"field": "data.total_text", "op": "eq", "value": 1299.5}),
        true,
    );
    // A non-numeric string does not.
    check(
        json!({"field": "data.product", "op": "gt", "value": 0}),
        false,
    );
    check(
        json!({"field": "data.product", "op": "lt", "value": 0}),
        false,
    );
}

#[test]
fn strings_compare_as_strings() {
    check(
        json!({"field": "customer.attributes.tier", "op": "eq", "value": "gold"}),
        true,
    );
    check(
        json!({"field": "customer.attributes.tier", "op": "eq", "value": "Gold"}),
        false,
    );
    check(
        json!({"field": "customer.attributes.tier", "op": "ne", "value": "silver"}),
        true,
    );
    check(
        json!({"field": "customer.attributes.tier", "op": "in", "value": ["gold", "platinum"]}),
        true,
    );
    check(
        json!({"field": "customer.attributes.tier", "op": "not_in", "value": ["gold", "platinum"]}),
        false,
    );
    check(
        json!({"field": "customer.attributes.tier", "op": "not_in", "value": ["silver"]}),
        true,
    );
    // Lexicographic: ISO dates order correctly.
    check(
        json!({"field": "data.delivered_on", "op": "gte", "value": "2025-03-01"}),
        true,
    );
    check(
        json!({"field": "data.delivered_on", "op": "gt", "value": "2025-03-01"}),
        false,
    );
    check(
        json!({"field": "data.delivered_on", "op": "lt", "value": "2025-12-31"}),
        true,
    );
    check(
        json!({"field": "data.product", "op": "lt", "value": "N"}),
        true,
    );
    // Customer fields and nested data.
    check(
        json!({"field": "customer.lang", "op": "eq", "value": "hi"}),
        true,
    );
    check(
        json!({"field": "customer.tz", "op": "eq", "value": "Asia/Kolkata"}),
        true,
    );
    check(
        json!({"field": "customer.id", "op": "in", "value": ["c-1", "c-2"]}),
        true,
    );
    check(
        json!({"field": "data.items.0.sku", "op": "eq", "value": "CHAI-250"}),
        true,
    );
    check(json!({"field": "data.items.1.sku", "op": "exists"}), false);
    // Booleans equal booleans only.
    check(
        json!({"field": "customer.attributes.vip", "op": "eq", "value": true}),
        true,
    );
    check(
        json!({"field": "customer.attributes.vip", "op": "ne", "value": true}),
        false,
    );
    check(
        json!({"field": "customer.attributes.vip", "op": "eq", "value": "true"}),
        false,
    );
}

#[test]
fn missing_fields() {
    for field in [
        "data.coupon",
        "customer.attributes.nickname",
        "data.order_id.deeper",
    ] {
        // nickname is null: null counts as missing; order_id is a string, it has no fields.
        let check_op = |op: &str, value: Option<Value>, expect: bool| {
            let mut c = json!({"field": field, "op": op});
            if let Some(v) = value {
                c["value"] = v;
            }
            check(c, expect)
        };
        check_op("exists", None, false);
        check_op("not_exists", None, true);
        check_op("eq", Some(json!("x")), false);
        check_op("in", Some(json!(["x"])), false);
        check_op("gt", Some(json!(0)), false);
        check_op("gte", Some(json!(0)), false);
        check_op("lt", Some(json!(0)), false);
        check_op("lte", Some(json!("z")), false);
        // ne and not_in are the negations of eq and in.
        check_op("ne", Some(json!("x")), true);
        check_op("not_in", Some(json!(["x"])), true);
    }
    check(json!({"field": "data.product", "op": "exists"}), true);
    check(json!({"field": "data.product", "op": "not_exists"}), false);
    // A customer without lang.
    let c = campaign(json!({"conditions": [{"field": "customer.lang", "op": "exists"}]}));
    let e = event(json!({"customer": {"lang": null}}));
    assert_eq!(
        decide_now(&c, &e),
        Decision::NotMatched(NoMatch::Condition { index: 0 })
    );
}

#[test]
fn conditions_are_anded_and_the_first_false_one_is_reported() {
    let c = campaign(json!({"conditions": [
        {"field": "data.total", "op": "gt", "value": 100},
        {"field": "customer.attributes.tier", "op": "eq", "value": "silver"},
        {"field": "data.coupon", "op": "exists"}
    ]}));
    assert_eq!(
        decide_now(&c, &event(json!({}))),
        Decision::NotMatched(NoMatch::Condition { index: 1 })
    );
    let e = event(json!({"customer": {"attributes": {"tier": "silver"}}, "data": {"coupon": "X"}}));
    assert!(matches!(decide_now(&c, &e), Decision::Dispatch(_)));
}

#[test]
fn event_type_must_match_first() {
    let c = campaign(json!({}));
    // Even an opted-out customer is "not matched", not "suppressed", by another event type.
    let e = event(json!({"type": "order_shipped", "customer": {"opted_out": true}}));
    assert_eq!(
        decide(TENANT, &c, &e, utc(NOW), &[]),
        Decision::NotMatched(NoMatch::EventType)
    );
}
