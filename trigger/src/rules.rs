//! The decision: does this event lead to a video for this campaign, which one, and when.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::assign::{assign_variant, choose_language, idempotency_key, in_holdout};
use crate::campaign::{Campaign, Delay, TokenSource};
use crate::event::Event;
use crate::field::{field_value, token_text};
use crate::schedule::{add_seconds, apply_quiet_hours, parse_time_value};

/// What a campaign does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The campaign does not apply to this event. Not a suppression: not counted as one.
    NotMatched(NoMatch),
    /// The campaign applies but sends nothing, for this reason. Holdout customers land here
    /// too: recorded, no video.
    Suppressed(SuppressReason),
    /// Render and deliver this.
    Dispatch(Dispatch),
}

/// Why a campaign does not apply to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatch {
    /// The event's type is not the campaign's.
    EventType,
    /// The condition at this index of `conditions` does not hold.
    Condition {
        /// Index into the campaign's `conditions`.
        index: usize,
    },
    /// The campaign has no variant with a positive weight (only an invalid campaign).
    NoVariants,
}

/// Why a matching event leads to no video.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuppressReason {
    /// The customer opted out.
    OptedOut,
    /// The customer did not consent to marketing messages (or the event did not say).
    NoConsent,
    /// The customer is in the campaign's holdout group.
    Holdout,
    /// The customer already got `max` dispatches in the cap's window before this one.
    FrequencyCap,
    /// The delay's `at_field` is missing or holds no time.
    MissingDelayTime {
        /// The field path.
        field: String,
    },
    /// Neither the customer's language nor a fallback is supported.
    UnsupportedLanguage,
    /// A required token's field is missing, null, blank, a list or an object.
    MissingToken {
        /// The token name.
        token: String,
    },
}

impl SuppressReason {
    /// A stable snake_case label for metrics and records, e.g. `no_consent`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SuppressReason::OptedOut => "opted_out",
            SuppressReason::NoConsent => "no_consent",
            SuppressReason::Holdout => "holdout",
            SuppressReason::FrequencyCap => "frequency_cap",
            SuppressReason::MissingDelayTime { .. } => "missing_delay_time",
            SuppressReason::UnsupportedLanguage => "unsupported_language",
            SuppressReason::MissingToken { .. } => "missing_token",
        }
    }
}

impl fmt::Display for SuppressReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuppressReason::MissingDelayTime { field } => {
                write!(f, "missing_delay_time: `{field}` holds no time")
            }
            SuppressReason::MissingToken { token } => {
                write!(f, "missing_token: token `{token}` has no value")
            }
            other => f.write_str(other.as_str()),
        }
    }
}

/// A render to request and deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The variant's name.
    pub variant: String,
    /// The variant's template reference, e.g. `order-delivered@live`.
    pub template: String,
    /// The language to render in, one of the campaign's supported languages.
    pub lang: String,
    /// Template token values. Optional tokens whose field is missing are absent.
    pub tokens: BTreeMap<String, String>,
    /// When to dispatch: after the delay and outside quiet hours, never before `now`.
    pub at: DateTime<Utc>,
    /// Render idempotency key, stable for (tenant, campaign name, customer id, event id); see
    /// [`idempotency_key`](crate::idempotency_key).
    pub idempotency_key: String,
    /// Whether quiet hours moved `at`.
    pub quiet_hours_deferred: bool,
}

/// Decides what `campaign` of `tenant` does with `event` at `now`, given the times of the customer's
/// dispatches (scheduled or sent, across all campaigns of the tenant) that the store knows.
///
/// Checks run in this order; the first that fails decides:
///
/// 1. **match**: the event type, then each condition in order → [`Decision::NotMatched`]
///    (a campaign without variants matches nothing);
/// 2. **opt-out** → [`SuppressReason::OptedOut`];
/// 3. **consent** (absent means none) → [`SuppressReason::NoConsent`];
/// 4. **holdout**: [`in_holdout`](crate::in_holdout) with the campaign's share →
///    [`SuppressReason::Holdout`]; so holdout groups are drawn from customers who could have
///    received the video;
/// 5. **time**: the delay from `occurred_at` (`after_seconds`) or from the time in `at_field`
///    plus `offset_seconds` (missing or unparsable → [`SuppressReason::MissingDelayTime`]); a
///    time already past means now, it is not suppressed; then quiet hours move it out of the
///    customer's quiet window (see [`apply_quiet_hours`](crate::apply_quiet_hours));
/// 6. **frequency cap**: the dispatches in `(at − per_seconds, at]` are counted; `max` or
///    more → [`SuppressReason::FrequencyCap`]. A dispatch exactly `per_seconds` before `at` no
///    longer counts; dispatches scheduled after `at` do not count (the scheduler may check
///    again when they are due);
/// 7. **variant** ([`assign_variant`](crate::assign_variant)), **language**
///    ([`choose_language`](crate::choose_language); none → [`SuppressReason::UnsupportedLanguage`])
///    and **tokens** (the first required one, by name, without a value →
///    [`SuppressReason::MissingToken`]) → [`Decision::Dispatch`].
///
/// Pure and total: the same inputs give the same decision, and nothing panics. It expects a
/// validated campaign and event; with invalid ones the decision is well-defined but
/// unspecified (an unknown time zone counts as UTC, an unparsable quiet window is ignored, an
/// invalid field path reads as missing).
pub fn decide(
    tenant: &str,
    campaign: &Campaign,
    event: &Event,
    now: DateTime<Utc>,
    recent_dispatches: &[DateTime<Utc>],
) -> Decision {
    if event.event_type != campaign.event_type {
        return Decision::NotMatched(NoMatch::EventType);
    }
    if let Some(index) = campaign.conditions.iter().position(|c| !c.matches(event)) {
        return Decision::NotMatched(NoMatch::Condition { index });
    }
    let customer = &event.customer;
    let Some(variant) = assign_variant(&campaign.name, &customer.id, &campaign.variants) else {
        return Decision::NotMatched(NoMatch::NoVariants);
    };
    let suppressed = Decision::Suppressed;
    if customer.opted_out {
        return suppressed(SuppressReason::OptedOut);
    }
    if !customer.consent {
        return suppressed(SuppressReason::NoConsent);
    }
    if in_holdout(&campaign.name, &customer.id, campaign.holdout_percent) {
        return suppressed(SuppressReason::Holdout);
    }

    let tz = customer.time_zone();
    let due = match &campaign.delay {
        None => now,
        Some(Delay::After { after_seconds }) => add_seconds(
            event.occurred_at,
            i64::try_from(*after_seconds).unwrap_or(i64::MAX),
        ),
        Some(Delay::At {
            at_field,
            offset_seconds,
        }) => match field_value(event, at_field).and_then(|v| parse_time_value(&v, tz)) {
            Some(t) => add_seconds(t, *offset_seconds),
            None => {
                return suppressed(SuppressReason::MissingDelayTime {
                    field: at_field.clone(),
                })
            }
        },
    };
    let due = due.max(now);
    let (at, quiet_hours_deferred) = match campaign.quiet_hours.as_ref().and_then(|q| q.parse()) {
        Some((start, end)) => apply_quiet_hours(due, tz, start, end),
        None => (due, false),
    };

    if let Some(cap) = &campaign.frequency_cap {
        let window_start = add_seconds(at, -i64::try_from(cap.per_seconds).unwrap_or(i64::MAX));
        let count = recent_dispatches
            .iter()
            .filter(|t| window_start < **t && **t <= at)
            .count();
        if count >= cap.max as usize {
            return suppressed(SuppressReason::FrequencyCap);
        }
    }

    let Some(lang) = choose_language(&campaign.languages, customer.lang.as_deref()) else {
        return suppressed(SuppressReason::UnsupportedLanguage);
    };
    let mut tokens = BTreeMap::new();
    for (name, source) in &campaign.tokens {
        let (field, required) = match source {
            TokenSource::Literal { literal } => {
                tokens.insert(name.clone(), literal.clone());
                continue;
            }
            TokenSource::Path(field) => (field, true),
            TokenSource::Field { field, required } => (field, *required),
        };
        match field_value(event, field).and_then(|v| token_text(&v)) {
            Some(text) => {
                tokens.insert(name.clone(), text);
            }
            None if required => {
                return suppressed(SuppressReason::MissingToken {
                    token: name.clone(),
                })
            }
            None => {}
        }
    }

    Decision::Dispatch(Dispatch {
        variant: variant.name.clone(),
        template: variant.template.clone(),
        lang: lang.to_owned(),
        tokens,
        at,
        idempotency_key: idempotency_key(tenant, &campaign.name, &customer.id, &event.id),
        quiet_hours_deferred,
    })
}
