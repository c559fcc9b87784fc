//! Stable assignments: holdout group, A/B variant, language, idempotency key.
//!
//! Holdout and variant come from a SHA-256 of a purpose salt, the campaign name and the
//! customer id (each length-prefixed), first 8 bytes read as a big-endian `u64`. The salts
//! differ (`holdout`, `variant`), so the two assignments are independent of each other; the
//! campaign name is hashed too, so a customer's groups in different campaigns are independent.
//! Nothing else is hashed: the same customer gets the same answers for every event, across
//! processes and releases. Changing the variant weights (or their order) or the holdout share
//! reassigns some customers, and renaming a campaign reassigns all of them.

use sha2::{Digest, Sha256};

use crate::campaign::{Languages, Variant};

/// SHA-256 over a domain tag, `salt` and each part, length-prefixed so that no two
/// different part lists hash the same bytes.
fn digest(salt: &str, parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"reelfarm.trigger.v1\0");
    for part in std::iter::once(salt).chain(parts.iter().copied()) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

fn stable_u64(salt: &str, campaign: &str, customer_id: &str) -> u64 {
    let d = digest(salt, &[campaign, customer_id]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// The customer's holdout position in campaign `campaign`, uniform in `[0, 100)`: the customer
/// is held out when it is below the campaign's `holdout_percent`. So raising the share only
/// adds customers to the holdout group, and lowering it only releases some.
pub fn holdout_bucket(campaign: &str, customer_id: &str) -> f64 {
    // The top 53 bits, exactly representable, scaled to [0, 100).
    let h = stable_u64("holdout", campaign, customer_id) >> 11;
    h as f64 / (1u64 << 53) as f64 * 100.0
}

/// Whether the customer is in the campaign's holdout group of `percent` percent.
pub fn in_holdout(campaign: &str, customer_id: &str, percent: f64) -> bool {
    holdout_bucket(campaign, customer_id) < percent
}

/// The customer's variant: a stable point in `[0, total weight)` picks the variant whose
/// cumulative weight range holds it. `None` when there are no variants or all weights are 0.
pub fn assign_variant<'a>(
    campaign: &str,
    customer_id: &str,
    variants: &'a [Variant],
) -> Option<&'a Variant> {
    let total: u64 = variants.iter().map(|v| u64::from(v.weight)).sum();
    if total == 0 {
        return None;
    }
    let h = stable_u64("variant", campaign, customer_id);
    // Multiply-shift maps [0, 2^64) onto [0, total) evenly.
    let mut point = ((u128::from(h) * u128::from(total)) >> 64) as u64;
    for v in variants {
        let w = u64::from(v.weight);
        if point < w {
            return Some(v);
        }
        point -= w;
    }
    None
}

/// The idempotency key of the render for (tenant, campaign, customer, event): `trg-` and 64
/// hex digits of a SHA-256, 68 printable ASCII characters. It does not depend on the campaign
/// version, the variant or the time, so re-deciding the same event (a retry, a redelivered
/// event, a new campaign version) cannot lead to a second render; it does depend on the
/// tenant, since dispatch keys are unique across the whole store and two tenants may well use
/// the same campaign name, customer ids and event ids.
pub fn idempotency_key(tenant: &str, campaign: &str, customer_id: &str, event_id: &str) -> String {
    format!(
        "trg-{}",
        hex::encode(digest(
            "idempotency",
            &[tenant, campaign, customer_id, event_id]
        ))
    )
}

/// The language to render in, as written in `supported`: the customer's preferred language
/// if supported (compared case-insensitively, `_` as `-`); else the supported language equal
/// to its primary subtag (`en-IN` → `en`); else the first supported language with the same
/// primary subtag (`pt` → `pt-BR`); else the fallback. `None` when none applies: the customer
/// is then suppressed.
pub fn choose_language<'a>(languages: &'a Languages, preferred: Option<&str>) -> Option<&'a str> {
    let normalize = |s: &str| s.replace('_', "-").to_ascii_lowercase();
    let primary = |s: &str| -> String { s.split('-').next().unwrap_or_default().to_owned() };
    let chosen = preferred.map(normalize).and_then(|pref| {
        let supported = || languages.supported.iter().map(|s| (s, normalize(s)));
        let pref_primary = primary(&pref);
        supported()
            .find(|(_, s)| *s == pref)
            .or_else(|| supported().find(|(_, s)| *s == pref_primary))
            .or_else(|| supported().find(|(_, s)| primary(s) == pref_primary))
            .map(|(s, _)| s.as_str())
    });
    chosen.or(languages.fallback.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_length_prefixed() {
        assert_ne!(digest("s", &["ab", "c"]), digest("s", &["a", "bc"]));
        assert_ne!(digest("s", &["a"]), digest("t", &["a"]));
    }

    #[test]
    fn idempotency_keys_are_stable_and_printable() {
        let k = idempotency_key("t", "c", "cust", "evt");
        assert_eq!(k, idempotency_key("t", "c", "cust", "evt"));
        assert_ne!(k, idempotency_key("t2", "c", "cust", "evt"));
        assert_eq!(k.len(), 68);
        assert!(k.starts_with("trg-") && k.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(k, idempotency_key("t", "c", "cust", "evt2"));
        assert_ne!(k, idempotency_key("t", "c2", "cust", "evt"));
        assert_ne!(k, idempotency_key("t", "c", "cust2", "evt"));
    }

    #[test]
    fn buckets_are_in_range() {
        for i in 0..1000 {
            let b = holdout_bucket("c", &i.to_string());
            assert!((0.0..100.0).contains(&b), "{b}");
        }
    }
}
