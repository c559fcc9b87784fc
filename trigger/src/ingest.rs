//! Event ingestion: `POST /v1/events` (HTTP, JSON) and the shared path behind the gRPC
//! `IngestEvents`. Events are validated, deduplicated by id per tenant and stored durably before
//! the answer; campaigns are evaluated afterwards by the processor.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::auth::parse_bearer;
use serde_json::{json, Value};

use crate::metrics::{EventOutcome, RequestRefusal, TriggerMetrics};
use crate::store::{DynTriggerStore, Ingested, StoreError};
use crate::Event;

/// Most events in one request.
pub const MAX_BATCH: usize = 500;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Header of an optional request signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(api key,
/// "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "x-reelfarm-signature";
/// Signed requests older or newer than this are refused.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

/// Resolves a tenant API key to the tenant's name.
#[async_trait]
pub trait TenantKeys: Send + Sync + 'static {
    async fn tenant_for_key(&self, api_key: &str) -> Option<String>;
}

/// What ingestion needs.
#[derive(Clone)]
pub struct Ingest {
    pub store: DynTriggerStore,
    pub keys: Arc<dyn TenantKeys>,
    /// Wakes the processor.
    pub new_events: Arc<tokio::sync::Notify>,
    /// Counts events and refused requests.
    pub metrics: TriggerMetrics,
}

/// The result of one event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum EventResult {
    Accepted { id: String },
    Duplicate { id: String },
    Rejected { id: String, error: String },
}

impl Ingest {
    /// Parses, validates and stores raw JSON events of `tenant`; one result per event.
    pub async fn ingest(
        &self,
        tenant: &str,
        raw: Vec<String>,
        now_ms: i64,
    ) -> Result<Vec<EventResult>, StoreError> {
        let mut results: Vec<Option<EventResult>> = vec![None; raw.len()];
        let mut valid: Vec<(usize, Event, String)> = Vec::new();
        for (i, text) in raw.into_iter().enumerate() {
            match Event::from_json(&text) {
                Ok(event) => valid.push((i, event, text)),
                Err(e) => {
                    let id = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("id").and_then(Value::as_str).map(short))
                        .unwrap_or_default();
                    results[i] = Some(EventResult::Rejected {
                        id,
                        error: e.to_string(),
                    });
                }
            }
        }
        if !valid.is_empty() {
            let batch: Vec<(Event, String)> = valid
                .iter()
                .map(|(_, e, t)| (e.clone(), t.clone()))
                .collect();
            let stored = self.store.ingest(tenant, &batch, now_ms).await?;
            for ((i, event, _), outcome) in valid.iter().zip(stored) {
                results[*i] = Some(match outcome {
                    Ingested::Accepted => EventResult::Accepted {
                        id: event.id.clone(),
                    },
                    Ingested::Duplicate => EventResult::Duplicate {
                        id: event.id.clone(),
                    },
                });
            }
            self.new_events.notify_one();
        }
        let results: Vec<EventResult> = results.into_iter().flatten().collect();
        for r in &results {
            self.metrics.event(match r {
                EventResult::Accepted { .. } => EventOutcome::Accepted,
                EventResult::Duplicate { .. } => EventOutcome::Duplicate,
                EventResult::Rejected { .. } => EventOutcome::Rejected,
            });
        }
        Ok(results)
    }
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// What the HTTP routes need: ingestion, and the master key callback secrets derive from.
#[derive(Clone)]
struct Routes {
    ingest: Ingest,
    webhook_key: Arc<Vec<u8>>,
}

/// `POST /v1/events` and `GET /v1/callback-secret` (the secret that signs the tenant's
/// per-render callbacks, as `TriggerService.GetCallbackSecret` answers it).
pub fn router(ingest: Ingest, webhook_key: Arc<Vec<u8>>) -> axum::Router {
    axum::Router::new()
        .route("/v1/events", axum::routing::post(post_events))
        .route(
            "/v1/callback-secret",
            axum::routing::get(get_callback_secret),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Routes {
            ingest,
            webhook_key,
        })
}

/// The tenant of the request's API key (with the key), or the 401 answer.
async fn authenticate(ingest: &Ingest, headers: &HeaderMap) -> Result<(String, String), Response> {
    let Some(key) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_bearer)
    else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <API key>`",
        ));
    };
    match ingest.keys.tenant_for_key(key).await {
        Some(tenant) => Ok((tenant, key.to_owned())),
        None => Err(error(StatusCode::UNAUTHORIZED, "unknown API key")),
    }
}

async fn get_callback_secret(State(routes): State<Routes>, headers: HeaderMap) -> Response {
    match authenticate(&routes.ingest, &headers).await {
        Ok((tenant, _)) => axum::Json(json!({
            "secret": crate::runtime::callback_secret(&routes.webhook_key, &tenant)
        }))
        .into_response(),
        Err(answer) => answer,
    }
}

async fn post_events(State(routes): State<Routes>, headers: HeaderMap, body: Bytes) -> Response {
    let metrics = routes.ingest.metrics.clone();
    let answer = accept_events(routes.ingest, headers, body).await;
    let refused = match answer.status() {
        StatusCode::UNAUTHORIZED => Some(RequestRefusal::Unauthenticated),
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => Some(RequestRefusal::BadRequest),
        s if s.is_server_error() => Some(RequestRefusal::StoreUnavailable),
        _ => None,
    };
    if let Some(why) = refused {
        metrics.request_refused(why);
    }
    answer
}

/// `POST /v1/events` without its metrics: authenticates, parses, stores and answers.
async fn accept_events(ingest: Ingest, headers: HeaderMap, body: Bytes) -> Response {
    let (tenant, key) = match authenticate(&ingest, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let key = key.as_str();
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Some(sig) = headers.get(SIGNATURE_HEADER) {
        let Ok(sig) = sig.to_str() else {
            return error(StatusCode::UNAUTHORIZED, "malformed x-reelfarm-signature");
        };
        if let Err(e) = verify_request(key.as_bytes(), sig, &body, now_ms / 1000) {
            return error(
                StatusCode::UNAUTHORIZED,
                format!("bad request signature: {e}"),
            );
        }
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body is not JSON: line {}, column {}", e.line(), e.column()),
            )
        }
    };
    let items: Vec<Value> = match value {
        Value::Object(ref o) if o.contains_key("events") => match o.get("events") {
            Some(Value::Array(a)) => a.clone(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "`events` must be an array of events",
                )
            }
        },
        Value::Object(_) => vec![value],
        Value::Array(a) => a,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected an event object, an array of events or {\"events\": [...]}",
            )
        }
    };
    if items.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no events");
    }
    if items.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} events in one request; at most {MAX_BATCH}", items.len()),
        );
    }
    let raw: Vec<String> = items.iter().map(Value::to_string).collect();
    let results = match ingest.ingest(&tenant, raw, now_ms).await {
        Ok(r) => r,
        Err(e) => {
            let (status, message) = crate::status::store_http(&e, "events could not be stored");
            return error(status, message);
        }
    };
    let accepted = results
        .iter()
        .filter(|r| matches!(r, EventResult::Accepted { .. }))
        .count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, EventResult::Duplicate { .. }))
        .count();
    let rejected = results.len() - accepted - duplicates;
    let body = json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "results": results.iter().map(|r| match r {
            EventResult::Accepted { id } => json!({"id": id, "status": "accepted"}),
            EventResult::Duplicate { id } => json!({"id": id, "status": "duplicate"}),
            EventResult::Rejected { id, error } => json!({"id": id, "status": "rejected", "error": error}),
        }).collect::<Vec<_>>(),
    });
    // All rejected: the request as a whole is bad.
    let status = if accepted + duplicates == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::ACCEPTED
    };
    (status, axum::Json(body)).into_response()
}

/// Checks `t=<unix>,v1=<hex>[,v1=<hex>…]` against HMAC-SHA256(key, "<t>.<body>"): the webhook
/// signature scheme ([`crate::webhook::verify`]) with the timestamp carried in the same header.
pub fn verify_request(key: &[u8], header: &str, body: &[u8], now_s: i64) -> Result<(), String> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(format!("v1={v}")),
            _ => {}
        }
    }
    let t = t.ok_or("no t=<unix seconds>")?;
    crate::webhook::verify(key, &sigs.join(" "), t, body, now_s, SIGNATURE_TOLERANCE_S)
        .map_err(|e| e.to_string())
}
