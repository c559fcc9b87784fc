//! Smart render's coordinator side end to end on loopback, against both stores: the farm-wide
//! segment cache (`FetchSegment`, `StoreSegment`) and live HLS streams of running attempts
//! (`PublishStream`, `Render.stream_url`, the signed stream links on the HTTP listener).

use std::time::Duration;

use coordinator::{Clock, CoordinatorConfig, Settings};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use tonic::transport::Channel;
use tonic::Code;

use crate::api::{
    acquire, authed, http_get_bytes, push_demo, register, spec, submit, Backend, TestFarm, TOKEN,
};

fn key(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

async fn fetch_segment(farm: &TestFarm, worker: &str, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = farm
        .workers()
        .fetch_segment(authed(
            TOKEN,
            v1::FetchSegmentRequest {
                worker_id: worker.into(),
                key: key.into(),
            },
        ))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(c) = stream.message().await? {
        out.extend_from_slice(&c.data);
    }
    Ok(out)
}

/// Stores `data` announcing `size` bytes.
async fn store_segment(
    farm: &TestFarm,
    worker: &str,
    key: &str,
    size: u64,
    data: &[u8],
) -> Result<v1::StoreSegmentResponse, tonic::Status> {
    use v1::store_segment_request::Part;
    let mut msgs = vec![v1::StoreSegmentRequest {
        part: Some(Part::Header(v1::StoreSegmentHeader {
            worker_id: worker.into(),
            key: key.into(),
            size,
        })),
    }];
    for c in data.chunks(proto::CHUNK_BYTES) {
        msgs.push(v1::StoreSegmentRequest {
            part: Some(Part::Chunk(c.to_vec())),
        });
    }
    farm.workers()
        .store_segment(authed(TOKEN, futures::stream::iter(msgs)))
        .await
        .map(|r| r.into_inner())
}

async fn publish(
    farm: &TestFarm,
    worker: &str,
    a: &v1::AttemptRef,
    name: &str,
    data: &[u8],
) -> Result<v1::PublishStreamResponse, tonic::Status> {
    use v1::publish_stream_request::Part;
    let mut msgs = vec![v1::PublishStreamRequest {
        part: Some(Part::Header(v1::PublishStreamHeader {
            worker_id: worker.into(),
            attempt: Some(a.clone()),
            name: name.into(),
        })),
    }];
    for c in data.chunks(1000) {
        msgs.push(v1::PublishStreamRequest {
            part: Some(Part::Chunk(c.to_vec())),
        });
    }
    farm.workers()
        .publish_stream(authed(TOKEN, futures::stream::iter(msgs)))
        .await
        .map(|r| r.into_inner())
}

fn assert_code(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needle: &str) {
    match r {
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(
                s.message().contains(needle),
                "`{}` should name {needle}",
                s.message()
            );
        }
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
}

/// An HTTP answer split into its status line, headers (lowercase names) and body.
struct Answer {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> Answer {
    let raw = http_get_bytes(addr, path).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The path of a link to `addr`.
fn path_of(url: &str, addr: std::net::SocketAddr) -> String {
    url.strip_prefix(&format!("http://{addr}"))
        .unwrap_or_else(|| panic!("{url} is not a link to {addr}"))
        .to_owned()
}

async fn get_render(renders: &mut RenderServiceClient<Channel>, key: &str, id: &str) -> v1::Render {
    renders
        .get_render(authed(key, v1::GetRenderRequest { id: id.into() }))
        .await
        .expect("get render")
        .into_inner()
}

// ---------------------------------------------------------------------------------------------

async fn segment_cache(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    let worker = register(&farm, "w1", false).await;

    // Stored in several chunks, fetched back byte for byte.
    let data: Vec<u8> = (0..(2 * proto::CHUNK_BYTES + 12345))
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let k = key(0xa1);
    let stored = store_segment(&farm, &worker, &k, data.len() as u64, &data)
        .await
        .expect("store");
    assert!(stored.stored);
    assert_eq!(
        fetch_segment(&farm, &worker, &k).await.expect("fetch"),
        data
    );
    // Storing it again writes nothing and succeeds.
    let again = store_segment(&farm, &worker, &k, data.len() as u64, &data)
        .await
        .expect("store again");
    assert!(!again.stored);

    // Absent: NOT_FOUND.
    assert_code(
        fetch_segment(&farm, &worker, &key(0xb2)).await,
        Code::NotFound,
        "segment",
    );

    // Keys are 64 lowercase hex digits, named by their field.
    for bad in ["", "abc", &k.to_uppercase(), &format!("{}/x", &k[..62])] {
        assert_code(
            fetch_segment(&farm, &worker, bad).await,
            Code::InvalidArgument,
            "key",
        );
        assert_code(
            store_segment(&farm, &worker, bad, 3, b"abc").await,
            Code::InvalidArgument,
            "header.key",
        );
    }

    // Sizes that do not add up store nothing.
    let short = key(0xc3);
    assert_code(
        store_segment(&farm, &worker, &short, 10, b"too short").await,
        Code::InvalidArgument,
        "header.size",
    );
    assert_code(
        store_segment(&farm, &worker, &short, 3, b"too long").await,
        Code::InvalidArgument,
        "header.size",
    );
    assert_code(
        fetch_segment(&farm, &worker, &short).await,
        Code::NotFound,
        "segment",
    );
    // Entries are capped.
    assert_code(
        store_segment(&farm, &worker, &short, 65 << 20, b"x").await,
        Code::ResourceExhausted,
        "MiB",
    );

    // Registered workers only, with the join token.
    assert_code(
        fetch_segment(&farm, "no-such-worker", &k).await,
        Code::Unauthenticated,
        "worker_id",
    );
    assert_code(
        store_segment(&farm, "no-such-worker", &short, 1, b"x").await,
        Code::Unauthenticated,
        "worker_id",
    );
    let wrong_token = farm
        .workers()
        .fetch_segment(authed(
            "not-the-token",
            v1::FetchSegmentRequest {
                worker_id: worker.clone(),
                key: k.clone(),
            },
        ))
        .await;
    assert_eq!(
        wrong_token.expect_err("wrong token").code(),
        Code::Unauthenticated
    );

    // Two workers storing one key at once: both succeed, one writes, the entry is whole.
    let other = register(&farm, "w2", false).await;
    let racy: Vec<u8> = (0..(3 * proto::CHUNK_BYTES / 2))
        .map(|i| (i % 253) as u8)
        .collect();
    let k2 = key(0xd4);
    let (a, b) = tokio::join!(
        store_segment(&farm, &worker, &k2, racy.len() as u64, &racy),
        store_segment(&farm, &other, &k2, racy.len() as u64, &racy),
    );
    let (a, b) = (a.expect("first store"), b.expect("second store"));
    assert!(a.stored != b.stored, "exactly one wrote: {a:?} {b:?}");
    assert_eq!(
        fetch_segment(&farm, &other, &k2).await.expect("fetch"),
        racy
    );
}

async fn live_stream(backend: Backend) {
    let farm = TestFarm::start(backend, Clock::system(), Settings::default()).await;
    push_demo(&farm, &farm.key_a, &[]).await;
    let id = submit(&farm, &farm.key_a, "stream-1", spec("Priya"))
        .await
        .expect("submit")
        .render
        .expect("render")
        .id;
    let mut renders = farm.renders();
    let mut watch = renders
        .watch_render(authed(
            &farm.key_a,
            v1::WatchRenderRequest { id: id.clone() },
        ))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("first");
    assert_eq!(first.stream_url, "");

    let worker = register(&farm, "w1", false).await;
    let assigned = acquire(&farm, &worker, 1, 1000).await;
    let attempt = assigned[0].attempt.clone().expect("attempt");
    assert_eq!(
        get_render(&mut renders, &farm.key_a, &id).await.stream_url,
        ""
    );

    // A segment, then the playlist that names it.
    let segment = b"\x47\x40\x00\x10fake transport stream".repeat(300);
    let playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n\
                    #EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.000,\nseg-00000.ts\n";
    publish(&farm, &worker, &attempt, "seg-00000.ts", &segment)
        .await
        .expect("publish segment");
    // A segment alone makes no stream yet.
    assert_eq!(
        get_render(&mut renders, &farm.key_a, &id).await.stream_url,
        ""
    );
    publish(&farm, &worker, &attempt, "index.m3u8", playlist.as_bytes())
        .await
        .expect("publish playlist");

    // WatchRender tells.
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = watch.message().await.expect("watch").expect("an update");
            if !r.stream_url.is_empty() {
                return r.stream_url;
            }
        }
    })
    .await
    .expect("WatchRender sends the stream link");
    let http = farm.running.http_addr.expect("http");
    assert!(url.ends_with("/index.m3u8"), "{url}");
    let path = path_of(&url, http);
    assert!(
        path.starts_with("/v1/streams/") && !path.contains('?'),
        "{path}"
    );

    // A plain HLS client: the playlist, then the segment it names, relative to it.
    let got = http_get(http, &path).await;
    assert!(got.status.starts_with("HTTP/1.1 200"), "{}", got.status);
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(got.header("cache-control"), Some("no-cache"));
    assert_eq!(got.body, playlist.as_bytes());
    let named = String::from_utf8_lossy(&got.body)
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a segment line")
        .to_owned();
    let base = path.rsplit_once('/').expect("a folder").0;
    let seg = http_get(http, &format!("{base}/{named}")).await;
    assert!(seg.status.starts_with("HTTP/1.1 200"), "{}", seg.status);
    assert_eq!(seg.header("content-type"), Some("video/mp2t"));
    assert_eq!(seg.body, segment);
    // Not published: 404; not a stream file name: 404.
    for missing in ["seg-00001.ts", "seg-1.ts", "video.mp4"] {
        let answer = http_get(http, &format!("{base}/{missing}")).await;
        assert!(
            answer.status.starts_with("HTTP/1.1 404"),
            "{missing}: {}",
            answer.status
        );
    }

    // A changed token is refused.
    let token = base.rsplit('/').next().expect("token");
    let (signed, sig) = token.rsplit_once('.').expect("signature");
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    let tampered_sig = format!("/v1/streams/{signed}.{flipped}{}/index.m3u8", &sig[1..]);
    let tampered_attempt = format!(
        "/v1/streams/{}/index.m3u8",
        token.replacen(&attempt.attempt_id, &uuid::Uuid::new_v4().to_string(), 1)
    );
    let tampered_expiry = {
        let parts: Vec<&str> = token.split('.').collect();
        let later: i64 = parts[2].parse::<i64>().expect("expiry") + 1;
        format!(
            "/v1/streams/{}.{}.{later}.{}/index.m3u8",
            parts[0], parts[1], parts[3]
        )
    };
    for bad in [tampered_sig, tampered_attempt, tampered_expiry] {
        let answer = http_get(http, &bad).await;
        assert!(
            answer.status.starts_with("HTTP/1.1 403") || answer.status.starts_with("HTTP/1.1 404"),
            "{bad}: {}",
            answer.status
        );
    }

    // Names are checked.
    assert_code(
        publish(&farm, &worker, &attempt, "../video.mp4", b"x").await,
        Code::InvalidArgument,
        "header.name",
    );

    // The attempt fails and the render is handed out again: the old attempt's writes are
    // refused, and the new attempt has no stream until it publishes.
    farm.workers()
        .fail(authed(
            TOKEN,
            v1::FailRequest {
                worker_id: worker.clone(),
                attempt: Some(attempt.clone()),
                class: v1::FailureClass::Infrastructure as i32,
                message: "GPU lost".into(),
            },
        ))
        .await
        .expect("fail");
    let mut retried = Vec::new();
    for _ in 0..20 {
        retried = acquire(&farm, &worker, 1, 1000).await;
        if !retried.is_empty() {
            break;
        }
    }
    let second = retried[0].attempt.clone().expect("second attempt");
    assert_ne!(second.attempt_id, attempt.attempt_id);
    assert_code(
        publish(&farm, &worker, &attempt, "index.m3u8", playlist.as_bytes()).await,
        Code::FailedPrecondition,
        &attempt.attempt_id,
    );
    assert_eq!(
        get_render(&mut renders, &farm.key_a, &id).await.stream_url,
        ""
    );
    let playlist2 = format!("{playlist}#EXT-X-ENDLIST\n");
    publish(&farm, &worker, &second, "seg-00000.ts", &segment)
        .await
        .expect("publish segment");
    publish(&farm, &worker, &second, "index.m3u8", playlist2.as_bytes())
        .await
        .expect("publish playlist");
    let url2 = get_render(&mut renders, &farm.key_a, &id).await.stream_url;
    assert!(url2.contains(&second.attempt_id), "{url2}");
    let done = farm
        .workers()
        .complete(authed(
            TOKEN,
            v1::CompleteRequest {
                worker_id: worker.clone(),
                attempt: Some(second.clone()),
                warnings: vec![],
                stage_seconds: Default::default(),
            },
        ))
        .await
        .expect("complete")
        .into_inner();
    assert!(!done.duplicate);

    // The coordinator restarts: the finished render's stream is still served, by state kept
    // in the store and the blob store.
    let TestFarm {
        running,
        store,
        key_a,
        dir,
        ..
    } = farm;
    running.shutdown().await.expect("shutdown");
    let mut config = CoordinatorConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("blobs").display().to_string(),
        TOKEN,
    );
    config.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let running = coordinator::start(config, store).await.expect("restart");
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut renders = RenderServiceClient::new(channel);
    let render = get_render(&mut renders, &key_a, &id).await;
    assert_eq!(render.state, v1::RenderState::Succeeded as i32);
    let http = running.http_addr.expect("http");
    let path = path_of(&render.stream_url, http);
    assert!(
        path.contains(&second.attempt_id),
        "the winning attempt's: {path}"
    );
    let got = http_get(http, &path).await;
    assert!(got.status.starts_with("HTTP/1.1 200"), "{}", got.status);
    assert_eq!(got.body, playlist2.as_bytes());
    let seg = http_get(http, &path.replace("index.m3u8", "seg-00000.ts")).await;
    assert_eq!(seg.body, segment);
    running.shutdown().await.expect("shutdown");
}

macro_rules! smart_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn segment_cache() {
                super::segment_cache($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn live_stream() {
                super::live_stream($make).await
            }
        }
    };
}

smart_tests!(sqlite, crate::api::Backend::Sqlite);
smart_tests!(postgres, crate::api::Backend::Postgres);
