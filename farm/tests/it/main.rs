//! A local farm end to end: the trigger turns an event into a render on no-op workers and a
//! signed webhook, which the loopback receiver verifies; then the farm stops in order.

use std::time::Duration;

use farm::receiver::{Options, Receiver};
use farm::{FarmSpec, LocalFarm, Workers};
use proto::v1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_to_verified_webhook_on_a_local_farm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = FarmSpec::new(dir.path())
        .with_local_trigger(format!(
            "sqlite://{}",
            dir.path().join("trigger.db").display()
        ))
        .with_tenant("acme", 10);
    spec.workers = Workers {
        count: 1,
        slots: 4,
        noop: true,
        name_prefix: "test".to_owned(),
    };
    let local = LocalFarm::start(spec, farm::Gpu::new())
        .await
        .expect("farm starts");
    assert!(local.trigger_running());
    let mut client = local.client().await.expect("client");
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/templates/order-delivered"
    );
    client
        .push_template(std::path::Path::new(template), &[])
        .await
        .expect("push");

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

    local.stop().await.expect("stops in order");
}
