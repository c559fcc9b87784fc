//! The gRPC API end to end on loopback, against both stores: tenancy, idempotency, validation,
//! fences, leases with a manual clock, cancellation, backpressure and priority.

use std::sync::Arc;
use std::time::Duration;

use coordinator::lifecycle::LeasePolicy;
use coordinator::store::{DynStore, PostgresStore, SqliteStore};
use coordinator::{Clock, CoordinatorConfig, Running, Settings};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use proto::v1::template_service_client::TemplateServiceClient;
use proto::v1::worker_service_client::WorkerServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

pub const TOKEN: &str = "test-join-token";
const SERVICE_TOKEN: &str = "test-service-token";

fn demo_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

async fn open_store(backend: &Backend, dir: &std::path::Path) -> DynStore {
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.join("farm.db").display());
            Arc::new(SqliteStore::open(&url).await.expect("sqlite store"))
        }
        Backend::Postgres => {
            let url = std::env::var("REELFARM_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned()
            });
            let schema = format!("api_{}", uuid::Uuid::new_v4().simple());
            Arc::new(
                PostgresStore::connect_with_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {url}: {e}; run scripts/postgres-up")
                    }),
            )
        }
    }
}

/// A coordinator on loopback with two tenants.
pub struct TestFarm {
    pub running: Running,
    pub store: DynStore,
    pub channel: Channel,
    pub key_a: String,
    pub key_b: String,
    pub dir: tempfile::TempDir,
}

impl TestFarm {
    pub async fn start(backend: Backend, clock: Clock, settings: Settings) -> TestFarm {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&backend, dir.path()).await;
        let now = clock.now_ms();
        let (_, key_a) = coordinator::admin::create_tenant(&store, "tenant-a", 1000, now)
            .await
            .expect("tenant a");
        let (_, key_b) = coordinator::admin::create_tenant(&store, "tenant-b", 1000, now)
            .await
            .expect("tenant b");
        let mut config = CoordinatorConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("blobs").display().to_string(),
            TOKEN,
        );
        config.settings = settings;
        config.sweep_interval = Duration::from_millis(50);
        config.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
        config.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
        config.service_token = Some(SERVICE_TOKEN.to_owned());
        let running = coordinator::start_with_clock(config, store.clone(), clock.clone())
            .await
            .expect("coordinator starts");
        let channel = Channel::from_shared(format!("http://{}", running.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        TestFarm {
            running,
            store,
            channel,
            key_a,
            key_b,
            dir,
        }
    }

    pub fn renders(&self) -> RenderServiceClient<Channel> {
        RenderServiceClient::new(self.channel.clone())
    }

    pub fn templates(&self) -> TemplateServiceClient<Channel> {
        TemplateServiceClient::new(self.channel.clone())
    }

    pub fn workers(&self) -> WorkerServiceClient<Channel> {
        WorkerServiceClient::new(self.channel.clone())
    }
}

/// A request carrying `secret` as its bearer token.
pub fn authed<T>(secret: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {secret}")).expect("ascii"),
    );
    req
}

pub async fn push_demo(farm: &TestFarm, key: &str, aliases: &[&str]) -> v1::TemplateVersion {
    let archive = template::pack_dir(&demo_dir()).expect("pack demo");
    let mut msgs = vec![v1::UploadTemplateRequest {
        part: Some(v1::upload_template_request::Part::Header(
            v1::UploadTemplateHeader {
                aliases: aliases.iter().map(|s| s.to_string()).collect(),
            },
        )),
    }];
    for c in archive.chunks(proto::CHUNK_BYTES) {
        msgs.push(v1::UploadTemplateRequest {
            part: Some(v1::upload_template_request::Part::Chunk(c.to_vec())),
        });
    }
    farm.templates()
        .upload_template(authed(key, futures::stream::iter(msgs)))
        .await
        .expect("upload")
        .into_inner()
}

pub fn spec(name: &str) -> v1::RenderSpec {
    v1::RenderSpec {
        template: "order-delivered".into(),
        lang: "en".into(),
        tokens: [
            ("first_name".to_owned(), name.to_owned()),
            ("product".to_owned(), "Kettle".to_owned()),
            ("offer_code".to_owned(), "SAVE10".to_owned()),
        ]
        .into_iter()
        .collect(),
        preset: v1::Preset::Preset720p as i32,
        lane: v1::Lane::Realtime as i32,
        deadline_s: 0,
        ..Default::default()
    }
}

pub async fn submit(
    farm: &TestFarm,
    key: &str,
    idem: &str,
    spec: v1::RenderSpec,
) -> Result<v1::SubmitRenderResponse, tonic::Status> {
    farm.renders()
        .submit_render(authed(
            key,
            v1::SubmitRenderRequest {
                idempotency_key: idem.into(),
                spec: Some(spec),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

pub async fn register(farm: &TestFarm, name: &str, noop: bool) -> String {
    farm.workers()
        .register(authed(
            TOKEN,
            v1::RegisterRequest {
                name: name.into(),
                boot_id: uuid::Uuid::new_v4().to_string(),
                capabilities: Some(v1::Capabilities {
                    slots: 4,
                    noop,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("register")
        .into_inner()
        .worker_id
}

pub async fn acquire(farm: &TestFarm, worker: &str, max: u32, wait_ms: u32) -> Vec<v1::Assignment> {
    farm.workers()
        .acquire(authed(
            TOKEN,
            v1::AcquireRequest {
                worker_id: worker.into(),
                max_assignments: max,
                wait_ms,
            },
        ))
        .await
        .expect("acquire")
        .into_inner()
        .assignments
}

pub async fn complete(
    farm: &TestFarm,
    worker: &str,
    a: &v1::AttemptRef,
) -> Result<v1::CompleteResponse, tonic::Status> {
    farm.workers()
        .complete(authed(
            TOKEN,
            v1::CompleteRequest {
                worker_id: worker.into(),
                attempt: Some(a.clone()),
                warnings: vec![],
                stage_seconds: [("render".to_owned(), 1.5)].into_iter().collect(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn upload(
    farm: &TestFarm,
    worker: &str,
    a: &v1::AttemptRef,
    artifact: v1::Artifact,
    data: &[u8],
) -> Result<v1::UploadOutputResponse, tonic::Status> {
    let mut msgs = vec![v1::UploadOutputRequest {
        part: Some(v1::upload_output_request::Part::Header(
            v1::UploadOutputHeader {
                worker_id: worker.into(),
                attempt: Some(a.clone()),
                artifact: artifact as i32,
            },
        )),
    }];
    for c in data.chunks(1000) {
        msgs.push(v1::UploadOutputRequest {
            part: Some(v1::upload_output_request::Part::Chunk(c.to_vec())),
        });
    }
    farm.workers()
        .upload_output(authed(TOKEN, futures::stream::iter(msgs)))
        .await
        .map(|r| r.into_inner())
}

async fn get(farm: &TestFarm, key: &str, id: &str) -> Result<v1::Render, tonic::Status> {
    farm.renders()
        .get_render(authed(key, v1::GetRenderRequest { id: id.into() }))
        .await
        .map(|r| r.into_inner())
}

fn assert_invalid(r: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    match r {
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
            assert!(
                s.message().starts_with(field),
                "`{}` should name {field}",
                s.message()
            );
        }
        Ok(v) => panic!("expected INVALID_ARGUMENT naming {field}, got {v:?}"),
    }
}

// ---------------------------------------------------------------------------------------------

async fn lifecycle_and_download(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    let v = push_demo(&farm, &farm.key_a, &["live"]).await;
    assert!(v.created && v.version == 1 && v.aliases == vec!["live".to_owned()]);
    assert!(v.languages.contains(&"hi".to_owned()));
    // The same bytes again: the same version.
    let again = push_demo(&farm, &farm.key_a, &[]).await;
    assert_eq!((again.version, again.created), (1, false));

    let mut s = spec("Priya");
    s.template = "order-delivered@live".into();
    let resp = submit(&farm, &farm.key_a, "order-1", s)
        .await
        .expect("submit");
    assert!(resp.created);
    let id = resp.render.expect("render").id;
    let mut watch = farm
        .renders()
        .watch_render(authed(
            &farm.key_a,
            v1::WatchRenderRequest { id: id.clone() },
        ))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("first update");
    assert_eq!(first.state, v1::RenderState::Queued as i32);
    assert_eq!(
        first.tokens.get("first_name").map(String::as_str),
        Some("Priya")
    );

    let worker = register(&farm, "w1", false).await;
    let a = acquire(&farm, &worker, 4, 1000).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].template_version, 1);
    assert_eq!(
        a[0].tokens.get("first_name").map(String::as_str),
        Some("Priya")
    );
    let attempt = a[0].attempt.clone().expect("attempt");
    assert_eq!(attempt.lease_epoch, 1);

    // The worker fetches the bundle it was given.
    let mut fetched = Vec::new();
    let mut stream = farm
        .workers()
        .fetch_template(authed(
            TOKEN,
            v1::FetchTemplateRequest {
                worker_id: worker.clone(),
                attempt: Some(attempt.clone()),
            },
        ))
        .await
        .expect("fetch")
        .into_inner();
    while let Some(c) = stream.message().await.expect("chunk") {
        fetched.extend_from_slice(&c.data);
    }
    assert_eq!(
        template::inspect(&fetched, &template::Limits::default())
            .expect("archive")
            .digest,
        v.digest
    );

    let video = b"\x00\x00\x00\x18ftypisom-not-really-a-video".repeat(100);
    let up = upload(&farm, &worker, &attempt, v1::Artifact::Video, &video)
        .await
        .expect("upload video");
    assert_eq!(up.size_bytes, video.len() as u64);
    upload(
        &farm,
        &worker,
        &attempt,
        v1::Artifact::Poster,
        b"\xff\xd8jpeg",
    )
    .await
    .expect("upload poster");
    let done = complete(&farm, &worker, &attempt).await.expect("complete");
    assert!(!done.duplicate);
    // A resent Complete is acknowledged as a duplicate.
    assert!(
        complete(&farm, &worker, &attempt)
            .await
            .expect("resend")
            .duplicate
    );

    // The watch ends with the terminal state.
    let mut last = first;
    while let Some(r) = watch.message().await.expect("watch") {
        last = r;
    }
    assert_eq!(last.state, v1::RenderState::Succeeded as i32);
    let out = last.output.expect("output");
    assert_eq!(out.video_bytes, video.len() as u64);
    assert_eq!(out.stage_seconds.get("render"), Some(&1.5));
    assert!(
        last.started_unix_ms >= last.created_unix_ms
            && last.finished_unix_ms >= last.started_unix_ms
    );

    let mut dl = farm
        .renders()
        .download_render(authed(
            &farm.key_a,
            v1::DownloadRenderRequest {
                id: id.clone(),
                artifact: v1::Artifact::Video as i32,
            },
        ))
        .await
        .expect("download")
        .into_inner();
    let mut got = Vec::new();
    while let Some(c) = dl.message().await.expect("chunk") {
        got.extend_from_slice(&c.data);
    }
    assert_eq!(got, video);

    // The tenant's terminal events, resumable by sequence number.
    let mut events = farm
        .renders()
        .watch_render_events(authed(
            &farm.key_a,
            v1::WatchRenderEventsRequest {
                after_seq: 0,
                ..Default::default()
            },
        ))
        .await
        .expect("events")
        .into_inner();
    let event = events.message().await.expect("event").expect("one event");
    assert_eq!(
        event.render.as_ref().map(|r| r.id.as_str()),
        Some(id.as_str())
    );
    assert_eq!(
        event.render.as_ref().map(|r| r.state),
        Some(v1::RenderState::Succeeded as i32)
    );
    let mut other = farm
        .renders()
        .watch_render_events(authed(
            &farm.key_b,
            v1::WatchRenderEventsRequest {
                after_seq: 0,
                ..Default::default()
            },
        ))
        .await
        .expect("events")
        .into_inner();
    let nothing = tokio::time::timeout(Duration::from_millis(300), other.message()).await;
    assert!(
        nothing.is_err(),
        "another tenant sees no events: {nothing:?}"
    );

    // A signed, expiring link fetches the video without an API key; a changed one does not.
    let link = farm
        .renders()
        .create_download_url(authed(
            &farm.key_a,
            v1::CreateDownloadUrlRequest {
                id: id.clone(),
                artifact: v1::Artifact::Video as i32,
                ttl_s: 60,
            },
        ))
        .await
        .expect("link")
        .into_inner();
    let http = farm.running.http_addr.expect("http");
    let path = link
        .url
        .split_once(&http.to_string())
        .map(|(_, p)| p.to_owned())
        .expect("path");
    let answer = http_get_bytes(http, &path).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..40.min(answer.len())])
    );
    assert!(answer.ends_with(&video), "the body is the video");
    let tampered = path.replace("/video?", "/poster?");
    assert!(http_get_bytes(http, &tampered)
        .await
        .starts_with(b"HTTP/1.1 403"));
    let b_link = farm
        .renders()
        .create_download_url(authed(
            &farm.key_b,
            v1::CreateDownloadUrlRequest {
                id: id.clone(),
                artifact: 0,
                ttl_s: 0,
            },
        ))
        .await;
    assert_eq!(
        b_link.expect_err("cross-tenant link").code(),
        Code::NotFound
    );

    // Metrics saw it.
    let metrics_addr = farm.running.metrics_addr.expect("metrics");
    let text = http_get(metrics_addr, "/metrics").await;
    assert!(
        text.contains("reelfarm_renders_finished_total{state=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("reelfarm_submit_to_acquire_seconds_count{lane=\"realtime\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("reelfarm_store_writer_repairs{store=\"jobs\"} 0"),
        "{text}"
    );
    // Per tenant, by name; no label carries the render's id.
    for line in [
        "reelfarm_tenant_submitted_total{tenant=\"tenant-a\"} 1",
        "reelfarm_tenant_succeeded_total{tenant=\"tenant-a\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert!(!text.contains("tenant-b"), "{text}");
    assert!(!text.contains(&id), "a render id in the metrics: {text}");
    let build = format!(
        "reelfarm_build_info{{version=\"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build), "{text}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

pub async fn http_get_bytes(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    out
}

async fn idempotency(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let one = submit(&farm, &farm.key_a, "k1", spec("Priya"))
        .await
        .expect("first");
    let two = submit(&farm, &farm.key_a, "k1", spec("Priya"))
        .await
        .expect("second");
    assert!(one.created && !two.created);
    assert_eq!(one.render.expect("r").id, two.render.expect("r").id);
    let conflict = submit(&farm, &farm.key_a, "k1", spec("Rahul")).await;
    assert_eq!(conflict.expect_err("conflict").code(), Code::AlreadyExists);
    // A language tag renders in the template's language of its primary subtag.
    let tagged = submit(
        &farm,
        &farm.key_a,
        "k-tag",
        v1::RenderSpec {
            lang: "hi-IN".into(),
            ..spec("Priya")
        },
    )
    .await
    .expect("hi-IN");
    assert_eq!(tagged.render.expect("r").lang, "hi");
    // Another tenant may use the same key (after uploading its own template).
    push_demo(&farm, &farm.key_b, &[]).await;
    assert!(
        submit(&farm, &farm.key_b, "k1", spec("Rahul"))
            .await
            .expect("tenant b")
            .created
    );

    // Bulk stream: 30 requests, one malformed, one duplicate key.
    let mut reqs: Vec<v1::SubmitRenderRequest> = (0..30)
        .map(|i| v1::SubmitRenderRequest {
            idempotency_key: format!("bulk-{i}"),
            spec: Some(spec("Asha")),
        })
        .collect();
    reqs[7].spec.as_mut().expect("spec").lang = "xx".into();
    reqs[9].idempotency_key = "bulk-3".into();
    let results = farm
        .renders()
        .submit_renders(authed(&farm.key_a, futures::stream::iter(reqs)))
        .await
        .expect("bulk")
        .into_inner()
        .results;
    assert_eq!(results.len(), 30);
    match &results[7].outcome {
        Some(v1::submit_result::Outcome::Error(e)) => {
            assert_eq!(e.code, Code::InvalidArgument as i32);
            assert!(e.message.starts_with("spec.lang"), "{}", e.message);
        }
        other => panic!("request 7 should fail: {other:?}"),
    }
    let id_of = |i: usize| match &results[i].outcome {
        Some(v1::submit_result::Outcome::RenderId(id)) => id.clone(),
        other => panic!("request {i}: {other:?}"),
    };
    assert_eq!(id_of(9), id_of(3));
    assert!(!results[9].created && results[3].created);
    let listed = farm
        .renders()
        .list_renders(authed(
            &farm.key_a,
            v1::ListRendersRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.renders.len(), 2 + 28, "one render per distinct key");
}

async fn tenant_isolation(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let id = submit(&farm, &farm.key_a, "k", spec("Priya"))
        .await
        .expect("submit")
        .render
        .expect("r")
        .id;
    let b_get = get(&farm, &farm.key_b, &id).await;
    assert_eq!(b_get.expect_err("cross-tenant read").code(), Code::NotFound);
    let b_cancel = farm
        .renders()
        .cancel_render(authed(
            &farm.key_b,
            v1::CancelRenderRequest { id: id.clone() },
        ))
        .await;
    assert_eq!(
        b_cancel.expect_err("cross-tenant cancel").code(),
        Code::NotFound
    );
    assert_eq!(
        get(&farm, &farm.key_a, &id)
            .await
            .expect("still there")
            .state,
        v1::RenderState::Queued as i32
    );
    let b_tpl = farm
        .templates()
        .get_template(authed(
            &farm.key_b,
            v1::GetTemplateRequest {
                r#ref: "order-delivered".into(),
            },
        ))
        .await;
    assert_eq!(
        b_tpl.expect_err("cross-tenant template").code(),
        Code::NotFound
    );
    // B cannot render A's template either.
    assert_invalid(
        submit(&farm, &farm.key_b, "k", spec("Priya")).await,
        "spec.template",
    );
    let listed = farm
        .renders()
        .list_renders(authed(&farm.key_b, v1::ListRendersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.renders.is_empty());
    // No or wrong credentials.
    let anon = farm
        .renders()
        .get_render(Request::new(v1::GetRenderRequest { id: id.clone() }))
        .await;
    assert_eq!(anon.expect_err("anonymous").code(), Code::Unauthenticated);
    let wrong = get(&farm, "rf_0000", &id).await;
    assert_eq!(wrong.expect_err("wrong key").code(), Code::Unauthenticated);
    let tenant_as_worker = farm
        .workers()
        .register(authed(
            &farm.key_a,
            v1::RegisterRequest {
                name: "x".into(),
                boot_id: "y".into(),
                capabilities: None,
            },
        ))
        .await;
    assert_eq!(
        tenant_as_worker
            .expect_err("API key is not a join token")
            .code(),
        Code::Unauthenticated
    );
}

async fn malformed_requests(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let k = &farm.key_a;
    assert_invalid(submit(&farm, k, "", spec("Priya")).await, "idempotency_key");
    assert_invalid(
        submit(&farm, k, "has space", spec("Priya")).await,
        "idempotency_key",
    );
    assert_invalid(
        farm.renders()
            .submit_render(authed(
                k,
                v1::SubmitRenderRequest {
                    idempotency_key: "x".into(),
                    spec: None,
                },
            ))
            .await,
        "spec",
    );
    let mut s = spec("Priya");
    s.tokens.insert("nickname".into(), "P".into());
    assert_invalid(submit(&farm, k, "a", s).await, "spec.tokens.nickname");
    let mut s = spec("Priya");
    s.tokens.insert("first_name".into(), "x".repeat(300));
    assert_invalid(submit(&farm, k, "b", s).await, "spec.tokens.first_name");
    let mut s = spec("Priya");
    s.lang = "xx".into();
    assert_invalid(submit(&farm, k, "c", s).await, "spec.lang");
    let mut s = spec("Priya");
    s.template = "Order Delivered".into();
    assert_invalid(submit(&farm, k, "d", s).await, "spec.template");
    let mut s = spec("Priya");
    s.template = "order-delivered@9".into();
    assert_invalid(submit(&farm, k, "e", s).await, "spec.template");
    let mut s = spec("Priya");
    s.deadline_s = 1_000_000;
    assert_invalid(submit(&farm, k, "f", s).await, "spec.deadline_s");
    let mut s = spec("Priya");
    s.preset = 42;
    assert_invalid(submit(&farm, k, "g", s).await, "spec.preset");
    assert_invalid(get(&farm, k, "").await, "id");
    assert_eq!(
        get(&farm, k, "no-such-id")
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
    // A broken bundle names its problem.
    let msgs = vec![
        v1::UploadTemplateRequest {
            part: Some(v1::upload_template_request::Part::Header(
                v1::UploadTemplateHeader::default(),
            )),
        },
        v1::UploadTemplateRequest {
            part: Some(v1::upload_template_request::Part::Chunk(
                b"not a tar at all".to_vec(),
            )),
        },
    ];
    assert_invalid(
        farm.templates()
            .upload_template(authed(k, futures::stream::iter(msgs)))
            .await,
        "archive",
    );
    // Nothing malformed was stored.
    let listed = farm
        .renders()
        .list_renders(authed(k, v1::ListRendersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.renders.is_empty());
    // Worker calls are checked too.
    let worker = register(&farm, "w", true).await;
    assert_invalid(
        farm.workers()
            .acquire(authed(
                TOKEN,
                v1::AcquireRequest {
                    worker_id: worker.clone(),
                    max_assignments: 0,
                    wait_ms: 0,
                },
            ))
            .await,
        "max_assignments",
    );
    assert_invalid(
        farm.workers()
            .fail(authed(
                TOKEN,
                v1::FailRequest {
                    worker_id: worker,
                    attempt: Some(v1::AttemptRef {
                        render_id: "r".into(),
                        attempt_id: "a".into(),
                        lease_epoch: 1,
                    }),
                    class: 0,
                    message: String::new(),
                },
            ))
            .await,
        "class",
    );
}

async fn cancel_reaches_worker_and_fences_hold(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let id = submit(&farm, &farm.key_a, "k", spec("Priya"))
        .await
        .expect("submit")
        .render
        .expect("r")
        .id;
    let worker = register(&farm, "w", false).await;
    let a = acquire(&farm, &worker, 1, 1000).await;
    let attempt = a[0].attempt.clone().expect("attempt");
    let cancelled = farm
        .renders()
        .cancel_render(authed(
            &farm.key_a,
            v1::CancelRenderRequest { id: id.clone() },
        ))
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.state, v1::RenderState::Cancelled as i32);
    let beat = farm
        .workers()
        .heartbeat(authed(
            TOKEN,
            v1::HeartbeatRequest {
                worker_id: worker.clone(),
                running: vec![v1::AttemptProgress {
                    attempt: Some(attempt.clone()),
                    progress: 0.5,
                    stage: "render".into(),
                }],
            },
        ))
        .await
        .expect("heartbeat")
        .into_inner();
    assert_eq!(beat.stop, vec![attempt.clone()]);
    assert!(beat.renewed.is_empty());
    // Late writes from the cancelled attempt are refused.
    let up = upload(&farm, &worker, &attempt, v1::Artifact::Video, b"late").await;
    assert_eq!(
        up.expect_err("stale upload").code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        complete(&farm, &worker, &attempt)
            .await
            .expect_err("stale complete")
            .code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        get(&farm, &farm.key_a, &id).await.expect("get").state,
        v1::RenderState::Cancelled as i32
    );

    // A render whose input is invalid fails for good; the tenant's counters show both ends.
    let bad = submit(&farm, &farm.key_a, "k-bad", spec("Asha"))
        .await
        .expect("submit")
        .render
        .expect("r")
        .id;
    let a = acquire(&farm, &worker, 1, 1000).await;
    farm.workers()
        .fail(authed(
            TOKEN,
            v1::FailRequest {
                worker_id: worker.clone(),
                attempt: a[0].attempt.clone(),
                class: v1::FailureClass::InvalidInput as i32,
                message: "bad input".into(),
            },
        ))
        .await
        .expect("fail");
    assert_eq!(
        get(&farm, &farm.key_a, &bad).await.expect("get").state,
        v1::RenderState::Failed as i32
    );
    let text = http_get(farm.running.metrics_addr.expect("metrics"), "/metrics").await;
    for line in [
        "reelfarm_tenant_submitted_total{tenant=\"tenant-a\"} 2",
        "reelfarm_tenant_cancelled_total{tenant=\"tenant-a\"} 1",
        "reelfarm_tenant_failed_total{tenant=\"tenant-a\"} 1",
        "reelfarm_renders_finished_total{state=\"failed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert!(!text.contains("reelfarm_tenant_succeeded_total{"), "{text}");
    for render in [&id, &bad] {
        assert!(
            !text.contains(render.as_str()),
            "a render id in the metrics: {text}"
        );
    }
}

async fn priority_and_backpressure(backend: Backend) {
    let settings = Settings {
        max_queued: [3, 100],
        ..Settings::default()
    };
    let farm = TestFarm::start(backend, Clock::system(), settings).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let mut bulk = spec("Bulk");
    bulk.lane = v1::Lane::Bulk as i32;
    let bulk_id = submit(&farm, &farm.key_a, "bulk", bulk)
        .await
        .expect("bulk")
        .render
        .expect("r")
        .id;
    let mut rt_ids = Vec::new();
    for i in 0..3 {
        rt_ids.push(
            submit(&farm, &farm.key_a, &format!("rt-{i}"), spec("Now"))
                .await
                .expect("realtime")
                .render
                .expect("r")
                .id,
        );
    }
    let full = submit(&farm, &farm.key_a, "rt-3", spec("Now"))
        .await
        .expect_err("lane full");
    assert_eq!(full.code(), Code::ResourceExhausted);
    assert!(
        full.metadata().get("retry-after-ms").is_some(),
        "retry advice"
    );
    let worker = register(&farm, "w", true).await;
    let got: Vec<String> = acquire(&farm, &worker, 3, 1000)
        .await
        .iter()
        .map(|a| a.attempt.clone().expect("a").render_id)
        .collect();
    assert_eq!(got, rt_ids, "real-time work first, in order");
    let next = acquire(&farm, &worker, 3, 1000).await;
    assert_eq!(next[0].attempt.clone().expect("a").render_id, bulk_id);
}

async fn lease_expiry_with_manual_time(backend: Backend) {
    let clock = Clock::manual(1_700_000_000_000);
    let settings = Settings {
        lease: LeasePolicy {
            heartbeat_ms: 5_000,
            lease_ttl_ms: 30_000,
        },
        ..Settings::default()
    };
    let farm = TestFarm::start(backend, clock.clone(), settings).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let id = submit(&farm, &farm.key_a, "k", spec("Priya"))
        .await
        .expect("submit")
        .render
        .expect("r")
        .id;
    let w1 = register(&farm, "w1", true).await;
    let first = acquire(&farm, &w1, 1, 0).await[0]
        .attempt
        .clone()
        .expect("attempt");
    // The first attempt uploads its video, then goes silent.
    upload(&farm, &w1, &first, v1::Artifact::Video, b"first video")
        .await
        .expect("upload");
    let tenant = farm
        .store
        .job(None, &id)
        .await
        .expect("job")
        .expect("exists")
        .tenant_id;
    let attempts = farm
        .dir
        .path()
        .join(format!("blobs/renders/{tenant}/{id}/attempts"));
    let lost = attempts.join(&first.attempt_id).join("video.mp4");
    assert!(lost.exists(), "{}", lost.display());

    // Past the lease but inside the start-up grace (lease + heartbeat): nothing expires.
    clock.advance(31_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&farm, &farm.key_a, &id).await.expect("get").state,
        v1::RenderState::Running as i32
    );

    // Past the grace: the sweep hands the render back to the queue.
    clock.advance(5_000);
    let mut state = 0;
    for _ in 0..100 {
        state = get(&farm, &farm.key_a, &id).await.expect("get").state;
        if state == v1::RenderState::Queued as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        state,
        v1::RenderState::Queued as i32,
        "expired lease requeued"
    );
    // Retries back off: at most 2 s (with jitter) before the first retry.
    let waiting = get(&farm, &farm.key_a, &id).await.expect("get");
    assert!(
        waiting.not_before_unix_ms <= clock.now_ms() + 2_000,
        "{waiting:?}"
    );
    assert_eq!(
        waiting.failure.map(|f| f.class),
        Some(v1::FailureClass::Infrastructure as i32)
    );
    clock.advance(2_001);
    let w2 = register(&farm, "w2", true).await;
    let second = acquire(&farm, &w2, 1, 0).await[0]
        .attempt
        .clone()
        .expect("attempt");
    assert_eq!(second.lease_epoch, first.lease_epoch + 1);
    assert_ne!(second.attempt_id, first.attempt_id);
    // The first worker's late completion is refused; the second one's commits.
    assert_eq!(
        complete(&farm, &w1, &first)
            .await
            .expect_err("stale")
            .code(),
        Code::FailedPrecondition
    );
    upload(&farm, &w2, &second, v1::Artifact::Video, b"second video")
        .await
        .expect("upload");
    complete(&farm, &w2, &second).await.expect("complete");
    let r = get(&farm, &farm.key_a, &id).await.expect("get");
    assert_eq!(r.state, v1::RenderState::Succeeded as i32);
    assert_eq!(r.attempts, 2);
    // The losing attempt's file is deleted once the render has finished; the output stays.
    for _ in 0..100 {
        if !lost.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!lost.exists(), "the losing attempt's video is deleted");
    let kept = attempts.join(&second.attempt_id).join("video.mp4");
    assert_eq!(std::fs::read(&kept).expect("output"), b"second video");
    let job = farm
        .store
        .job(None, &id)
        .await
        .expect("job")
        .expect("exists");
    assert_eq!(
        job.output.expect("output").attempt_id,
        second.attempt_id,
        "one canonical attempt"
    );
    assert_eq!(job.infra_failures, 1);
    let outbox = farm.store.outbox_after(None, 0, 100).await.expect("outbox");
    assert_eq!(
        outbox.iter().filter(|e| e.job_id == id).count(),
        1,
        "committed once"
    );
}

/// Health checking answers SERVING for every service, and TLS works by configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_tls() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let farm = TestFarm::start(Backend::Sqlite, Clock::system(), Settings::default()).await;
    let mut health = HealthClient::new(farm.channel.clone());
    for service in [
        "reelfarm.v1.RenderService",
        "reelfarm.v1.TemplateService",
        "reelfarm.v1.WorkerService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }

    // A TLS coordinator (test certificate for 127.0.0.1, private CA).
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/tests/it/tls");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&Backend::Sqlite, dir.path()).await;
    let (_, key) = coordinator::admin::create_tenant(&store, "t", 10, 0)
        .await
        .expect("tenant");
    let mut config = CoordinatorConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("blobs").display().to_string(),
        TOKEN,
    );
    config.tls = Some((tls.join("server.pem"), tls.join("server.key")));
    let running = coordinator::start(config, store)
        .await
        .expect("TLS coordinator");
    let ca =
        tonic::transport::Certificate::from_pem(std::fs::read(tls.join("ca.pem")).expect("ca"));
    let channel = Channel::from_shared(format!("https://{}", running.addr))
        .expect("url")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(ca)
                .domain_name("127.0.0.1"),
        )
        .expect("tls config")
        .connect()
        .await
        .expect("TLS connect");
    let listed = RenderServiceClient::new(channel)
        .list_renders(authed(&key, v1::ListRendersRequest::default()))
        .await
        .expect("call over TLS");
    assert!(listed.into_inner().renders.is_empty());
    // Plain HTTP/2 to a TLS port fails.
    let plain = Channel::from_shared(format!("http://{}", running.addr))
        .expect("url")
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(RenderServiceClient::new(ch)
            .list_renders(authed(&key, v1::ListRendersRequest::default()))
            .await
            .is_err());
    }
    running.shutdown().await.expect("shutdown");
}

/// Metadata comes back as given; callback URLs are refused where the farm delivers none, or
/// when they point at a private address, and otherwise stored; the farm's service watches the
/// callback renders of every tenant.
async fn metadata_and_callbacks(backend: Backend) {
    // Without a deliverer (the default), a callback is refused, naming the field.
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let with = |url: &str| v1::RenderSpec {
        callback_url: url.to_owned(),
        ..spec("Asha")
    };
    assert_invalid(
        submit(
            &farm,
            &farm.key_a,
            "cb-refused",
            with("https://hooks.example.com/x"),
        )
        .await,
        "spec.callback_url",
    );
    farm.running.shutdown().await.expect("shutdown");

    let settings = Settings {
        callbacks: coordinator::Callbacks::Public,
        ..Settings::default()
    };
    let farm = TestFarm::start(backend, Clock::system(), settings).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("ftp://hooks.example.com/x", "scheme"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("not a url", "invalid"),
    ] {
        let r = submit(&farm, &farm.key_a, &format!("cb-{why}"), with(url)).await;
        assert_invalid(r, "spec.callback_url");
    }
    let long = format!("https://hooks.example.com/{}", "a".repeat(2100));
    assert_invalid(
        submit(&farm, &farm.key_a, "cb-long", with(&long)).await,
        "spec.callback_url",
    );

    // Metadata: plain keys, few entries, bounded values.
    let meta = |pairs: &[(&str, &str)]| v1::RenderSpec {
        metadata: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..spec("Asha")
    };
    assert_invalid(
        submit(&farm, &farm.key_a, "m-key", meta(&[("order id", "1")])).await,
        "spec.metadata.orderid",
    );
    let too_long = "x".repeat(501);
    assert_invalid(
        submit(&farm, &farm.key_a, "m-long", meta(&[("note", &too_long)])).await,
        "spec.metadata.note",
    );
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_invalid(
        submit(&farm, &farm.key_a, "m-many", meta(&many)).await,
        "spec.metadata",
    );

    // A stored render keeps both, and an unchanged resubmission is the same render while a
    // changed label is another request.
    let labelled = v1::RenderSpec {
        callback_url: "https://93.184.215.14/hooks/render".into(),
        ..meta(&[("order_id", "4711"), ("note", "héllo, wörld")])
    };
    let first = submit(&farm, &farm.key_a, "labelled", labelled.clone())
        .await
        .expect("submit");
    let render = first.render.expect("render");
    assert_eq!(
        render.metadata.get("order_id").map(String::as_str),
        Some("4711")
    );
    assert_eq!(render.callback_url, "https://93.184.215.14/hooks/render");
    let got = get(&farm, &farm.key_a, &render.id).await.expect("get");
    assert_eq!(got.metadata, labelled.metadata);
    assert_eq!(got.callback_url, labelled.callback_url);
    let again = submit(&farm, &farm.key_a, "labelled", labelled.clone())
        .await
        .expect("resubmit");
    assert!(!again.created);
    let changed = v1::RenderSpec {
        metadata: [("order_id".to_owned(), "4712".to_owned())].into(),
        ..labelled.clone()
    };
    let conflict = submit(&farm, &farm.key_a, "labelled", changed).await;
    assert_eq!(conflict.expect_err("conflict").code(), Code::AlreadyExists);
    let plain = submit(&farm, &farm.key_b, "plain", spec("Ravi")).await;
    assert!(plain.is_err(), "tenant b has no template");
    push_demo(&farm, &farm.key_b, &[]).await;
    let plain = submit(&farm, &farm.key_b, "plain", spec("Ravi"))
        .await
        .expect("plain")
        .render
        .expect("render");

    // Both end; the service's callback stream carries only the render with a callback, and
    // names its tenant.
    for (key, id) in [(&farm.key_a, &render.id), (&farm.key_b, &plain.id)] {
        farm.renders()
            .cancel_render(authed(key, v1::CancelRenderRequest { id: id.clone() }))
            .await
            .expect("cancel");
    }
    let watch = farm
        .renders()
        .watch_render_events(authed(
            SERVICE_TOKEN,
            v1::WatchRenderEventsRequest {
                after_seq: 0,
                callbacks_only: true,
            },
        ))
        .await
        .expect("service watches callbacks");
    let mut stream = watch.into_inner();
    let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event in time")
        .expect("stream")
        .expect("event");
    assert_eq!(event.tenant, "tenant-a");
    let r = event.render.expect("render");
    assert_eq!(r.id, render.id);
    assert_eq!(r.state, v1::RenderState::Cancelled as i32);
    assert_eq!(r.metadata, labelled.metadata);
    let more = tokio::time::timeout(Duration::from_millis(1500), stream.message()).await;
    assert!(more.is_err(), "no other event: {more:?}");
    // Without `callbacks_only`, the service must name a tenant.
    let all = farm
        .renders()
        .watch_render_events(authed(
            SERVICE_TOKEN,
            v1::WatchRenderEventsRequest::default(),
        ))
        .await;
    assert_invalid(all, "callbacks_only");
    // A tenant's own stream still carries its renders, callback or not, with its name.
    let mut own = farm
        .renders()
        .watch_render_events(authed(&farm.key_b, v1::WatchRenderEventsRequest::default()))
        .await
        .expect("tenant watches")
        .into_inner();
    let event = tokio::time::timeout(Duration::from_secs(10), own.message())
        .await
        .expect("in time")
        .expect("stream")
        .expect("event");
    assert_eq!(event.tenant, "tenant-b");
    assert_eq!(event.render.expect("render").id, plain.id);
    // Open streams would hold the graceful shutdown.
    drop((stream, own));
    farm.running.shutdown().await.expect("shutdown");
}

/// A key revoked in the store (by another process, as `reelfarm tenant key revoke` does) is
/// refused by the very next call; the tenant's other keys keep working.
async fn revoked_key_is_refused_at_once(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    let tenant = farm
        .store
        .tenant_by_name("tenant-a")
        .await
        .expect("lookup")
        .expect("tenant");
    let second = coordinator::admin::issue_key(&farm.store, &tenant, 1)
        .await
        .expect("issue");
    let list = |key: String| {
        let farm = &farm;
        async move {
            farm.renders()
                .list_renders(authed(&key, v1::ListRendersRequest::default()))
                .await
        }
    };
    list(second.clone()).await.expect("the new key works");
    let keys = farm.store.api_keys(&tenant.id).await.expect("keys");
    assert_eq!(keys.len(), 2);
    let id = coordinator::admin::key_id(&second).expect("id");
    assert!(keys.iter().any(|k| k.id == id), "{keys:?}");

    // Another tenant cannot revoke it; a malformed id is refused naming the problem.
    let other = farm
        .store
        .tenant_by_name("tenant-b")
        .await
        .expect("lookup")
        .expect("tenant");
    let wrong = coordinator::admin::revoke_key(&farm.store, &other, &id).await;
    assert!(
        matches!(wrong, Err(coordinator::ApiError::NotFound(_))),
        "{wrong:?}"
    );
    let bad = coordinator::admin::revoke_key(&farm.store, &tenant, "zz").await;
    assert!(
        matches!(bad, Err(coordinator::ApiError::InvalidArgument { .. })),
        "{bad:?}"
    );

    let revoked = coordinator::admin::revoke_key(&farm.store, &tenant, &second)
        .await
        .expect("revoke by the key itself");
    assert_eq!(revoked, id);
    let refused = list(second.clone()).await;
    assert_eq!(refused.expect_err("refused").code(), Code::Unauthenticated);
    list(farm.key_a.clone())
        .await
        .expect("the first key still works");
    assert_eq!(
        farm.store.api_keys(&tenant.id).await.expect("keys").len(),
        1
    );
    let again = coordinator::admin::revoke_key(&farm.store, &tenant, &id).await;
    assert!(
        matches!(again, Err(coordinator::ApiError::NotFound(_))),
        "{again:?}"
    );
    farm.running.shutdown().await.expect("shutdown");
}

macro_rules! api_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lifecycle_and_download() {
                super::lifecycle_and_download($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotency() {
                super::idempotency($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tenant_isolation() {
                super::tenant_isolation($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn malformed_requests() {
                super::malformed_requests($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cancel_reaches_worker_and_fences_hold() {
                super::cancel_reaches_worker_and_fences_hold($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn priority_and_backpressure() {
                super::priority_and_backpressure($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lease_expiry_with_manual_time() {
                super::lease_expiry_with_manual_time($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn metadata_and_callbacks() {
                super::metadata_and_callbacks($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn revoked_key_is_refused_at_once() {
                super::revoked_key_is_refused_at_once($make).await
            }
        }
    };
}

api_tests!(sqlite, Backend::Sqlite);
api_tests!(postgres, Backend::Postgres);

// ---------------------------------------------------------------------------------------------
// Bytes that are not the contract: not UTF-8, oversized, chunks over 1 MiB

/// `SubmitRenderRequest` with its string fields as bytes, to send what a client must not.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSubmit {
    #[prost(bytes = "vec", tag = "1")]
    idempotency_key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    spec: Option<RawSpec>,
}

/// `RenderSpec` with token values as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSpec {
    #[prost(string, tag = "1")]
    template: String,
    #[prost(string, tag = "2")]
    lang: String,
    #[prost(btree_map = "string, bytes", tag = "3")]
    tokens: std::collections::BTreeMap<String, Vec<u8>>,
}

async fn submit_raw(
    farm: &TestFarm,
    raw: RawSubmit,
) -> Result<v1::SubmitRenderResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(farm.channel.clone());
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/reelfarm.v1.RenderService/SubmitRender",
    );
    let codec = tonic_prost::ProstCodec::<RawSubmit, v1::SubmitRenderResponse>::default();
    grpc.unary(authed(&farm.key_a, raw), path, codec)
        .await
        .map(|r| r.into_inner())
}

fn raw(key: &[u8], first_name: &[u8]) -> RawSubmit {
    RawSubmit {
        idempotency_key: key.to_vec(),
        spec: Some(RawSpec {
            template: "order-delivered".into(),
            lang: "en".into(),
            tokens: [
                ("first_name".to_owned(), first_name.to_vec()),
                ("product".to_owned(), b"Kettle".to_vec()),
                ("offer_code".to_owned(), b"SAVE10".to_vec()),
            ]
            .into(),
        }),
    }
}

fn assert_code(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needle: &str) {
    match r {
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(
                s.message().contains(needle),
                "`{}` should say {needle}",
                s.message()
            );
        }
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_errors_name_the_field_or_the_limit() {
    let farm = TestFarm::start(Backend::Sqlite, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;

    // The well-formed raw request works: the test speaks the contract.
    submit_raw(&farm, raw(b"ok-1", b"Priya"))
        .await
        .expect("valid raw request");
    // Not UTF-8: INVALID_ARGUMENT naming the field (clients retry INTERNAL).
    assert_code(
        submit_raw(&farm, raw(b"bad-\xff\xfe", b"Priya")).await,
        Code::InvalidArgument,
        "SubmitRenderRequest.idempotency_key",
    );
    assert_code(
        submit_raw(&farm, raw(b"ok-2", b"Pri\xc3ya")).await,
        Code::InvalidArgument,
        "RenderSpec.tokens",
    );

    // A unary message over RenderService's 64 MiB: RESOURCE_EXHAUSTED with the limit.
    let big = vec![b'a'; (64 << 20) + 1];
    assert_code(
        submit_raw(&farm, raw(b"big", &big)).await,
        Code::ResourceExhausted,
        &format!("at most {} bytes", 64 << 20),
    );

    // UploadTemplate: chunks of at most 1 MiB; a 5 MiB message is over the service's limit.
    let upload = |chunk: Vec<u8>| {
        let msgs = vec![
            v1::UploadTemplateRequest {
                part: Some(v1::upload_template_request::Part::Header(
                    v1::UploadTemplateHeader::default(),
                )),
            },
            v1::UploadTemplateRequest {
                part: Some(v1::upload_template_request::Part::Chunk(chunk)),
            },
        ];
        let mut c = farm.templates();
        let key = farm.key_a.clone();
        async move {
            c.upload_template(authed(&key, futures::stream::iter(msgs)))
                .await
        }
    };
    assert_code(
        upload(vec![0; 5 << 20]).await,
        Code::ResourceExhausted,
        &format!("at most {} bytes", (1 << 20) + (64 << 10)),
    );
    assert_invalid(upload(vec![0; (1 << 20) + 1]).await, "chunk");

    // Nothing of it was stored; the earlier valid render is still there.
    let listed = farm
        .renders()
        .list_renders(authed(&farm.key_a, v1::ListRendersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.renders.len(), 1);
}
