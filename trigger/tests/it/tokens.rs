//! Token mapping: fields, literals, optional and required tokens.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use trigger::{Decision, SuppressReason};

use crate::support::{campaign, decide_now, event, expect_dispatch};

/// The tokens the base event gets from a campaign with `tokens`, or the missing token.
fn check(tokens: Value, event_patch: Value, expect: Result<&[(&str, &str)], &str>) {
    let c = campaign(json!({ "tokens": tokens.clone() }));
    let decision = decide_now(&c, &event(event_patch));
    match expect {
        Ok(pairs) => {
            let want: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(expect_dispatch(decision).tokens, want, "{tokens}");
        }
        Err(token) => assert_eq!(
            decision,
            Decision::Suppressed(SuppressReason::MissingToken {
                token: token.into()
            }),
            "{tokens}"
        ),
    }
}

#[test]
fn fields_and_literals() {
    check(
        json!({
            "first_name": "customer.attributes.first_name",
            "product": "data.product",
            "offer_code": {"literal": "SAVE10"},
            "total": "data.total",
            "vip": "customer.attributes.vip",
            "sku": {"field": "data.items.0.sku"},
            "lang": "customer.lang"
        }),
        json!({}),
        Ok(&[
            ("first_name", "Asha"),
            ("product", "Masala Chai"),
            ("offer_code", "SAVE10"),
            ("total", "1299.5"),
            ("vip", "true"),
            ("sku", "CHAI-250"),
            ("lang", "hi"),
        ]),
    );
    check(json!({}), json!({}), Ok(&[]));
}

#[test]
fn optional_tokens_are_left_out() {
    check(
        json!({
            "first_name": {"field": "customer.attributes.first_name", "required": false},
            "coupon": {"field": "data.coupon", "required": false},
            "note": {"field": "data.note", "required": false}
        }),
        json!({}),
        Ok(&[("first_name", "Asha")]),
    );
}

#[test]
fn required_tokens_without_value_suppress() {
    // Absent, null, blank, a list, an object: no value.
    check(json!({"coupon": "data.coupon"}), json!({}), Err("coupon"));
    check(
        json!({"nick": "customer.attributes.nickname"}),
        json!({}),
        Err("nick"),
    );
    check(json!({"note": "data.note"}), json!({}), Err("note"));
    check(json!({"items": "data.items"}), json!({}), Err("items"));
    check(json!({"first": "data.items.0"}), json!({}), Err("first"));
    check(
        json!({"first_name": {"field": "customer.attributes.first_name", "required": true}}),
        json!({"customer": {"attributes": {"first_name": null}}}),
        Err("first_name"),
    );
    // The first missing one by name is reported.
    check(
        json!({"zeta": "data.z", "alpha": "data.a", "product": "data.product"}),
        json!({}),
        Err("alpha"),
    );
    // Present once the event carries it.
    check(
        json!({"coupon": "data.coupon"}),
        json!({"data": {"coupon": "FEST-50"}}),
        Ok(&[("coupon", "FEST-50")]),
    );
}
