//! The trigger layer's background work: evaluate stored events against campaigns, submit due
//! dispatches to the coordinator, turn finished renders into webhook deliveries, and send them.
//!
//! Every step reads and writes the trigger store, so a restart resumes where it stopped:
//! unprocessed events are processed, pending dispatches fire when due, the render-event cursor
//! resumes after the last event handled, and pending deliveries are retried.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use proto::auth::{Bearer, ACT_AS_TENANT};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use tokio::sync::{watch, Notify};
use tonic::transport::Channel;

use crate::metrics::{DeliveryOutcome, SubmitOutcome, TriggerMetrics};
use crate::rules::{decide, Decision};
use crate::store::{DynTriggerStore, NewDelivery, Outcome};
use crate::webhook::{
    self, Attempt, DeliveryEvent, DeliveryPayload, Outgoing, Sender, SenderConfig,
};

/// How the trigger layer reaches the coordinator and signs its webhooks.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// gRPC channel to the coordinator.
    pub channel: Channel,
    /// Service token: the trigger acts for each tenant (`x-reelfarm-tenant`).
    pub service_token: String,
    /// Master key webhook secrets are derived from.
    pub webhook_key: Vec<u8>,
    /// Allow webhook destinations on loopback and private networks (tests, local demos).
    pub allow_private_destinations: bool,
    /// Lifetime of the video links in deliveries, seconds.
    pub link_ttl_s: u32,
    /// Render preset of dispatched renders.
    pub preset: v1::Preset,
    /// Counts evaluations, submissions and deliveries.
    pub metrics: TriggerMetrics,
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig").finish_non_exhaustive()
    }
}

/// The webhook secret of a campaign's `secret_ref` for a tenant: derived from the master key, so
/// it is stable across versions and restarts and never stored.
pub fn webhook_secret(master: &[u8], tenant: &str, secret_ref: &str) -> String {
    derived_secret(master, &format!("webhook\n{tenant}\n{secret_ref}"))
}

/// The secret that signs a tenant's per-render callbacks (`RenderSpec.callback_url`): derived
/// from the master key under its own label, so it is no campaign's secret.
pub fn callback_secret(master: &[u8], tenant: &str) -> String {
    derived_secret(master, &format!("callback\n{tenant}"))
}

/// `whsec_` and the hex HMAC-SHA256 of `label` under the master key.
fn derived_secret(master: &[u8], label: &str) -> String {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(master) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(label.as_bytes());
    format!("whsec_{}", hex::encode(mac.finalize().into_bytes()))
}

/// Name of the trigger's cursor over the callback events of every tenant (in the table of
/// per-tenant cursors; tenant names never start with `*`).
pub const CALLBACK_CURSOR: &str = "*callbacks";

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

fn as_tenant<T>(cfg: &RuntimeConfig, tenant: &str, msg: T) -> tonic::Request<T> {
    let mut req = as_service(cfg, msg);
    // A tenant name that cannot be a header value is left out; the coordinator then refuses
    // the call as unauthenticated, which surfaces as an ordinary call error.
    if let Ok(v) = tenant.parse() {
        req.metadata_mut().insert(ACT_AS_TENANT, v);
    }
    req
}

/// A call as the farm's service, for no tenant in particular (the callbacks of every tenant).
fn as_service<T>(cfg: &RuntimeConfig, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    // A token that cannot be a header value is left out; the coordinator then refuses the call
    // as unauthenticated, which surfaces as an ordinary call error.
    if let Ok(bearer) = Bearer::new(&cfg.service_token) {
        bearer.insert_into(req.metadata_mut());
    }
    req.set_timeout(Duration::from_secs(10));
    req
}

/// Runs every loop until `stop` turns true.
pub async fn run(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    new_events: Arc<Notify>,
    stop: watch::Receiver<bool>,
) {
    let due = Arc::new(Notify::new());
    let tasks = vec![
        tokio::spawn(process_events(
            store.clone(),
            cfg.metrics.clone(),
            new_events,
            due.clone(),
            stop.clone(),
        )),
        tokio::spawn(submit_dispatches(
            store.clone(),
            cfg.clone(),
            due,
            stop.clone(),
        )),
        tokio::spawn(watch_renders(store.clone(), cfg.clone(), stop.clone())),
        tokio::spawn(watch_callbacks(store.clone(), cfg.clone(), stop.clone())),
        tokio::spawn(send_deliveries(store, cfg, stop)),
    ];
    for t in tasks {
        let _ = t.await;
    }
}

async fn until_stopped(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// A tenant's active campaigns for one event type: (name, version, definition).
type ActiveCampaigns = Vec<(String, u32, crate::Campaign)>;

/// Events → decisions → dispatch rows.
async fn process_events(
    store: DynTriggerStore,
    metrics: TriggerMetrics,
    new_events: Arc<Notify>,
    due: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = match store.next_events(200).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading new events failed");
                if until_stopped(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = new_events.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let mut campaigns: HashMap<(String, String), ActiveCampaigns> = HashMap::new();
        let mut scheduled = false;
        for (tenant, seq, event) in batch {
            let now = Utc::now();
            let key = (tenant.clone(), event.event_type.clone());
            if !campaigns.contains_key(&key) {
                match store.active_campaigns_for(&tenant, &event.event_type).await {
                    Ok(c) => {
                        campaigns.insert(key.clone(), c);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading campaigns failed");
                        break;
                    }
                }
            }
            let mut outcomes = Vec::new();
            // Counted once the outcomes are stored: a batch that fails is evaluated again.
            let mut decisions = Vec::new();
            for (_, version, campaign) in campaigns.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                let touches: Vec<DateTime<Utc>> = match &campaign.frequency_cap {
                    Some(cap) => {
                        let since = now.timestamp_millis() - (cap.per_seconds as i64) * 1000;
                        match store.touches(&tenant, &event.customer.id, since).await {
                            Ok(t) => t.into_iter().map(ms_to_time).collect(),
                            Err(e) => {
                                tracing::warn!(error = %e, "reading frequency-cap touches failed");
                                Vec::new()
                            }
                        }
                    }
                    None => Vec::new(),
                };
                let decision = decide(&tenant, campaign, &event, now, &touches);
                scheduled |= matches!(decision, Decision::Dispatch(_));
                decisions.push(decision.clone());
                outcomes.push(Outcome::from_decision(campaign, *version, &event, decision));
            }
            if let Err(e) = store
                .record_outcomes(&tenant, seq, &outcomes, now.timestamp_millis())
                .await
            {
                tracing::warn!(error = %e, "recording campaign outcomes failed");
                break;
            }
            for decision in &decisions {
                metrics.evaluated(decision);
            }
        }
        if scheduled {
            due.notify_one();
        }
    }
}

/// Due dispatches → SubmitRender (idempotency key = the dispatch key).
async fn submit_dispatches(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    due: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = RenderServiceClient::new(cfg.channel.clone());
    loop {
        if *stop.borrow() {
            return;
        }
        let now = Utc::now().timestamp_millis();
        let batch = match store.claim_due_dispatches(now, 100, 30_000).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "claiming due dispatches failed");
                Vec::new()
            }
        };
        let idle = batch.is_empty();
        for d in batch {
            let spec = v1::RenderSpec {
                template: d.template.clone(),
                lang: d.lang.clone(),
                tokens: d.tokens.clone(),
                preset: cfg.preset as i32,
                lane: v1::Lane::Realtime as i32,
                deadline_s: 0,
                // A dispatch's webhook is the campaign's: no callback of its own.
                metadata: Default::default(),
                callback_url: String::new(),
            };
            let req = as_tenant(
                &cfg,
                &d.tenant,
                v1::SubmitRenderRequest {
                    idempotency_key: d.key.clone(),
                    spec: Some(spec),
                },
            );
            let now = Utc::now().timestamp_millis();
            let answer = client.submit_render(req).await;
            cfg.metrics.submission(match &answer {
                Ok(r) if r.get_ref().render.is_some() => SubmitOutcome::Submitted,
                Ok(_) => SubmitOutcome::Retry,
                Err(s) if permanent_submit_error(s.code()) => SubmitOutcome::Failed,
                Err(_) => SubmitOutcome::Retry,
            });
            let result = match answer {
                Ok(r) => match r.into_inner().render {
                    Some(render) => store.dispatch_submitted(&d.key, &render.id, now).await,
                    None => {
                        store
                            .dispatch_retry(&d.key, now + 5_000, "no render in the answer")
                            .await
                    }
                },
                Err(s) if permanent_submit_error(s.code()) => {
                    store
                        .dispatch_failed(&d.key, &format!("{:?}: {}", s.code(), s.message()), now)
                        .await
                }
                Err(s) => {
                    let delay = webhook::next_attempt_delay(d.attempts + 1, 1.0);
                    store
                        .dispatch_retry(
                            &d.key,
                            now + delay.as_millis() as i64,
                            &format!("{:?}: {}", s.code(), s.message()),
                        )
                        .await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "recording a dispatch failed");
            }
        }
        if idle {
            tokio::select! {
                _ = due.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Whether a refused SubmitRender fails its dispatch for good (else it is tried again).
fn permanent_submit_error(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::NotFound
            | tonic::Code::PermissionDenied
    )
}

/// Terminal render events of every tenant with campaigns → deliveries.
async fn watch_renders(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut watching: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match store.tenants_with_campaigns().await {
            Ok(tenants) => {
                for t in tenants {
                    let alive = watching.get(&t).is_some_and(|h| !h.is_finished());
                    if !alive {
                        let task = tokio::spawn(watch_tenant(
                            store.clone(),
                            cfg.clone(),
                            t.clone(),
                            stop.clone(),
                        ));
                        watching.insert(t, task);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing tenants failed"),
        }
        if until_stopped(&mut stop, Duration::from_secs(2)).await {
            for (_, h) in watching {
                h.abort();
            }
            return;
        }
    }
}

/// Terminal events of every tenant's renders that carry a callback URL → deliveries, from
/// the trigger's own cursor; reconnects after an error or a dropped stream.
async fn watch_callbacks(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        follow_events(&store, &cfg, None, &mut stop).await;
        if until_stopped(&mut stop, Duration::from_secs(2)).await {
            return;
        }
    }
}

async fn watch_tenant(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    tenant: String,
    mut stop: watch::Receiver<bool>,
) {
    follow_events(&store, &cfg, Some(&tenant), &mut stop).await;
}

/// Follows one stream of render events until it ends, fails or `stop`: one tenant's (for its
/// campaigns' dispatches), or with `tenant` `None` every tenant's renders with a callback.
/// The cursor moves only after an event's delivery is stored.
async fn follow_events(
    store: &DynTriggerStore,
    cfg: &RuntimeConfig,
    tenant: Option<&str>,
    stop: &mut watch::Receiver<bool>,
) {
    let mut client = RenderServiceClient::new(cfg.channel.clone());
    let cursor = tenant.unwrap_or(CALLBACK_CURSOR);
    let after = match store.cursor(cursor).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "reading the render-event cursor failed");
            return;
        }
    };
    let msg = v1::WatchRenderEventsRequest {
        after_seq: after,
        callbacks_only: tenant.is_none(),
    };
    let mut req = match tenant {
        Some(t) => as_tenant(cfg, t, msg),
        None => as_service(cfg, msg),
    };
    // A long-lived stream: no per-call timeout.
    req.set_timeout(Duration::from_secs(24 * 3600));
    let mut stream = match client.watch_render_events(req).await {
        Ok(s) => s.into_inner(),
        Err(s) => {
            tracing::debug!(code = ?s.code(), "watching render events failed; retrying");
            return;
        }
    };
    loop {
        let next = tokio::select! {
            m = stream.message() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let event = match next {
            Ok(Some(e)) => e,
            _ => return,
        };
        let Some(render) = event.render else { continue };
        let handled = match tenant {
            Some(t) => on_render_event(store, cfg, &mut client, t, &render).await,
            None => on_callback_event(store, cfg, &mut client, &event.tenant, &render).await,
        };
        if let Err(e) = handled {
            tracing::warn!(error = %e, "turning a render event into a delivery failed; will retry");
            return;
        }
        if let Err(e) = store.set_cursor(cursor, event.seq).await {
            tracing::warn!(error = %e, "saving the render-event cursor failed");
            return;
        }
    }
}

/// Who a delivery goes to and what it says about where the render came from.
struct Recipient {
    /// Deliveries are unique per (this key, kind): the dispatch key, or `render:<id>`.
    key: String,
    url: String,
    campaign: String,
    variant: String,
    customer_id: String,
    event_id: String,
}

async fn on_render_event(
    store: &DynTriggerStore,
    cfg: &RuntimeConfig,
    client: &mut RenderServiceClient<Channel>,
    tenant: &str,
    render: &v1::Render,
) -> Result<(), String> {
    let Some(d) = store
        .dispatch_of_render(tenant, &render.id, &render.idempotency_key)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(()); // not one of ours
    };
    let to = Recipient {
        key: d.key.clone(),
        url: d.destination.url.clone(),
        campaign: d.campaign.clone(),
        variant: d.variant.clone(),
        customer_id: d.customer_id.clone(),
        event_id: d.event_id.clone(),
    };
    enqueue_report(store, cfg, client, tenant, render, to).await
}

/// A render with its own callback URL: one delivery to it, signed with the tenant's callback
/// secret ([`callback_secret`]).
async fn on_callback_event(
    store: &DynTriggerStore,
    cfg: &RuntimeConfig,
    client: &mut RenderServiceClient<Channel>,
    tenant: &str,
    render: &v1::Render,
) -> Result<(), String> {
    if render.callback_url.is_empty() || tenant.is_empty() {
        return Ok(());
    }
    let to = Recipient {
        key: format!("render:{}", render.id),
        url: render.callback_url.clone(),
        campaign: String::new(),
        variant: String::new(),
        customer_id: String::new(),
        event_id: String::new(),
    };
    enqueue_report(store, cfg, client, tenant, render, to).await
}

/// Stores the delivery that reports `render`'s end to `to`, with signed links to its video and
/// poster when it succeeded.
async fn enqueue_report(
    store: &DynTriggerStore,
    cfg: &RuntimeConfig,
    client: &mut RenderServiceClient<Channel>,
    tenant: &str,
    render: &v1::Render,
    to: Recipient,
) -> Result<(), String> {
    let state = v1::RenderState::try_from(render.state).unwrap_or(v1::RenderState::Unspecified);
    let succeeded = state == v1::RenderState::Succeeded;
    let mut payload = DeliveryPayload {
        delivery_id: uuid::Uuid::new_v4().to_string(),
        event: if succeeded {
            DeliveryEvent::RenderSucceeded
        } else {
            DeliveryEvent::RenderFailed
        },
        occurred_at: ms_to_time(render.finished_unix_ms),
        tenant: tenant.to_owned(),
        campaign: to.campaign.clone(),
        variant: to.variant,
        customer_id: to.customer_id,
        event_id: to.event_id,
        render_id: render.id.clone(),
        state: state
            .as_str_name()
            .trim_start_matches("RENDER_STATE_")
            .to_ascii_lowercase(),
        metadata: render.metadata.clone(),
        video_url: None,
        poster_url: None,
        url_expires_at: None,
        failure: render.failure.as_ref().map(|f| f.message.clone()),
    };
    if succeeded {
        for artifact in [v1::Artifact::Video, v1::Artifact::Poster] {
            let answer = client
                .create_download_url(as_tenant(
                    cfg,
                    tenant,
                    v1::CreateDownloadUrlRequest {
                        id: render.id.clone(),
                        artifact: artifact as i32,
                        ttl_s: cfg.link_ttl_s,
                    },
                ))
                .await;
            let link = match answer {
                Ok(a) => a.into_inner(),
                // A render without that file (a no-op worker's): deliver without a link.
                Err(s) if s.code() == tonic::Code::FailedPrecondition => continue,
                Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
            };
            payload.url_expires_at = Some(ms_to_time(link.expires_unix_ms));
            match artifact {
                v1::Artifact::Video => payload.video_url = Some(link.url),
                _ => payload.poster_url = Some(link.url),
            }
        }
    }
    let body = payload.to_body().map_err(|e| e.to_string())?;
    let json = String::from_utf8(body).map_err(|e| e.to_string())?;
    let kind = if succeeded {
        "render.succeeded"
    } else {
        "render.failed"
    };
    store
        .enqueue_delivery(&NewDelivery {
            id: payload.delivery_id.clone(),
            dispatch_key: to.key,
            tenant: tenant.to_owned(),
            campaign: to.campaign,
            variant: payload.variant.clone(),
            kind: kind.to_owned(),
            url: to.url,
            payload_json: json,
            now: Utc::now().timestamp_millis(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Pending deliveries → signed webhooks, with retries and a dead-letter list.
async fn send_deliveries(
    store: DynTriggerStore,
    cfg: RuntimeConfig,
    mut stop: watch::Receiver<bool>,
) {
    let sender = match Sender::with_config(SenderConfig {
        connect_timeout: webhook::CONNECT_TIMEOUT,
        timeout: webhook::REQUEST_TIMEOUT,
        allow_private: cfg.allow_private_destinations,
    }) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client");
            return;
        }
    };
    let mut secrets: BTreeMap<(String, Option<String>), String> = BTreeMap::new();
    loop {
        let now = Utc::now().timestamp_millis();
        let batch = match store.claim_due_deliveries(now, 50, 60_000).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed");
                Vec::new()
            }
        };
        let idle = batch.is_empty();
        for d in batch {
            // A render's own callback has no campaign and the tenant's callback secret.
            let secret_ref = if d.campaign.is_empty() {
                None
            } else {
                match store.campaign(&d.tenant, &d.campaign).await {
                    Ok(Some((_, c))) => Some(c.destination.secret_ref.clone()),
                    _ => Some(String::new()),
                }
            };
            let secret = secrets
                .entry((d.tenant.clone(), secret_ref.clone()))
                .or_insert_with(|| match &secret_ref {
                    Some(r) => webhook_secret(&cfg.webhook_key, &d.tenant, r),
                    None => callback_secret(&cfg.webhook_key, &d.tenant),
                })
                .clone();
            let out = Outgoing {
                id: d.id.clone(),
                url: d.url.clone(),
                secret: secret.into_bytes(),
                body: d.payload_json.clone().into_bytes(),
            };
            let started = std::time::Instant::now();
            let attempt = sender.send(&out).await;
            let took_s = started.elapsed().as_secs_f64();
            let now = Utc::now().timestamp_millis();
            let since_created_s = (now - d.created_ms) as f64 / 1000.0;
            let count = |outcome| {
                cfg.metrics
                    .delivery(!d.campaign.is_empty(), outcome, took_s, since_created_s)
            };
            let result = match attempt {
                Attempt::Delivered { status } => {
                    count(DeliveryOutcome::Delivered);
                    store.delivery_done(&d.id, now, status).await
                }
                Attempt::Permanent { status, error } => {
                    count(DeliveryOutcome::DeadLetter);
                    let status = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
                    store
                        .delivery_dead(&d.id, &format!("{status}{error}"), now)
                        .await
                }
                Attempt::Retry {
                    error, retry_after, ..
                } => {
                    if d.attempts + 1 >= webhook::MAX_ATTEMPTS {
                        count(DeliveryOutcome::DeadLetter);
                        store.delivery_dead(&d.id, &error, now).await
                    } else {
                        count(DeliveryOutcome::Retry);
                        let jitter = 0.5 + rand::random::<f64>() * 0.5;
                        let delay = retry_after
                            .unwrap_or_else(|| webhook::next_attempt_delay(d.attempts + 1, jitter));
                        store
                            .delivery_retry(&d.id, now + delay.as_millis() as i64, &error)
                            .await
                    }
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "recording a delivery failed");
            }
        }
        if idle && until_stopped(&mut stop, Duration::from_millis(250)).await {
            return;
        }
    }
}
