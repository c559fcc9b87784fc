//! The HTTP/JSON render API end to end on loopback: submission with idempotency and conflicts,
//! problem documents naming the field, authentication, get, list paging, cancel, backpressure,
//! signed links on a succeeded render, and the OpenAPI document (served, and committed without
//! drift).

use std::path::Path;

use coordinator::rest::problem::PROBLEM_JSON;
use coordinator::{Callbacks, Clock, Settings};
use proto::v1;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::api::{
    acquire, authed, complete, push_demo, register, submit, Backend, TestFarm, TOKEN,
};

/// A tenant's HTTP client for a test farm.
struct Http {
    base: String,
    client: reqwest::Client,
}

/// What an HTTP call answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    /// The problem document of an error answer, checked for its media type and members.
    fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.content_type, PROBLEM_JSON, "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        for member in ["type", "title", "detail"] {
            assert!(self.body[member].is_string(), "{member} in {self:?}");
        }
        &self.body
    }

    /// The problem of a 400, which must name `field`.
    fn invalid(&self, field: &str) {
        let p = self.problem(400);
        assert_eq!(
            p["type"], "urn:reelfarm:problem:invalid-argument",
            "{self:?}"
        );
        assert_eq!(p["field"], field, "{self:?}");
    }
}

impl Http {
    fn new(farm: &TestFarm) -> Http {
        let addr = farm.running.http_addr.expect("the test farm serves HTTP");
        Http {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("HTTP call");
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            headers,
            body,
        }
    }

    async fn post(&self, key: Option<&str>, path: &str, body: &Value) -> Answer {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        self.send(req).await
    }

    async fn get(&self, key: Option<&str>, path: &str) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        self.send(req).await
    }
}

fn body(name: &str) -> Value {
    json!({
        "template": "order-delivered",
        "lang": "en-IN",
        "tokens": {"first_name": name, "product": "Kettle", "offer_code": "SAVE10"},
        "preset": "720p",
        "metadata": {"order_id": "4711"},
    })
}

async fn sqlite_farm(settings: Settings) -> (TestFarm, Http) {
    let farm = TestFarm::start(Backend::Sqlite, Clock::system(), settings).await;
    let http = Http::new(&farm);
    (farm, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_is_idempotent_and_conflicts_are_409() {
    let (farm, http) = sqlite_farm(Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let key = Some(farm.key_a.as_str());

    let mut first = body("Priya");
    first["idempotency_key"] = json!("order-1");
    let created = http.post(key, "/v1/renders", &first).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.content_type, "application/json");
    let r = &created.body;
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.headers[LOCATION].to_str().ok(),
        Some(format!("/v1/renders/{id}").as_str())
    );
    assert_eq!(r["state"], "queued");
    assert_eq!(r["template"], "order-delivered");
    assert_eq!(r["template_version"], 1);
    assert_eq!(r["lang"], "en", "the template's language for en-IN");
    assert_eq!(r["preset"], "720p");
    assert_eq!(r["lane"], "realtime");
    assert_eq!(r["metadata"], json!({"order_id": "4711"}));
    assert_eq!(r["callback_url"], Value::Null);
    assert_eq!(r["finished_at"], Value::Null);
    assert_eq!(r["video_url"], Value::Null);
    assert!(
        r.get("tokens").is_none(),
        "a submission answers without tokens"
    );
    let created_at = r["created_at"].as_str().expect("created_at");
    assert!(
        created_at.len() == 24 && created_at.ends_with('Z'),
        "RFC 3339 in UTC: {created_at}"
    );

    // The same request again, the key in the header this time: the same render, 200.
    let again = http
        .send(
            http.client
                .post(format!("{}/v1/renders", http.base))
                .bearer_auth(&farm.key_a)
                .header("Idempotency-Key", "order-1")
                .json(&body("Priya")),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["id"], id.as_str());

    // gRPC and HTTP share the key space and the request hash.
    let mut grpc_spec = crate::api::spec("Priya");
    grpc_spec.lang = "en-IN".into();
    // The JSON body named no lane: the wire's unset value, as the request hash sees it.
    grpc_spec.lane = v1::Lane::Unspecified as i32;
    grpc_spec.metadata = [("order_id".to_owned(), "4711".to_owned())].into();
    let over_grpc = submit(&farm, &farm.key_a, "order-1", grpc_spec)
        .await
        .expect("gRPC resubmission");
    assert!(!over_grpc.created);
    assert_eq!(over_grpc.render.expect("render").id, id);

    // The same key with another request: 409.
    let mut other = body("Rahul");
    other["idempotency_key"] = json!("order-1");
    let conflict = http.post(key, "/v1/renders", &other).await;
    let p = conflict.problem(409);
    assert_eq!(p["type"], "urn:reelfarm:problem:conflict");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains(&id)), "{p}");

    // Body and header disagree: 400 naming the key.
    let disagree = http
        .send(
            http.client
                .post(format!("{}/v1/renders", http.base))
                .bearer_auth(&farm.key_a)
                .header("Idempotency-Key", "order-2")
                .json(&first),
        )
        .await;
    disagree.invalid("idempotency_key");
    // No key at all.
    http.post(key, "/v1/renders", &body("Priya"))
        .await
        .invalid("idempotency_key");
    farm.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_problems_name_the_field() {
    let (farm, http) = sqlite_farm(Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let key = Some(farm.key_a.as_str());
    let keyed = |mut b: Value, edit: &dyn Fn(&mut Value)| {
        b["idempotency_key"] = json!("v-1");
        edit(&mut b);
        b
    };

    let cases: Vec<(Value, &str)> = vec![
        (
            keyed(body("Priya"), &|b| {
                b["tokens"]["first_name"] = json!("x".repeat(300))
            }),
            "tokens.first_name",
        ),
        (
            keyed(body("Priya"), &|b| b["tokens"]["first_name"] = json!(7)),
            "tokens.first_name",
        ),
        (
            keyed(body("Priya"), &|b| b["tokens"]["shoe_size"] = json!("9")),
            "tokens.shoe_size",
        ),
        (
            keyed(body("Priya"), &|b| {
                b["template"] = json!("no-such-template")
            }),
            "template",
        ),
        (
            keyed(body("Priya"), &|b| b["template"] = json!("Bad Name")),
            "template",
        ),
        (
            keyed(body("Priya"), &|b| b["preset"] = json!("4k")),
            "preset",
        ),
        (keyed(body("Priya"), &|b| b["lane"] = json!("fast")), "lane"),
        (keyed(body("Priya"), &|b| b["lang"] = json!("xx")), "lang"),
        (
            keyed(body("Priya"), &|b| b["deadline_s"] = json!(100_000)),
            "deadline_s",
        ),
        (
            keyed(body("Priya"), &|b| b["deadline_s"] = json!("soon")),
            "deadline_s",
        ),
        (
            keyed(body("Priya"), &|b| b["colour"] = json!("red")),
            "colour",
        ),
        (
            keyed(body("Priya"), &|b| {
                b.as_object_mut().map(|o| o.remove("template"));
            }),
            "template",
        ),
        (
            keyed(body("Priya"), &|b| {
                b["idempotency_key"] = json!("has space")
            }),
            "idempotency_key",
        ),
        (
            keyed(body("Priya"), &|b| {
                b["metadata"]["order_id"] = json!("x".repeat(501))
            }),
            "metadata.order_id",
        ),
        // This farm has no deliverer for callbacks.
        (
            keyed(body("Priya"), &|b| {
                b["callback_url"] = json!("https://example.com/hook")
            }),
            "callback_url",
        ),
    ];
    for (request, field) in cases {
        let answer = http.post(key, "/v1/renders", &request).await;
        answer.invalid(field);
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(field)),
            "{answer:?}"
        );
    }

    // Not JSON at all: a 400 without a field.
    let broken = http
        .send(
            http.client
                .post(format!("{}/v1/renders", http.base))
                .bearer_auth(&farm.key_a)
                .header(CONTENT_TYPE, "application/json")
                .body("{\"template\": "),
        )
        .await;
    let p = broken.problem(400);
    assert_eq!(p["type"], "urn:reelfarm:problem:invalid-argument");
    // Declared as something else: 415.
    let text = http
        .send(
            http.client
                .post(format!("{}/v1/renders", http.base))
                .bearer_auth(&farm.key_a)
                .header(CONTENT_TYPE, "text/plain")
                .body("{}"),
        )
        .await;
    text.problem(415);
    // Over 1 MiB: 413.
    let mut huge = keyed(body("Priya"), &|_| {});
    huge["metadata"]["blob"] = json!("x".repeat(1 << 20));
    http.post(key, "/v1/renders", &huge).await.problem(413);
    farm.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_keys_are_401() {
    let (farm, http) = sqlite_farm(Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let mut b = body("Priya");
    b["idempotency_key"] = json!("auth-1");
    for key in [None, Some("rf_0000"), Some("")] {
        let answer = http.post(key, "/v1/renders", &b).await;
        let p = answer.problem(401);
        assert_eq!(p["type"], "urn:reelfarm:problem:unauthenticated");
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer");
        http.get(key, "/v1/renders").await.problem(401);
    }
    // Authentication comes before the body is read.
    let answer = http
        .send(
            http.client
                .post(format!("{}/v1/renders", http.base))
                .body("not json"),
        )
        .await;
    answer.problem(401);
    // Another tenant's render is not found.
    let created = http.post(Some(&farm.key_a), "/v1/renders", &b).await;
    let id = created.body["id"].as_str().expect("id");
    let p = http
        .get(Some(&farm.key_b), &format!("/v1/renders/{id}"))
        .await;
    assert_eq!(p.problem(404)["type"], "urn:reelfarm:problem:not-found");
    farm.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_list_pages_and_cancel() {
    let (farm, http) = sqlite_farm(Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let key = Some(farm.key_a.as_str());
    let mut ids = Vec::new();
    for (i, name) in ["Asha", "Bela", "Chitra"].into_iter().enumerate() {
        let mut b = body(name);
        b["idempotency_key"] = json!(format!("list-{i}"));
        let answer = http.post(key, "/v1/renders", &b).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        ids.push(answer.body["id"].as_str().expect("id").to_owned());
    }

    let one = http.get(key, &format!("/v1/renders/{}", ids[0])).await;
    assert_eq!(one.status, StatusCode::OK, "{one:?}");
    assert_eq!(one.body["tokens"]["first_name"], "Asha");
    assert_eq!(one.body["metadata"]["order_id"], "4711");
    http.get(key, "/v1/renders/no-such-render")
        .await
        .problem(404);

    // Newest first, two per page.
    let page1 = http.get(key, "/v1/renders?page_size=2").await;
    assert_eq!(page1.status, StatusCode::OK, "{page1:?}");
    let listed: Vec<&str> = page1.body["renders"]
        .as_array()
        .expect("renders")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert!(page1.body["renders"][0].get("tokens").is_none());
    let token = page1.body["next_page_token"].as_str().expect("a next page");
    let page2 = http
        .send(
            http.client
                .get(format!("{}/v1/renders", http.base))
                .bearer_auth(&farm.key_a)
                .query(&[("page_size", "2"), ("page_token", token)]),
        )
        .await;
    let listed: Vec<&str> = page2.body["renders"]
        .as_array()
        .expect("renders")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(listed, [ids[0].as_str()], "{page2:?}");
    assert_eq!(page2.body["next_page_token"], Value::Null);

    // Cancel one; the list filtered by state finds it.
    let cancelled = http
        .post(key, &format!("/v1/renders/{}:cancel", ids[1]), &json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{cancelled:?}");
    assert_eq!(cancelled.body["state"], "cancelled");
    assert!(cancelled.body["finished_at"].is_string());
    let only = http.get(key, "/v1/renders?state=cancelled").await;
    let listed: Vec<&str> = only.body["renders"]
        .as_array()
        .expect("renders")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(listed, [ids[1].as_str()], "{only:?}");
    // Cancelling again changes nothing.
    let again = http
        .post(key, &format!("/v1/renders/{}:cancel", ids[1]), &json!({}))
        .await;
    assert_eq!(again.body["finished_at"], cancelled.body["finished_at"]);

    http.post(
        key,
        &format!("/v1/renders/{}:frobnicate", ids[0]),
        &json!({}),
    )
    .await
    .problem(404);
    http.post(key, &format!("/v1/renders/{}", ids[0]), &json!({}))
        .await
        .problem(404);
    http.post(key, "/v1/renders/nothing-here:cancel", &json!({}))
        .await
        .problem(404);
    http.get(key, "/v1/renders?page_size=lots")
        .await
        .invalid("page_size");
    http.get(key, "/v1/renders?page_size=5000")
        .await
        .invalid("page_size");
    http.get(key, "/v1/renders?state=done")
        .await
        .invalid("state");
    http.get(key, "/v1/renders?page_token=garbage")
        .await
        .invalid("page_token");
    http.get(key, "/v1/renders?colour=red")
        .await
        .invalid("colour");
    farm.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lane_is_429_with_retry_after() {
    let settings = Settings {
        max_queued: [0, 0],
        ..Settings::default()
    };
    let (farm, http) = sqlite_farm(settings).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let mut b = body("Priya");
    b["idempotency_key"] = json!("full-1");
    let answer = http.post(Some(&farm.key_a), "/v1/renders", &b).await;
    assert_eq!(
        answer.problem(429)["type"],
        "urn:reelfarm:problem:lane-full"
    );
    assert_eq!(answer.headers[RETRY_AFTER], "1");
    farm.running.shutdown().await.expect("shutdown");
}

/// Uploads a file for an attempt as a worker does.
async fn upload(
    farm: &TestFarm,
    worker: &str,
    a: &v1::AttemptRef,
    artifact: v1::Artifact,
    data: &[u8],
) {
    let msgs = vec![
        v1::UploadOutputRequest {
            part: Some(v1::upload_output_request::Part::Header(
                v1::UploadOutputHeader {
                    worker_id: worker.into(),
                    attempt: Some(a.clone()),
                    artifact: artifact as i32,
                },
            )),
        },
        v1::UploadOutputRequest {
            part: Some(v1::upload_output_request::Part::Chunk(data.to_vec())),
        },
    ];
    farm.workers()
        .upload_output(authed(TOKEN, futures::stream::iter(msgs)))
        .await
        .expect("upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_render_links_its_files() {
    let (farm, http) = sqlite_farm(Settings {
        callbacks: Callbacks::AnyAddress,
        ..Settings::default()
    })
    .await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let mut b = body("Priya");
    b["idempotency_key"] = json!("done-1");
    b["callback_url"] = json!("http://127.0.0.1:9/hooks/reelfarm");
    let created = http.post(Some(&farm.key_a), "/v1/renders", &b).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.body["callback_url"],
        "http://127.0.0.1:9/hooks/reelfarm"
    );

    let worker = register(&farm, "w-rest", false).await;
    let assignment = acquire(&farm, &worker, 1, 1000).await;
    let attempt = assignment[0].attempt.clone().expect("attempt");
    let video = b"....ftypisom fake mp4".to_vec();
    upload(&farm, &worker, &attempt, v1::Artifact::Video, &video).await;
    upload(
        &farm,
        &worker,
        &attempt,
        v1::Artifact::Poster,
        b"\xff\xd8 fake jpeg",
    )
    .await;
    complete(&farm, &worker, &attempt).await.expect("complete");

    let done = http
        .get(Some(&farm.key_a), &format!("/v1/renders/{id}"))
        .await;
    let r = &done.body;
    assert_eq!(r["state"], "succeeded", "{done:?}");
    assert_eq!(r["output"]["video_bytes"], video.len());
    assert_eq!(r["output"]["stage_seconds"]["render"], 1.5);
    let url = r["video_url"].as_str().expect("a video link");
    assert!(r["poster_url"].is_string(), "{r}");
    // The link works without an API key.
    let fetched = reqwest::get(url).await.expect("download");
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        fetched.bytes().await.expect("bytes").as_ref(),
        video.as_slice()
    );
    farm.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_served_and_committed() {
    let generated = coordinator::rest::openapi_pretty();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("REELFARM_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the HTTP API; regenerate it with\n    \
         REELFARM_BLESS=1 cargo test --release -p coordinator --test it rest::openapi\nand commit the result",
        path.display()
    );

    let (farm, http) = sqlite_farm(Settings::default()).await;
    let served = http.get(None, "/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.content_type, "application/json");
    let doc: Value = serde_json::from_str(&generated).expect("JSON");
    assert_eq!(served.body, doc);
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method, op) in [
        ("/v1/renders", "post", "submitRender"),
        ("/v1/renders", "get", "listRenders"),
        ("/v1/renders/{id}", "get", "getRender"),
        ("/v1/renders/{id}:cancel", "post", "cancelRender"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["operationId"], op, "{path} {method}");
        assert_eq!(operation["security"], json!([{"bearer": []}]), "{op}");
        assert!(
            operation["responses"]["401"].is_object(),
            "{op} documents 401"
        );
    }
    farm.running.shutdown().await.expect("shutdown");
}
