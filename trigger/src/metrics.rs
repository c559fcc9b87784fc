//! Prometheus metrics of the trigger layer: events ingested, campaign evaluations and
//! suppressions, renders submitted for dispatches, webhook deliveries.
//!
//! The trigger runs inside the coordinator's process, so [`TriggerMetrics::register`] adds
//! these to the coordinator's registry and they are served on its `/metrics`. Every replica
//! counts what it handled (events it ingested, dispatches and deliveries it claimed); sum over
//! replicas in queries.
//!
//! Labels are closed sets only: outcomes, suppression reasons
//! ([`SuppressReason::as_str`](crate::SuppressReason::as_str)) and the delivery source. No
//! tenant, campaign, customer, event or render appears as a label: campaigns are created
//! through the API without a bound, and per-campaign figures are in the store's counters
//! (`TriggerService.GetCampaignStats`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::rules::Decision;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// `campaign` (a campaign's dispatch) or `callback` (a render's own `callback_url`).
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// What an event of an ingestion request became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored; campaigns will evaluate it.
    Accepted,
    /// Its id was already stored for the tenant.
    Duplicate,
    /// Invalid (it does not parse or validate).
    Rejected,
}

impl EventOutcome {
    fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Accepted => "accepted",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Rejected => "rejected",
        }
    }
}

/// Why a whole `POST /v1/events` request was refused before its events were looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRefusal {
    /// No API key, an unknown one, or a bad request signature.
    Unauthenticated,
    /// Not JSON, no events, or too many.
    BadRequest,
    /// The store could not take the events.
    StoreUnavailable,
}

impl RequestRefusal {
    fn as_str(self) -> &'static str {
        match self {
            RequestRefusal::Unauthenticated => "unauthenticated",
            RequestRefusal::BadRequest => "bad_request",
            RequestRefusal::StoreUnavailable => "store_unavailable",
        }
    }
}

/// How one try at submitting a dispatch's render ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// The coordinator created (or already had) the render.
    Submitted,
    /// A transient error: tried again later.
    Retry,
    /// Refused for good (unknown template, invalid tokens, ...): the dispatch failed.
    Failed,
}

/// How one webhook try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// A transient failure: tried again later.
    Retry,
    /// A permanent failure or the last try: moved to the dead letters.
    DeadLetter,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry => "retry",
            DeliveryOutcome::DeadLetter => "dead_letter",
        }
    }
}

fn delivery_histogram() -> Histogram {
    // 10 ms .. ~23 h: a delivery may wait out retries for hours.
    Histogram::new(exponential_buckets(0.01, 2.0, 24))
}

fn attempt_histogram() -> Histogram {
    // 5 ms .. ~41 s (requests time out before that).
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The trigger layer's metrics. Clones share their values; create one per process, give
/// clones to ingestion and the runtime, and [`register`](TriggerMetrics::register) it once.
#[derive(Clone, Debug)]
pub struct TriggerMetrics {
    events: Family<Outcome, Counter>,
    refused_requests: Family<Reason, Counter>,
    evaluations: Family<Outcome, Counter>,
    suppressions: Family<Reason, Counter>,
    quiet_hours_deferrals: Counter,
    submissions: Family<Outcome, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    attempt_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
}

impl Default for TriggerMetrics {
    fn default() -> Self {
        TriggerMetrics::new()
    }
}

impl TriggerMetrics {
    pub fn new() -> Self {
        TriggerMetrics {
            events: Family::default(),
            refused_requests: Family::default(),
            evaluations: Family::default(),
            suppressions: Family::default(),
            quiet_hours_deferrals: Counter::default(),
            submissions: Family::default(),
            deliveries: Family::default(),
            delivery_seconds: Family::new_with_constructor(delivery_histogram),
            attempt_seconds: Family::new_with_constructor(attempt_histogram),
        }
    }

    /// Adds the metrics to `registry` under their full names (`reelfarm_events_total`, ...):
    /// the root registry of the coordinator's `/metrics`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reelfarm_events",
            "Events received over HTTP and gRPC, by outcome: accepted, duplicate (id already \
             stored) or rejected (invalid)",
            self.events.clone(),
        );
        registry.register(
            "reelfarm_event_requests_refused",
            "POST /v1/events requests refused as a whole, by reason: unauthenticated, \
             bad_request or store_unavailable",
            self.refused_requests.clone(),
        );
        registry.register(
            "reelfarm_trigger_evaluations",
            "Campaign evaluations (one per event and active campaign of its type), by outcome: \
             dispatch, suppressed or no_match",
            self.evaluations.clone(),
        );
        registry.register(
            "reelfarm_trigger_suppressions",
            "Matching events that led to no video, by reason: opted_out, no_consent, holdout, \
             frequency_cap, missing_delay_time, unsupported_language, missing_token",
            self.suppressions.clone(),
        );
        registry.register(
            "reelfarm_trigger_quiet_hours_deferrals",
            "Dispatches that quiet hours moved to a later time",
            self.quiet_hours_deferrals.clone(),
        );
        registry.register(
            "reelfarm_trigger_submissions",
            "Tries at submitting a dispatch's render to the coordinator, by outcome: \
             submitted, retry or failed",
            self.submissions.clone(),
        );
        registry.register(
            "reelfarm_webhook_deliveries",
            "Webhook tries, by source (campaign or callback) and outcome: delivered, retry or \
             dead_letter",
            self.deliveries.clone(),
        );
        registry.register(
            "reelfarm_webhook_delivery_seconds",
            "Time from a delivery's creation (its render finished) to the receiver's 2xx, \
             retries included, by source",
            self.delivery_seconds.clone(),
        );
        registry.register(
            "reelfarm_webhook_attempt_seconds",
            "Duration of one webhook HTTP try, by source",
            self.attempt_seconds.clone(),
        );
    }

    /// One event of an ingestion request ended as `outcome`.
    pub fn event(&self, outcome: EventOutcome) {
        self.events
            .get_or_create(&Outcome {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// A whole ingestion request was refused.
    pub fn request_refused(&self, why: RequestRefusal) {
        self.refused_requests
            .get_or_create(&Reason {
                reason: why.as_str(),
            })
            .inc();
    }

    /// A campaign evaluated an event to `decision`.
    pub fn evaluated(&self, decision: &Decision) {
        let outcome = match decision {
            Decision::NotMatched(_) => "no_match",
            Decision::Suppressed(reason) => {
                self.suppressions
                    .get_or_create(&Reason {
                        reason: reason.as_str(),
                    })
                    .inc();
                "suppressed"
            }
            Decision::Dispatch(d) => {
                if d.quiet_hours_deferred {
                    self.quiet_hours_deferrals.inc();
                }
                "dispatch"
            }
        };
        self.evaluations.get_or_create(&Outcome { outcome }).inc();
    }

    /// One try at submitting a dispatch's render ended as `outcome`.
    pub fn submission(&self, outcome: SubmitOutcome) {
        let outcome = match outcome {
            SubmitOutcome::Submitted => "submitted",
            SubmitOutcome::Retry => "retry",
            SubmitOutcome::Failed => "failed",
        };
        self.submissions.get_or_create(&Outcome { outcome }).inc();
    }

    /// One webhook try of a delivery ended as `outcome` after `attempt_s` seconds; for a
    /// delivered one, `since_created_s` is the time since the delivery was created. `campaign`
    /// tells a campaign's delivery from a render's own callback.
    pub fn delivery(
        &self,
        campaign: bool,
        outcome: DeliveryOutcome,
        attempt_s: f64,
        since_created_s: f64,
    ) {
        let source = if campaign { "campaign" } else { "callback" };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                source,
                outcome: outcome.as_str(),
            })
            .inc();
        self.attempt_seconds
            .get_or_create(&SourceLabels { source })
            .observe(attempt_s.max(0.0));
        if outcome == DeliveryOutcome::Delivered {
            self.delivery_seconds
                .get_or_create(&SourceLabels { source })
                .observe(since_created_s.max(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{NoMatch, SuppressReason};

    fn text(m: &TriggerMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        out
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn counts_by_closed_labels() {
        let m = TriggerMetrics::new();
        m.event(EventOutcome::Accepted);
        m.event(EventOutcome::Accepted);
        m.event(EventOutcome::Rejected);
        m.request_refused(RequestRefusal::Unauthenticated);
        m.evaluated(&Decision::Suppressed(SuppressReason::NoConsent));
        m.evaluated(&Decision::Suppressed(SuppressReason::MissingToken {
            token: "first_name".into(),
        }));
        m.evaluated(&Decision::NotMatched(NoMatch::EventType));
        m.submission(SubmitOutcome::Submitted);
        m.delivery(true, DeliveryOutcome::Retry, 0.02, 0.5);
        m.delivery(true, DeliveryOutcome::Delivered, 0.01, 2.0);
        m.delivery(false, DeliveryOutcome::DeadLetter, 0.01, 9.0);
        let t = text(&m);
        for line in [
            "reelfarm_events_total{outcome=\"accepted\"} 2",
            "reelfarm_events_total{outcome=\"rejected\"} 1",
            "reelfarm_event_requests_refused_total{reason=\"unauthenticated\"} 1",
            "reelfarm_trigger_evaluations_total{outcome=\"suppressed\"} 2",
            "reelfarm_trigger_evaluations_total{outcome=\"no_match\"} 1",
            "reelfarm_trigger_suppressions_total{reason=\"no_consent\"} 1",
            "reelfarm_trigger_suppressions_total{reason=\"missing_token\"} 1",
            "reelfarm_trigger_submissions_total{outcome=\"submitted\"} 1",
            "reelfarm_webhook_deliveries_total{source=\"campaign\",outcome=\"retry\"} 1",
            "reelfarm_webhook_deliveries_total{source=\"campaign\",outcome=\"delivered\"} 1",
            "reelfarm_webhook_deliveries_total{source=\"callback\",outcome=\"dead_letter\"} 1",
            "reelfarm_webhook_delivery_seconds_count{source=\"campaign\"} 1",
            "reelfarm_webhook_delivery_seconds_sum{source=\"campaign\"} 2.0",
            "reelfarm_webhook_attempt_seconds_count{source=\"campaign\"} 2",
        ] {
            assert!(has(&t, line), "{line} in {t}");
        }
        // The token's name is not a label value; a failed delivery's wait is no latency.
        assert!(!t.contains("first_name"), "{t}");
        assert!(
            !t.contains("reelfarm_webhook_delivery_seconds_count{source=\"callback\"}"),
            "{t}"
        );
    }
}
