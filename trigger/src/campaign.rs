//! Campaign definitions as the API and CLI accept them, and their validation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use template::Problem;

use crate::error::{key, parse_json, quoted, TriggerError};
use crate::event::{is_event_type, is_language_code};
use crate::field::{parse_field, FieldRef};

/// Largest campaign JSON document [`Campaign::from_json`] parses, in bytes.
pub const MAX_CAMPAIGN_BYTES: usize = 256 * 1024;
/// Most conditions of a campaign.
pub const MAX_CONDITIONS: usize = 32;
/// Most values of an `in` or `not_in` condition.
pub const MAX_IN_VALUES: usize = 256;
/// Most A/B variants of a campaign.
pub const MAX_VARIANTS: usize = 16;
/// Largest variant weight.
pub const MAX_WEIGHT: u32 = 10_000;
/// Most tokens a campaign maps.
pub const MAX_TOKENS: usize = 64;
/// Longest literal token value, in characters.
pub const MAX_LITERAL_CHARS: usize = 200;
/// Longest delay, delay offset and frequency-cap window: 366 days, in seconds.
pub const MAX_PERIOD_SECONDS: u64 = 366 * 86_400;
/// Largest frequency-cap `max`.
pub const MAX_CAP: u32 = 1_000;
/// Largest holdout share, in percent.
pub const MAX_HOLDOUT_PERCENT: f64 = 50.0;
/// Longest destination URL, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;

/// A campaign: which events it reacts to, who gets which video, in which language, when, and
/// where the result goes. Versioned by the store; unknown fields are rejected.
///
/// ```json
/// {
///   "name": "order-delivered-thanks",
///   "event_type": "order_delivered",
///   "conditions": [{"field": "data.total", "op": "gte", "value": 500}],
///   "variants": [{"name": "a", "template": "order-delivered@live", "weight": 50},
///                {"name": "b", "template": "order-delivered-short@live", "weight": 50}],
///   "languages": {"supported": ["en", "hi"], "fallback": "en"},
///   "tokens": {"first_name": "customer.attributes.first_name", "product": "data.product",
///              "offer_code": {"literal": "SAVE10"}},
///   "delay": {"after_seconds": 864000},
///   "quiet_hours": {"start": "21:00", "end": "09:00"},
///   "frequency_cap": {"max": 2, "per_seconds": 604800},
///   "holdout_percent": 10,
///   "destination": {"url": "https://hooks.example.com/reelfarm", "secret_ref": "brand-webhook"}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Name, unique per tenant, `[a-z0-9-]{1,64}`. Holdout, variant and idempotency key hash it,
    /// so renaming a campaign reassigns its customers.
    pub name: String,
    /// The event type it reacts to, e.g. `order_delivered`.
    pub event_type: String,
    /// Conditions on event fields and customer attributes, all of which must hold; at most
    /// [`MAX_CONDITIONS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// A/B variants, 1 to [`MAX_VARIANTS`], with unique names.
    pub variants: Vec<Variant>,
    /// Languages the templates support and the fallback.
    pub languages: Languages,
    /// Template token name → where its value comes from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, TokenSource>,
    /// When to dispatch relative to the event; absent means at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// A daily window, in the customer's time zone, in which nothing is dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// At most this many dispatches per customer per window, across all campaigns of a tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCap>,
    /// Share of matching, consenting customers held out (recorded, no video), 0 to 50 percent.
    #[serde(default)]
    pub holdout_percent: f64,
    /// Where deliveries go.
    pub destination: Destination,
}

/// One predicate on an event; see [`Condition::matches`] for how values compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Field path: `data.<name>[.<name>…]`, `customer.attributes.<name>`, `customer.id`,
    /// `customer.lang` or `customer.tz`.
    pub field: String,
    /// Comparison.
    pub op: Op,
    /// The value to compare with: a string, number or boolean for `eq`/`ne`; a number or string
    /// for `gt`/`gte`/`lt`/`lte`; a non-empty list of those for `in`/`not_in`; none for
    /// `exists`/`not_exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// A condition's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (true when the field is missing).
    Ne,
    /// Equal to one of a list.
    In,
    /// Equal to none of a list (true when the field is missing).
    NotIn,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Present and not null.
    Exists,
    /// Absent or null.
    NotExists,
}

/// An A/B variant: which template a share of customers gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name, unique in the campaign, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// Template reference: `name`, `name@VERSION` or `name@ALIAS`, e.g. `order-delivered@live`.
    pub template: String,
    /// Relative weight, 1 to [`MAX_WEIGHT`].
    pub weight: u32,
}

/// Which languages the campaign's templates support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Languages {
    /// Supported codes, e.g. `["en", "hi", "pt-BR"]`, 1 to 64, unique.
    pub supported: Vec<String>,
    /// The language used when the customer's is absent or unsupported; one of `supported`.
    /// Without it such customers are suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Where a token's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "a field path such as \"data.product\", {\"literal\": \"SAVE10\"} or {\"field\": \"data.product\", \"required\": false}"
)]
pub enum TokenSource {
    /// A required field: `"data.product"`.
    Path(String),
    /// A fixed value: `{"literal": "SAVE10"}`.
    Literal {
        /// The value, 1 to [`MAX_LITERAL_CHARS`] characters.
        literal: String,
    },
    /// A field, optionally not required: `{"field": "data.product", "required": false}`. An
    /// optional token whose field is missing is left out, so the template's fallback applies.
    Field {
        /// The field path.
        field: String,
        /// Whether a missing value suppresses the dispatch; default true.
        #[serde(default = "yes")]
        required: bool,
    },
}

fn yes() -> bool {
    true
}

/// When to dispatch, relative to the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "{\"after_seconds\": N} or {\"at_field\": \"data.replenish_at\", \"offset_seconds\": N}"
)]
pub enum Delay {
    /// `{"after_seconds": 864000}`: this long after the event occurred.
    After {
        /// Seconds after `occurred_at`, at most [`MAX_PERIOD_SECONDS`].
        after_seconds: u64,
    },
    /// `{"at_field": "data.replenish_at", "offset_seconds": -86400}`: at a time the event
    /// carries, plus an offset.
    At {
        /// A `data.*` or `customer.attributes.*` path holding an RFC 3339 timestamp, or a
        /// `YYYY-MM-DD` date (midnight in the customer's time zone).
        at_field: String,
        /// Added to that time; negative is earlier. At most [`MAX_PERIOD_SECONDS`] either way.
        #[serde(default)]
        offset_seconds: i64,
    },
}

/// A daily quiet window in the customer's time zone; `start` after `end` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Local start, `HH:MM` (24-hour), inclusive.
    pub start: String,
    /// Local end, `HH:MM`, exclusive; different from `start`.
    pub end: String,
}

impl QuietHours {
    /// The window as local times, `None` if either is not `HH:MM` or they are equal.
    pub fn parse(&self) -> Option<(NaiveTime, NaiveTime)> {
        let start = parse_hhmm(&self.start)?;
        let end = parse_hhmm(&self.end)?;
        (start != end).then_some((start, end))
    }
}

/// `HH:MM`, two digits each, 00:00 to 23:59.
fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    let hour = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minute = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    NaiveTime::from_hms_opt(hour, minute, 0)
}

/// A per-customer limit across all campaigns of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// Most dispatches in any window, 1 to [`MAX_CAP`].
    pub max: u32,
    /// Window length in seconds, 1 to [`MAX_PERIOD_SECONDS`].
    pub per_seconds: u64,
}

/// Where deliveries go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The webhook, an `http` or `https` URL without credentials.
    pub url: String,
    /// Name of the signing secret in the tenant's secret store, `[A-Za-z0-9_./:-]{1,128}`.
    pub secret_ref: String,
}

impl Campaign {
    /// Parses and validates a campaign definition. Parse errors name the JSON path.
    pub fn from_json(input: &str) -> Result<Campaign, TriggerError> {
        let campaign: Campaign = parse_json("campaign", input, MAX_CAMPAIGN_BYTES, false)?;
        campaign.validate()?;
        Ok(campaign)
    }

    /// Checks every rule and reports all broken ones in one [`TriggerError::InvalidCampaign`].
    pub fn validate(&self) -> Result<(), TriggerError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TriggerError::InvalidCampaign(problems))
        }
    }

    /// Every rule this campaign breaks, in document order; empty when it is valid.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if !is_name(&self.name, 64) {
            p.push(Problem::new(
                "name",
                format!(
                    "{} is not a campaign name; use 1 to 64 of a-z, 0-9 and -",
                    quoted(&self.name)
                ),
            ));
        }
        if !is_event_type(&self.event_type) {
            p.push(Problem::new(
                "event_type",
                format!(
                    "{} is not an event type; use 1 to 64 of a-z, 0-9, `_`, `.` and `-`",
                    quoted(&self.event_type)
                ),
            ));
        }
        check_conditions(&mut p, &self.conditions);
        check_variants(&mut p, &self.variants);
        check_languages(&mut p, &self.languages);
        check_tokens(&mut p, &self.tokens);
        if let Some(delay) = &self.delay {
            check_delay(&mut p, delay);
        }
        if let Some(q) = &self.quiet_hours {
            let start = parse_hhmm(&q.start);
            let end = parse_hhmm(&q.end);
            for (path, value, parsed) in [
                ("quiet_hours.start", &q.start, start),
                ("quiet_hours.end", &q.end, end),
            ] {
                if parsed.is_none() {
                    p.push(Problem::new(
                        path,
                        format!(
                            "{} is not a time; use HH:MM from 00:00 to 23:59",
                            quoted(value)
                        ),
                    ));
                }
            }
            if start.is_some() && start == end {
                p.push(Problem::new(
                    "quiet_hours.end",
                    "must differ from start (a window may span midnight, e.g. 21:00 to 09:00)",
                ));
            }
        }
        if let Some(cap) = &self.frequency_cap {
            if !(1..=MAX_CAP).contains(&cap.max) {
                p.push(Problem::new(
                    "frequency_cap.max",
                    format!("{} is out of range 1..={MAX_CAP}", cap.max),
                ));
            }
            if !(1..=MAX_PERIOD_SECONDS).contains(&cap.per_seconds) {
                p.push(Problem::new(
                    "frequency_cap.per_seconds",
                    format!(
                        "{} is out of range 1..={MAX_PERIOD_SECONDS} (366 days)",
                        cap.per_seconds
                    ),
                ));
            }
        }
        if !(0.0..=MAX_HOLDOUT_PERCENT).contains(&self.holdout_percent) {
            p.push(Problem::new(
                "holdout_percent",
                format!(
                    "{} is out of range 0..={MAX_HOLDOUT_PERCENT}",
                    self.holdout_percent
                ),
            ));
        }
        if let Err(message) = check_url(&self.destination.url) {
            p.push(Problem::new("destination.url", message));
        }
        let secret = &self.destination.secret_ref;
        if !(1..=128).contains(&secret.len())
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_./:-".contains(&b))
        {
            p.push(Problem::new(
                "destination.secret_ref",
                "use 1 to 128 of A-Z, a-z, 0-9, `_`, `.`, `/`, `:` and `-` (the secret's name, not the secret)",
            ));
        }
        p
    }
}

fn check_conditions(p: &mut Vec<Problem>, conditions: &[Condition]) {
    if conditions.len() > MAX_CONDITIONS {
        p.push(Problem::new(
            "conditions",
            format!(
                "{} conditions, more than the {MAX_CONDITIONS} allowed",
                conditions.len()
            ),
        ));
    }
    for (i, c) in conditions.iter().enumerate() {
        if let Err(message) = parse_field(&c.field) {
            p.push(Problem::new(
                format!("conditions[{i}].field"),
                format!("{}: {message}", quoted(&c.field)),
            ));
        }
        let path = format!("conditions[{i}].value");
        let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
        let op = serde_json::to_value(c.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match (c.op, &c.value) {
            (Op::Exists | Op::NotExists, None) => {}
            (Op::Exists | Op::NotExists, Some(_)) => {
                p.push(Problem::new(path, format!("`{op}` takes no value")))
            }
            (_, None) => p.push(Problem::new(path, format!("`{op}` needs a value"))),
            (Op::Eq | Op::Ne, Some(v)) if !scalar(v) => p.push(Problem::new(
                path,
                format!("`{op}` compares with a string, number or boolean"),
            )),
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if !(v.is_number() || v.is_string()) => {
                p.push(Problem::new(
                    path,
                    format!("`{op}` compares with a number or a string"),
                ))
            }
            (Op::In | Op::NotIn, Some(Value::Array(items))) => {
                if items.is_empty() || items.len() > MAX_IN_VALUES {
                    p.push(Problem::new(
                        &path,
                        format!(
                            "`{op}` needs 1 to {MAX_IN_VALUES} values, not {}",
                            items.len()
                        ),
                    ));
                }
                if let Some(j) = items.iter().position(|v| !scalar(v)) {
                    p.push(Problem::new(
                        format!("{path}[{j}]"),
                        "must be a string, number or boolean",
                    ));
                }
            }
            (Op::In | Op::NotIn, Some(_)) => p.push(Problem::new(
                path,
                format!("`{op}` needs a list, e.g. [\"gold\", \"platinum\"]"),
            )),
            _ => {}
        }
    }
}

fn check_variants(p: &mut Vec<Problem>, variants: &[Variant]) {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        p.push(Problem::new(
            "variants",
            format!(
                "{} variants; a campaign has 1 to {MAX_VARIANTS}",
                variants.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, v) in variants.iter().enumerate() {
        let valid_name = (1..=32).contains(&v.name.len())
            && v.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            p.push(Problem::new(
                format!("variants[{i}].name"),
                format!(
                    "{} is not a variant name; use 1 to 32 of a-z, 0-9, `_` and `-`",
                    quoted(&v.name)
                ),
            ));
        } else if !seen.insert(v.name.as_str()) {
            p.push(Problem::new(
                format!("variants[{i}].name"),
                format!("{} is used by an earlier variant", quoted(&v.name)),
            ));
        }
        if let Err(message) = check_template_ref(&v.template) {
            p.push(Problem::new(
                format!("variants[{i}].template"),
                format!("{}: {message}", quoted(&v.template)),
            ));
        }
        if !(1..=MAX_WEIGHT).contains(&v.weight) {
            p.push(Problem::new(
                format!("variants[{i}].weight"),
                format!("{} is out of range 1..={MAX_WEIGHT}", v.weight),
            ));
        }
    }
}

/// `name`, `name@VERSION` or `name@ALIAS`, as the coordinator accepts them.
fn check_template_ref(s: &str) -> Result<(), &'static str> {
    let (name, suffix) = match s.split_once('@') {
        Some((name, suffix)) => (name, Some(suffix)),
        None => (s, None),
    };
    if !is_name(name, 64) {
        return Err("template names are 1 to 64 of a-z, 0-9 and -; write `name`, `name@VERSION` or `name@ALIAS`");
    }
    match suffix {
        None => Ok(()),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            match v.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(()),
                _ => Err("versions are 1 to 4294967295"),
            }
        }
        Some(alias) if is_name(alias, 32) => Ok(()),
        Some(_) => Err("aliases are 1 to 32 of a-z, 0-9 and -"),
    }
}

fn check_languages(p: &mut Vec<Problem>, languages: &Languages) {
    let supported = &languages.supported;
    if supported.is_empty() || supported.len() > 64 {
        p.push(Problem::new(
            "languages.supported",
            format!("{} languages; list 1 to 64", supported.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, lang) in supported.iter().enumerate() {
        let path = format!("languages.supported[{i}]");
        if !is_language_code(lang, false) {
            p.push(Problem::new(
                path,
                format!(
                    "{} is not a language code; use e.g. \"en\", \"hi\" or \"pt-BR\"",
                    quoted(lang)
                ),
            ));
        } else if !seen.insert(lang.to_ascii_lowercase()) {
            p.push(Problem::new(
                path,
                format!("{} is listed twice", quoted(lang)),
            ));
        }
    }
    if let Some(fallback) = &languages.fallback {
        if !supported.contains(fallback) {
            p.push(Problem::new(
                "languages.fallback",
                format!(
                    "{} is not one of the supported languages ({})",
                    quoted(fallback),
                    supported.join(", ")
                ),
            ));
        }
    }
}

fn check_tokens(p: &mut Vec<Problem>, tokens: &BTreeMap<String, TokenSource>) {
    if tokens.len() > MAX_TOKENS {
        p.push(Problem::new(
            "tokens",
            format!(
                "{} tokens, more than the {MAX_TOKENS} allowed",
                tokens.len()
            ),
        ));
    }
    for (name, source) in tokens {
        let path = format!("tokens{}", key(name));
        if !is_token_name(name) {
            p.push(Problem::new(
                &path,
                "is not a valid token name; use `[a-z_][a-z0-9_]{0,31}`, e.g. `first_name`",
            ));
        }
        match source {
            TokenSource::Path(field) | TokenSource::Field { field, .. } => {
                if let Err(message) = parse_field(field) {
                    p.push(Problem::new(&path, format!("{}: {message}", quoted(field))));
                }
            }
            TokenSource::Literal { literal } => {
                let chars = literal.chars().count();
                if literal.trim().is_empty() || chars > MAX_LITERAL_CHARS {
                    p.push(Problem::new(
                        &path,
                        format!(
                            "a literal has 1 to {MAX_LITERAL_CHARS} characters and is not blank, not {chars}"
                        ),
                    ));
                }
                if literal.chars().any(char::is_control) {
                    p.push(Problem::new(
                        &path,
                        "a literal must not contain control characters",
                    ));
                }
            }
        }
    }
}

/// `[a-z_][a-z0-9_]{0,31}`, the template crate's rule for token names.
fn is_token_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn check_delay(p: &mut Vec<Problem>, delay: &Delay) {
    let max = MAX_PERIOD_SECONDS;
    match delay {
        Delay::After { after_seconds } => {
            if *after_seconds > max {
                p.push(Problem::new(
                    "delay.after_seconds",
                    format!("{after_seconds} is out of range 0..={max} (366 days)"),
                ));
            }
        }
        Delay::At {
            at_field,
            offset_seconds,
        } => {
            match parse_field(at_field) {
                Ok(FieldRef::Data(_) | FieldRef::Attribute(_)) => {}
                Ok(_) => p.push(Problem::new(
                    "delay.at_field",
                    format!(
                        "{} holds no time; use a data.* or customer.attributes.* field",
                        quoted(at_field)
                    ),
                )),
                Err(message) => p.push(Problem::new(
                    "delay.at_field",
                    format!("{}: {message}", quoted(at_field)),
                )),
            }
            if offset_seconds.unsigned_abs() > max {
                p.push(Problem::new(
                    "delay.offset_seconds",
                    format!("{offset_seconds} is out of range -{max}..={max} (366 days)"),
                ));
            }
        }
    }
}

/// An `http(s)://host[:port][/path][?query]` URL without credentials, spaces or control
/// characters. Private and loopback addresses are checked when the webhook is called.
fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_URL_BYTES} allowed",
            url.len()
        ));
    }
    let bad = |why: &str| Err(format!("{} {why}", quoted(url)));
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return bad("is not an http or https URL, e.g. \"https://hooks.example.com/reelfarm\"");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("contains credentials; name the secret in secret_ref instead");
    }
    let (host, port, extra) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, None, ":"),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port), ":"),
                None => return bad("has no valid host"),
            },
            None => return bad("has an unclosed IPv6 address"),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port), ""),
            None => (authority, None, ""),
        }
    };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"-.".contains(&b) || extra.as_bytes().contains(&b)
        });
    if !host_ok {
        return bad("has no valid host");
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return bad("has an invalid port");
        }
    }
    Ok(())
}

/// `[a-z0-9-]{1,max}`.
fn is_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let check = |url: &str, ok: bool| assert_eq!(check_url(url).is_ok(), ok, "{url}");
        check("https://hooks.example.com/reelfarm?x=1", true);
        check("HTTP://example.com", true);
        check("http://[::1]:8080/x", true);
        check("https://example.com:443", true);
        check("ftp://example.com", false);
        check("https://", false);
        check("https:///path", false);
        check("https://user:pw@example.com", false);
        check("https://example.com:0", false);
        check("https://example.com:99999", false);
        check("https://exa mple.com", false);
        check("https://a:b:80/x", false);
        check("https://[::1]x/", false);
        check("https://exa_mple.com", false);
    }

    #[test]
    fn template_refs() {
        let check = |r: &str, ok: bool| assert_eq!(check_template_ref(r).is_ok(), ok, "{r}");
        check("order-delivered", true);
        check("order-delivered@7", true);
        check("order-delivered@live", true);
        check("order-delivered@0", false);
        check("order-delivered@", false);
        check("Order", false);
        check("a@b@c", false);
    }

    #[test]
    fn times() {
        let check = |s: &str, expect: Option<(u32, u32)>| {
            assert_eq!(
                parse_hhmm(s),
                expect.and_then(|(h, m)| NaiveTime::from_hms_opt(h, m, 0)),
                "{s}"
            )
        };
        check("21:00", Some((21, 0)));
        check("00:00", Some((0, 0)));
        check("23:59", Some((23, 59)));
        check("24:00", None);
        check("9:00", None);
        check("09:60", None);
        check("09-00", None);
        check("٠٩:٠٠", None);
    }

    #[test]
    fn token_names() {
        for (name, ok) in [
            ("first_name", true),
            ("_x", true),
            ("1x", false),
            ("First", false),
            ("", false),
        ] {
            assert_eq!(is_token_name(name), ok, "{name}");
        }
    }
}
