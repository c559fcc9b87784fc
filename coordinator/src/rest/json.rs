//! The JSON shapes of the HTTP render API and their conversions from and to the wire types.
//!
//! The handlers translate at the edge only: a request body becomes a
//! [`v1::SubmitRenderRequest`] and goes through the same service code as gRPC; a
//! [`v1::Render`] the service answers becomes a [`Render`]. The JSON body is flat, so a field
//! the service names `spec.tokens.first_name` is `tokens.first_name` here ([`json_field`]).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::links::UrlSigner;
use crate::model::{ArtifactKind, Millis};

/// How long the `video_url` and `poster_url` links of a render stay valid.
pub const LINK_TTL_MS: Millis = 3_600_000;

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Preset {
    /// 1280×720, x264 veryfast CRF 23, AAC 128 kb/s (the default).
    #[serde(rename = "720p")]
    P720,
    /// 1920×1080, x264 veryfast CRF 23, AAC 128 kb/s.
    #[serde(rename = "1080p")]
    P1080,
    /// At most 720 px on the short side, sized for WhatsApp (under 16 MB for 60 s).
    #[serde(rename = "whatsapp")]
    Whatsapp,
}

impl Preset {
    fn to_proto(self) -> v1::Preset {
        match self {
            Preset::P720 => v1::Preset::Preset720p,
            Preset::P1080 => v1::Preset::Preset1080p,
            Preset::Whatsapp => v1::Preset::Whatsapp,
        }
    }

    fn from_proto(v: i32) -> Preset {
        match v1::Preset::try_from(v) {
            Ok(v1::Preset::Preset1080p) => Preset::P1080,
            Ok(v1::Preset::Whatsapp) => Preset::Whatsapp,
            _ => Preset::P720,
        }
    }
}

/// Priority lane: real-time work is always handed out before bulk work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Realtime,
    Bulk,
}

impl Lane {
    fn to_proto(self) -> v1::Lane {
        match self {
            Lane::Realtime => v1::Lane::Realtime,
            Lane::Bulk => v1::Lane::Bulk,
        }
    }

    fn from_proto(v: i32) -> Lane {
        match v1::Lane::try_from(v) {
            Ok(v1::Lane::Bulk) => Lane::Bulk,
            _ => Lane::Realtime,
        }
    }
}

/// Where a render is in its life: `queued` → `running` → `succeeded`, `failed` or `cancelled`
/// (a failed attempt that will be retried goes back to `queued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RenderState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RenderState {
    /// Every state, in the order of the list above.
    pub const ALL: [RenderState; 5] = [
        RenderState::Queued,
        RenderState::Running,
        RenderState::Succeeded,
        RenderState::Failed,
        RenderState::Cancelled,
    ];

    /// The word used on the wire (`queued`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RenderState::Queued => "queued",
            RenderState::Running => "running",
            RenderState::Succeeded => "succeeded",
            RenderState::Failed => "failed",
            RenderState::Cancelled => "cancelled",
        }
    }

    pub fn to_proto(self) -> v1::RenderState {
        match self {
            RenderState::Queued => v1::RenderState::Queued,
            RenderState::Running => v1::RenderState::Running,
            RenderState::Succeeded => v1::RenderState::Succeeded,
            RenderState::Failed => v1::RenderState::Failed,
            RenderState::Cancelled => v1::RenderState::Cancelled,
        }
    }

    fn from_proto(v: i32) -> RenderState {
        match v1::RenderState::try_from(v) {
            Ok(v1::RenderState::Running) => RenderState::Running,
            Ok(v1::RenderState::Succeeded) => RenderState::Succeeded,
            Ok(v1::RenderState::Failed) => RenderState::Failed,
            Ok(v1::RenderState::Cancelled) => RenderState::Cancelled,
            _ => RenderState::Queued,
        }
    }
}

/// Why a render failed: `invalid_input` (never retried), `application` and `infrastructure`
/// (retried on separate budgets), `deadline_exceeded` (terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    InvalidInput,
    Application,
    Infrastructure,
    DeadlineExceeded,
    /// A class this version does not know.
    Unknown,
}

impl FailureClass {
    fn from_proto(v: i32) -> FailureClass {
        match v1::FailureClass::try_from(v) {
            Ok(v1::FailureClass::InvalidInput) => FailureClass::InvalidInput,
            Ok(v1::FailureClass::Application) => FailureClass::Application,
            Ok(v1::FailureClass::Infrastructure) => FailureClass::Infrastructure,
            Ok(v1::FailureClass::DeadlineExceeded) => FailureClass::DeadlineExceeded,
            _ => FailureClass::Unknown,
        }
    }
}

/// `POST /v1/renders`: one render to queue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "idempotency_key": "order-4711-delivered",
    "template": "order-delivered@live",
    "lang": "hi-IN",
    "tokens": {"first_name": "Priya", "product": "Kettle", "offer_code": "SAVE10"},
    "preset": "whatsapp",
    "lane": "realtime",
    "metadata": {"order_id": "4711"},
    "callback_url": "https://example.com/hooks/reelfarm"
}))]
pub struct SubmitRenderRequest {
    /// Client-chosen key, unique per tenant: 1 to 128 printable ASCII characters without
    /// spaces. Resubmitting after a timeout with the same key is safe. May be sent as the
    /// `Idempotency-Key` header instead; if both are given they must be equal.
    #[schema(example = "order-4711-delivered")]
    pub idempotency_key: Option<String>,
    /// Template reference: `name` (its newest version), `name@7` (version 7) or `name@alias`
    /// (a movable alias such as `name@live`). Resolved to a fixed version at submission.
    #[schema(example = "order-delivered@live")]
    pub template: String,
    /// Language code the template speaks (`en`, `hi`), or a tag whose primary subtag it speaks
    /// (`hi-IN` renders in `hi`). Absent: the template's default language.
    #[schema(example = "hi-IN")]
    pub lang: Option<String>,
    /// Token values by token name. Unknown names are rejected; missing ones take the
    /// template's fallback or are rejected when required. At most 256 characters each.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// Output encoding; absent: `720p`.
    pub preset: Option<Preset>,
    /// Priority lane; absent: `realtime`.
    pub lane: Option<Lane>,
    /// Give up if not finished within this many seconds of submission; absent or 0: 3600, at
    /// most 86400.
    #[schema(minimum = 0, maximum = 86400, example = 600)]
    pub deadline_s: Option<u32>,
    /// The client's own labels for this render, returned on the render and in its callback
    /// exactly as given. At most 16 entries; keys 1 to 40 characters of `a-z`, `A-Z`, `0-9`,
    /// `_`, `-` and `.`; values at most 500 characters.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Where to POST a signed webhook once the render succeeds, fails or is cancelled: an
    /// `http` or `https` URL without credentials, at most 2048 characters.
    #[schema(example = "https://example.com/hooks/reelfarm")]
    pub callback_url: Option<String>,
}

impl SubmitRenderRequest {
    /// The wire request, with the idempotency key from the body or the `Idempotency-Key`
    /// header (`header_key`). A missing key is left empty for the service to name.
    pub fn into_proto(self, header_key: Option<&str>) -> Result<v1::SubmitRenderRequest, ApiError> {
        let idempotency_key = match (self.idempotency_key, header_key) {
            (Some(body), Some(header)) if body != header => {
                return Err(ApiError::invalid(
                    "idempotency_key",
                    "differs from the Idempotency-Key header; send one of them, or the same key in both",
                ))
            }
            (Some(body), _) => body,
            (None, Some(header)) => header.to_owned(),
            (None, None) => String::new(),
        };
        Ok(v1::SubmitRenderRequest {
            idempotency_key,
            spec: Some(v1::RenderSpec {
                template: self.template,
                lang: self.lang.unwrap_or_default(),
                tokens: self.tokens.into_iter().collect(),
                preset: self
                    .preset
                    .map_or(v1::Preset::Unspecified, Preset::to_proto)
                    as i32,
                lane: self.lane.map_or(v1::Lane::Unspecified, Lane::to_proto) as i32,
                deadline_s: self.deadline_s.unwrap_or(0),
                metadata: self.metadata.into_iter().collect(),
                callback_url: self.callback_url.unwrap_or_default(),
            }),
        })
    }
}

/// The files of a succeeded render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderOutput {
    /// Size of the MP4 in bytes.
    pub video_bytes: u64,
    /// Lowercase hex SHA-256 of the MP4.
    pub video_sha256: String,
    /// Size of the poster JPEG in bytes.
    pub poster_bytes: u64,
    /// Lowercase hex SHA-256 of the poster.
    pub poster_sha256: String,
    /// Seconds each stage of the winning attempt took, by stage name (`fetch_template`,
    /// `render`, `poster`, `upload`).
    pub stage_seconds: BTreeMap<String, f64>,
}

/// Why a render failed (or why its previous attempt did, on a queued render).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderFailure {
    pub class: FailureClass,
    /// What went wrong, without recipient data.
    pub message: String,
}

/// A render as the coordinator sees it. Times are RFC 3339 in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11",
    "idempotency_key": "order-4711-delivered",
    "template": "order-delivered",
    "template_version": 3,
    "lang": "hi",
    "preset": "whatsapp",
    "lane": "realtime",
    "state": "succeeded",
    "progress": 1.0,
    "stage": null,
    "created_at": "2026-12-07T10:00:00.000Z",
    "updated_at": "2026-12-07T10:00:21.500Z",
    "started_at": "2026-12-07T10:00:00.250Z",
    "finished_at": "2026-12-07T10:00:21.500Z",
    "retry_at": null,
    "deadline_at": "2026-12-07T11:00:00.000Z",
    "attempts": 1,
    "output": {
        "video_bytes": 2_481_152,
        "video_sha256": "9f2c0a6e8b1d4c3f5a7e9b0d2c4f6a8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a",
        "poster_bytes": 48_213,
        "poster_sha256": "1c3e5b7d9f0a9f2c0a6e8b1d4c3f5a7e9b0d2c4f6a8e1b3d5f7a9c0e2b4d6f8a",
        "stage_seconds": {"fetch_template": 0.1, "render": 19.8, "poster": 0.2, "upload": 0.4}
    },
    "failure": null,
    "warnings": [],
    "tokens": {"first_name": "Priya", "product": "Kettle", "offer_code": "SAVE10"},
    "metadata": {"order_id": "4711"},
    "callback_url": "https://example.com/hooks/reelfarm",
    "stream_url": null,
    "video_url": "https://farm.example.com/v1/renders/0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11/video?expires=1796644821500&sig=5d1f",
    "poster_url": "https://farm.example.com/v1/renders/0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11/poster?expires=1796644821500&sig=7a2e"
}))]
pub struct Render {
    /// Server-assigned id (a UUID).
    pub id: String,
    pub idempotency_key: String,
    /// The template's name.
    pub template: String,
    /// The version the template reference resolved to at submission.
    pub template_version: u32,
    /// The template's language the render is made in (`hi` for a request that said `hi-IN`).
    pub lang: String,
    pub preset: Preset,
    pub lane: Lane,
    pub state: RenderState,
    /// Fraction done of the current attempt, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub progress: f32,
    /// What the current attempt is doing (`prepare`, `render`, `upload`); null when not
    /// running.
    pub stage: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The last state change.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When a worker took the current (or last) attempt; null before the first.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When the render reached a terminal state; null before.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// When a queued render whose previous attempt failed will be tried again; null otherwise.
    #[schema(format = DateTime)]
    pub retry_at: Option<String>,
    /// The render fails as `deadline_exceeded` if not finished by then.
    #[schema(format = DateTime)]
    pub deadline_at: String,
    /// Attempts started so far (1 on the first try).
    pub attempts: u32,
    /// Set when succeeded.
    pub output: Option<RenderOutput>,
    /// Set when failed, and on a queued render whose previous attempt failed.
    pub failure: Option<RenderFailure>,
    /// Degradations the render went through that did not fail it (a font fallback used).
    pub warnings: Vec<String>,
    /// Token values as stored (sanitized); only in `GET /v1/renders/{id}` and the answer to a
    /// cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<BTreeMap<String, String>>,
    /// The request's metadata, as given.
    pub metadata: BTreeMap<String, String>,
    /// The request's callback URL; null when none.
    pub callback_url: Option<String>,
    /// A signed link to the live HLS playlist of the current attempt (of the winning attempt
    /// once succeeded), valid for 24 hours; null before it publishes, for queued, failed and
    /// cancelled renders, and when the coordinator serves no HTTP links.
    pub stream_url: Option<String>,
    /// A signed link to the MP4, valid for one hour, that needs no API key; set when succeeded
    /// and the coordinator serves download links.
    pub video_url: Option<String>,
    /// A signed link to the poster JPEG, valid for one hour; as `video_url`.
    pub poster_url: Option<String>,
}

/// A page of renders, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderList {
    /// The renders of this page (without tokens).
    pub renders: Vec<Render>,
    /// Pass as `page_token` for the next page; null on the last page.
    pub next_page_token: Option<String>,
}

/// RFC 3339 in UTC with milliseconds; null for 0 (not set).
fn time(ms: Millis) -> Option<String> {
    if ms == 0 {
        return None;
    }
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Signs the `video_url` and `poster_url` links of a succeeded render: with which signer, at
/// what time.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub signer: &'a UrlSigner,
    pub now: Millis,
}

impl Render {
    /// The JSON form of a render the service answered; `links` signs download links.
    pub fn from_proto(r: v1::Render, links: Option<Links<'_>>) -> Render {
        let state = RenderState::from_proto(r.state);
        let output = r.output.map(|o| RenderOutput {
            video_bytes: o.video_bytes,
            video_sha256: o.video_sha256,
            poster_bytes: o.poster_bytes,
            poster_sha256: o.poster_sha256,
            stage_seconds: o.stage_seconds.into_iter().collect(),
        });
        let link = |artifact: ArtifactKind, present: bool| match links {
            Some(l) if state == RenderState::Succeeded && present => {
                Some(l.signer.url(&r.id, artifact, l.now + LINK_TTL_MS))
            }
            _ => None,
        };
        let video_url = link(
            ArtifactKind::Video,
            output.as_ref().is_some_and(|o| !o.video_sha256.is_empty()),
        );
        let poster_url = link(
            ArtifactKind::Poster,
            output.as_ref().is_some_and(|o| !o.poster_sha256.is_empty()),
        );
        Render {
            idempotency_key: r.idempotency_key,
            template: r.template_name,
            template_version: r.template_version,
            lang: r.lang,
            preset: Preset::from_proto(r.preset),
            lane: Lane::from_proto(r.lane),
            state,
            progress: r.progress,
            stage: non_empty(r.stage),
            created_at: time(r.created_unix_ms).unwrap_or_default(),
            updated_at: time(r.updated_unix_ms).unwrap_or_default(),
            started_at: time(r.started_unix_ms),
            finished_at: time(r.finished_unix_ms),
            retry_at: time(r.not_before_unix_ms),
            deadline_at: time(r.deadline_unix_ms).unwrap_or_default(),
            attempts: r.attempts,
            output,
            failure: r.failure.map(|f| RenderFailure {
                class: FailureClass::from_proto(f.class),
                message: f.message,
            }),
            warnings: r.warnings,
            tokens: (!r.tokens.is_empty()).then(|| r.tokens.into_iter().collect()),
            metadata: r.metadata.into_iter().collect(),
            callback_url: non_empty(r.callback_url),
            stream_url: non_empty(r.stream_url),
            video_url,
            poster_url,
            id: r.id,
        }
    }
}

/// The JSON name of a request field the service names by its wire path: the body is flat, so
/// `spec.tokens.first_name` is `tokens.first_name`.
pub fn json_field(field: &str) -> String {
    match field.strip_prefix("spec.") {
        Some(rest) => rest.to_owned(),
        None if field == "spec" => "template".to_owned(),
        None => field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_map_to_the_wire() {
        let body: SubmitRenderRequest = serde_json::from_value(serde_json::json!({
            "template": "t@live",
            "tokens": {"first_name": "Priya"},
            "preset": "whatsapp",
            "lane": "bulk",
            "metadata": {"order_id": "4711"},
        }))
        .expect("parses");
        let req = body.clone().into_proto(Some("k-1")).expect("header key");
        assert_eq!(req.idempotency_key, "k-1");
        let spec = req.spec.expect("spec");
        assert_eq!(spec.template, "t@live");
        assert_eq!(spec.preset, v1::Preset::Whatsapp as i32);
        assert_eq!(spec.lane, v1::Lane::Bulk as i32);
        assert_eq!(
            spec.tokens.get("first_name").map(String::as_str),
            Some("Priya")
        );
        assert_eq!(
            spec.metadata.get("order_id").map(String::as_str),
            Some("4711")
        );
        assert_eq!(spec.callback_url, "");

        let mut keyed = body;
        keyed.idempotency_key = Some("k-2".into());
        assert_eq!(
            keyed
                .clone()
                .into_proto(Some("k-2"))
                .expect("same")
                .idempotency_key,
            "k-2"
        );
        assert_eq!(
            keyed
                .clone()
                .into_proto(None)
                .expect("body")
                .idempotency_key,
            "k-2"
        );
        match keyed.into_proto(Some("k-3")) {
            Err(ApiError::InvalidArgument { field, .. }) => assert_eq!(field, "idempotency_key"),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn renders_convert_with_times_and_links() {
        let signer = UrlSigner::new(b"k", "https://media.example.com");
        let r = v1::Render {
            id: "r1".into(),
            state: v1::RenderState::Succeeded as i32,
            created_unix_ms: 1_000,
            finished_unix_ms: 0,
            output: Some(v1::RenderOutput {
                video_bytes: 10,
                video_sha256: "ab".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = Render::from_proto(
            r.clone(),
            Some(Links {
                signer: &signer,
                now: 5_000,
            }),
        );
        assert_eq!(json.state, RenderState::Succeeded);
        assert_eq!(json.created_at, "1970-01-01T00:00:01.000Z");
        assert_eq!(json.finished_at, None);
        assert_eq!(json.stage, None);
        let video = json.video_url.expect("video link");
        assert!(
            video.starts_with("https://media.example.com/v1/renders/r1/video?expires=3605000&sig="),
            "{video}"
        );
        assert_eq!(json.poster_url, None, "no poster file, no link");
        assert_eq!(json.tokens, None);
        let unsigned = Render::from_proto(r, None);
        assert_eq!(unsigned.video_url, None);
    }

    #[test]
    fn service_fields_become_json_fields() {
        assert_eq!(json_field("spec.tokens.first_name"), "tokens.first_name");
        assert_eq!(json_field("spec.template"), "template");
        assert_eq!(json_field("idempotency_key"), "idempotency_key");
        assert_eq!(json_field("page_size"), "page_size");
    }
}
