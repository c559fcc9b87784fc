//! The TriggerService's answers, called in process on a SQLite store: authentication, request
//! errors, and how store failures reach the caller.

use std::sync::Arc;

use proto::auth::{Bearer, AUTHORIZATION};
use proto::v1;
use proto::v1::trigger_service_server::TriggerService;
use tonic::{Code, Request};
use trigger::ingest::{Ingest, TenantKeys};
use trigger::metrics::TriggerMetrics;
use trigger::service::TriggerApi;
use trigger::store::SqliteStore;

use crate::support::{base_campaign, base_event};

const KEY: &str = "rf_test_key";

struct OneKey;

#[async_trait::async_trait]
impl TenantKeys for OneKey {
    async fn tenant_for_key(&self, api_key: &str) -> Option<String> {
        (api_key == KEY).then(|| "acme".to_owned())
    }
}

/// The service on a fresh SQLite file, and that file's URL.
async fn api(dir: &tempfile::TempDir) -> (TriggerApi, String) {
    api_with(dir, TriggerMetrics::new()).await
}

/// The service on a fresh SQLite file counting into `metrics`.
async fn api_with(dir: &tempfile::TempDir, metrics: TriggerMetrics) -> (TriggerApi, String) {
    let url = format!("sqlite://{}", dir.path().join("trigger.db").display());
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    let api = TriggerApi {
        ingest: Ingest {
            store: Arc::new(store),
            keys: Arc::new(OneKey),
            new_events: Arc::new(tokio::sync::Notify::new()),
            metrics,
        },
        webhook_key: Arc::new(b"master".to_vec()),
    };
    (api, url)
}

fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    Bearer::new(KEY)
        .expect("ascii key")
        .insert_into(request.metadata_mut());
    request
}

#[tokio::test]
async fn calls_need_a_known_bearer_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, _) = api(&dir).await;
    let list = |request| api.list_campaigns(request);

    let err = list(Request::new(v1::ListCampaignsRequest {}))
        .await
        .expect_err("no key");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.message(),
        "missing `authorization: Bearer <key>` metadata"
    );

    let mut request = Request::new(v1::ListCampaignsRequest {});
    request
        .metadata_mut()
        .insert(AUTHORIZATION, "Bearer rf_other".parse().expect("ascii"));
    let err = list(request).await.expect_err("unknown key");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "unknown API key");

    assert!(list(authed(v1::ListCampaignsRequest {})).await.is_ok());
}

#[tokio::test]
async fn request_errors_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, _) = api(&dir).await;
    let err = api
        .ingest_events(authed(v1::IngestEventsRequest {
            events_json: Vec::new(),
        }))
        .await
        .expect_err("no events");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "events_json: no events");

    let err = api
        .list_dead_letters(authed(v1::ListDeadLettersRequest { limit: 1001 }))
        .await
        .expect_err("limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "limit: at most 1000");

    let err = api
        .get_campaign(authed(v1::GetCampaignRequest {
            name: "nope".into(),
        }))
        .await
        .expect_err("unknown campaign");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "campaign `nope`");
}

/// A corrupt row is a database error, not an outage: INTERNAL (retrying cannot help), and the
/// database's text stays in the log instead of reaching the caller.
#[tokio::test]
async fn a_corrupt_row_is_internal_without_details() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, url) = api(&dir).await;
    api.put_campaign(authed(v1::PutCampaignRequest {
        definition_json: base_campaign().to_string(),
    }))
    .await
    .expect("put campaign");

    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("second connection");
    sqlx::query("UPDATE campaign_versions SET campaign_json = 'corrupt-row-detail'")
        .execute(&pool)
        .await
        .expect("corrupt the row");
    pool.close().await;

    let err = api
        .get_campaign(authed(v1::GetCampaignRequest {
            name: "thanks".into(),
        }))
        .await
        .expect_err("corrupt campaign");
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    for detail in ["campaign_json", "JSON", "corrupt", "database"] {
        assert!(!err.message().contains(detail), "{err:?} leaks {detail}");
    }
}

/// Events ingested over gRPC are counted by outcome under the documented names; no label
/// carries an event or customer id.
#[tokio::test]
async fn ingested_events_are_counted_by_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = TriggerMetrics::new();
    let (api, _) = api_with(&dir, metrics.clone()).await;
    let mut second = base_event();
    second["id"] = "evt-2".into();
    let mut invalid = base_event();
    invalid["id"] = "evt-3".into();
    invalid["customer"]["tz"] = "Mars/Base".into();
    let events = vec![
        base_event().to_string(),
        second.to_string(),
        base_event().to_string(),
        invalid.to_string(),
    ];
    let answer = api
        .ingest_events(authed(v1::IngestEventsRequest {
            events_json: events,
        }))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(answer.results.len(), 4);

    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    for line in [
        "reelfarm_events_total{outcome=\"accepted\"} 2",
        "reelfarm_events_total{outcome=\"duplicate\"} 1",
        "reelfarm_events_total{outcome=\"rejected\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    for id in ["evt-1", "evt-2", "evt-3", "c-1", "acme"] {
        assert!(!text.contains(id), "{id} in {text}");
    }
}
