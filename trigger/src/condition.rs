//! How a campaign's [`Condition`] judges an event: the comparison rules of its operators.
//!
//! This is behaviour of a campaign type, kept apart from `field` (which only reads values out of
//! an event) so that field paths do not depend on campaigns: `campaign` validates paths with
//! `field`, and this module builds on both.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::campaign::{Condition, Op};
use crate::event::Event;
use crate::field::field_value;

impl Condition {
    /// Whether the event satisfies this condition.
    ///
    /// The condition's value decides the comparison: a number compares numerically (with
    /// numbers, and with strings that parse as finite numbers, such as `"1299.00"`); a string
    /// compares by Unicode code points, only with strings (so ISO dates order correctly); a
    /// boolean only equals a boolean. Other pairings are unequal and unordered.
    ///
    /// A missing field (absent or null) satisfies only `not_exists`, `ne` and `not_in`: `ne` and
    /// `not_in` are the exact negations of `eq` and `in`. Add an `exists` condition to require
    /// the field as well.
    pub fn matches(&self, event: &Event) -> bool {
        let found = field_value(event, &self.field);
        let found = found.as_deref();
        let cond = self.value.as_ref();
        let ordering = || compare(found?, cond?);
        let equal = |v: Option<&Value>| matches!((found, v), (Some(f), Some(v)) if compare(f, v) == Some(Ordering::Equal));
        let any_equal = || match cond {
            Some(Value::Array(items)) => items.iter().any(|item| equal(Some(item))),
            _ => false,
        };
        match self.op {
            Op::Exists => found.is_some(),
            Op::NotExists => found.is_none(),
            Op::Eq => equal(cond),
            Op::Ne => !equal(cond),
            Op::In => any_equal(),
            Op::NotIn => !any_equal(),
            Op::Gt => ordering() == Some(Ordering::Greater),
            Op::Gte => matches!(ordering(), Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => ordering() == Some(Ordering::Less),
            Op::Lte => matches!(ordering(), Some(Ordering::Less | Ordering::Equal)),
        }
    }
}

/// How the event's value `found` orders against a condition's value `cond`; `None` when they
/// cannot be compared.
fn compare(found: &Value, cond: &Value) -> Option<Ordering> {
    match (found, cond) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Value::Number(b)) => {
            let a: f64 = a.trim().parse().ok().filter(|a: &f64| a.is_finite())?;
            a.partial_cmp(&b.as_f64()?)
        }
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Exact for two integers, by `f64` otherwise.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_by_the_condition_type() {
        let check = |found: Value, cond: Value, expect: Option<Ordering>| {
            assert_eq!(compare(&found, &cond), expect, "{found} vs {cond}")
        };
        check(json!(2), json!(10), Some(Ordering::Less));
        check(json!(1), json!(1.0), Some(Ordering::Equal));
        check(
            json!(u64::MAX),
            json!(u64::MAX - 1),
            Some(Ordering::Greater),
        );
        check(json!(-1), json!(u64::MAX), Some(Ordering::Less));
        check(json!("1299.50"), json!(1000), Some(Ordering::Greater));
        check(json!("abc"), json!(1000), None);
        check(json!("NaN"), json!(1000), None);
        check(json!("9"), json!("10"), Some(Ordering::Greater));
        check(json!(9), json!("10"), None);
        check(json!(true), json!(true), Some(Ordering::Equal));
        check(json!(true), json!("true"), None);
    }
}
