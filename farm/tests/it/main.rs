//! A local farm end to end: the trigger turns an event into a render on no-op workers and a
//! signed webhook, which the loopback receiver verifies; then the farm stops in order.

use std::time::Duration;

use farm::receiver::{Options, Receiver};
use farm::{FarmSpec, LocalFarm, Workers};
use proto::v1;

/// A local farm in `data` with the trigger layer, tenant `acme` and one no-op worker.
async fn start_farm(data: &std::path::Path) -> LocalFarm {
    let mut spec = FarmSpec::new(data)
        .with_local_trigger(format!("sqlite://{}", data.join("trigger.db").display()))
        .with_tenant("acme", 10);
    spec.metrics_listen = Some("127.0.0.1:0".parse().expect("address"));
    spec.workers = Workers {
        count: 1,
        slots: 4,
        noop: true,
        name_prefix: "test".to_owned(),
    };
    LocalFarm::start(spec, farm::Gpu::new())
        .await
        .expect("farm starts")
}

/// The coordinator's `/metrics` once every line of `lines` is in it (the counters move right
/// after the actions a test waits for); fails naming the missing line after 30 s.
async fn metrics_with(local: &LocalFarm, lines: &[&str]) -> String {
    let addr = local.metrics_addr.expect("metrics served");
    let url = format!("http://{addr}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(&url)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        let missing = lines.iter().find(|line| !text.lines().any(|l| l == **line));
        match missing {
            None => return text,
            Some(line) if tokio::time::Instant::now() > deadline => {
                panic!("{line} not in the metrics: {text}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Uploads the demo template as the farm's tenant.
async fn push_demo(client: &mut farm::TenantClient) {
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/templates/order-delivered"
    );
    client
        .push_template(std::path::Path::new(template), &[])
        .await
        .expect("push");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_to_verified_webhook_on_a_local_farm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = start_farm(dir.path()).await;
    assert!(local.trigger_running());
    let mut client = local.client().await.expect("client");
    push_demo(&mut client).await;

    // A receiver that fails the first call: the delivery is retried with the same id.
    let hook = Receiver::start(Options {
        fail_first: 1,
        count_only: false,
    })
    .await
    .expect("receiver");
    let campaign = serde_json::json!({
        "name": "thanks",
        "event_type": "order_delivered",
        "conditions": [],
        "variants": [{"name": "a", "template": "order-delivered", "weight": 1}],
        "languages": {"supported": ["en"], "fallback": "en"},
        "tokens": {"first_name": "customer.attributes.first_name", "product": "data.product"},
        "holdout_percent": 0,
        "destination": {"url": hook.url, "secret_ref": "test"}
    });
    let put = client
        .triggers
        .put_campaign(v1::PutCampaignRequest {
            definition_json: campaign.to_string(),
        })
        .await
        .expect("campaign")
        .into_inner();
    let event = serde_json::json!({
        "id": "e1", "type": "order_delivered",
        "customer": {"id": "c1", "lang": "en", "consent": true, "attributes": {"first_name": "Asha"}},
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": {"product": "Tea"}
    });
    let (status, counts) = farm::post_events(
        &local.http_base().expect("http"),
        local.api_key().expect("key"),
        event.to_string(),
    )
    .await
    .expect("post");
    assert_eq!(status, 202, "{counts}");
    assert_eq!(counts["accepted"], 1);

    // Before the secret is known, deliveries do not verify.
    let first = hook
        .wait_for(1, Duration::from_secs(60))
        .await
        .expect("first");
    assert_eq!(first[0].answered, 500);
    assert!(!first[0].verified);
    hook.set_secret(&put.webhook_secret);
    let all = hook
        .wait_for(2, Duration::from_secs(120))
        .await
        .expect("retry");
    assert_eq!(all[1].id, all[0].id, "a retry keeps the delivery id");
    assert!(all[1].verified, "{:?}", all[1].rejection);
    assert_eq!(all[1].answered, 200);
    assert_eq!(all[1].body["customer_id"], "c1");
    assert_eq!(hook.accepted(), 1);

    // An event of a customer without consent is suppressed, not rendered.
    let no_consent = serde_json::json!({
        "id": "e2", "type": "order_delivered",
        "customer": {"id": "c2", "lang": "en", "consent": false, "attributes": {"first_name": "Ravi"}},
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": {"product": "Tea"}
    });
    let (status, counts) = farm::post_events(
        &local.http_base().expect("http"),
        local.api_key().expect("key"),
        no_consent.to_string(),
    )
    .await
    .expect("post");
    assert_eq!(status, 202, "{counts}");

    // The coordinator's /metrics shows the trigger's and the tenant's figures.
    let text = metrics_with(
        &local,
        &[
            "reelfarm_events_total{outcome=\"accepted\"} 2",
            "reelfarm_trigger_evaluations_total{outcome=\"dispatch\"} 1",
            "reelfarm_trigger_evaluations_total{outcome=\"suppressed\"} 1",
            "reelfarm_trigger_suppressions_total{reason=\"no_consent\"} 1",
            "reelfarm_trigger_submissions_total{outcome=\"submitted\"} 1",
            "reelfarm_webhook_deliveries_total{source=\"campaign\",outcome=\"retry\"} 1",
            "reelfarm_webhook_deliveries_total{source=\"campaign\",outcome=\"delivered\"} 1",
            "reelfarm_webhook_delivery_seconds_count{source=\"campaign\"} 1",
            "reelfarm_tenant_submitted_total{tenant=\"acme\"} 1",
            "reelfarm_tenant_succeeded_total{tenant=\"acme\"} 1",
            "reelfarm_store_writer_repairs{store=\"trigger\"} 0",
        ],
    )
    .await;
    let render_id = all[1].body["render_id"].as_str().expect("render id");
    assert!(!render_id.is_empty());
    for private in [render_id, "c1", "c2", "e1", "e2", "thanks"] {
        assert!(
            !text.contains(&format!("\"{private}\"")),
            "{private} as a label value: {text}"
        );
    }

    local.stop().await.expect("stops in order");
}

/// The integrator's path: a render submitted with `curl` to `POST /v1/renders` with a callback
/// URL and metadata delivers one signed webhook carrying the metadata; a private callback on a
/// farm that refuses them, and bad metadata, are refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_render_with_callback_delivers_one_signed_webhook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = start_farm(dir.path()).await;
    let mut client = local.client().await.expect("client");
    push_demo(&mut client).await;
    let secret = client
        .triggers
        .get_callback_secret(v1::GetCallbackSecretRequest {})
        .await
        .expect("callback secret")
        .into_inner()
        .secret;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let hook = Receiver::start(Options {
        fail_first: 0,
        count_only: false,
    })
    .await
    .expect("receiver");
    hook.set_secret(&secret);
    let base = local.http_base().expect("http");
    let key = local.api_key().expect("key").to_owned();
    let curl = |body: serde_json::Value| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-X", "POST", "-w", "\n%{http_code}"])
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .args(["-H", "Content-Type: application/json"])
            .args(["--data-binary", &body.to_string()])
            .arg(format!("{base}/v1/renders"))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let (body, code) = text.rsplit_once('\n').expect("status line");
        let code: u16 = code.trim().parse().expect("status");
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON answer");
        (code, body)
    };

    let (code, bad) = curl(serde_json::json!({
        "idempotency_key": "order-4711-bad",
        "template": "order-delivered",
        "tokens": {"first_name": "Asha", "product": "Tea"},
        "metadata": {"order id": "4711"},
        "callback_url": hook.url,
    }));
    assert_eq!(code, 400, "{bad}");
    assert!(
        bad["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("metadata"),
        "{bad}"
    );

    let (code, render) = curl(serde_json::json!({
        "idempotency_key": "order-4711-delivered",
        "template": "order-delivered",
        "lang": "en-IN",
        "tokens": {"first_name": "Asha", "product": "Tea"},
        "metadata": {"order_id": "4711", "channel": "whatsapp"},
        "callback_url": hook.url,
    }));
    assert_eq!(code, 201, "{render}");
    assert_eq!(render["metadata"]["order_id"], "4711", "{render}");
    assert_eq!(render["callback_url"], hook.url.as_str(), "{render}");
    let id = render["id"].as_str().expect("id").to_owned();

    let got = hook
        .wait_for(1, Duration::from_secs(120))
        .await
        .expect("callback");
    assert!(got[0].verified, "{:?}", got[0].rejection);
    assert_eq!(got[0].answered, 200);
    let body = &got[0].body;
    assert_eq!(body["render_id"], id.as_str(), "{body}");
    assert_eq!(body["event"], "render.succeeded", "{body}");
    assert_eq!(body["state"], "succeeded", "{body}");
    assert_eq!(body["metadata"]["order_id"], "4711", "{body}");
    assert_eq!(body["metadata"]["channel"], "whatsapp", "{body}");
    assert_eq!(body["tenant"], "acme", "{body}");
    assert_eq!(body["campaign"], "", "{body}");

    // Submitting the same request again answers the same render and sends nothing more.
    let (code, again) = curl(serde_json::json!({
        "idempotency_key": "order-4711-delivered",
        "template": "order-delivered",
        "lang": "en-IN",
        "tokens": {"first_name": "Asha", "product": "Tea"},
        "metadata": {"order_id": "4711", "channel": "whatsapp"},
        "callback_url": hook.url,
    }));
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.received().len(), 1, "one render, one webhook");
    assert_eq!(hook.accepted(), 1);

    local.stop().await.expect("stops in order");
}
