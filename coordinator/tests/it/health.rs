//! The coordinator's probes: `/healthz` while the process answers, `/readyz` only while the job
//! store answers; PostgreSQL reached through a TCP relay that the test cuts and restores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::store::{DynStore, PostgresStore};
use coordinator::CoordinatorConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards every connection on `listener` to `target` until dropped (which closes them all).
struct Relay {
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(listen: &str, target: String) -> (Relay, std::net::SocketAddr) {
        let listener = TcpListener::bind(listen).await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        (Relay { tasks }, addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.tasks.abort_all();
    }
}

/// `url` with its `host:port` replaced by `addr`, and the `host:port` it had.
fn through(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let at = url
        .rfind('@')
        .map_or(url.find("://").expect("scheme") + 3, |i| i + 1);
    let end = url[at..].find('/').map_or(url.len(), |i| at + i);
    let target = url[at..end].to_owned();
    (format!("{}{addr}{}", &url[..at], &url[end..]), target)
}

async fn status(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(answer) => {
            let code = answer.status().as_u16();
            (code, answer.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

async fn until_status(url: &str, want: u16) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = status(url).await;
        if code == want {
            return body;
        }
        assert!(
            Instant::now() < until,
            "{url} answers {code} ({body}), not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_job_store() {
    let base = std::env::var("REELFARM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned());
    let (_, target) = through(&base, "127.0.0.1:1".parse().expect("addr"));
    let (relay, relay_addr) = Relay::start("127.0.0.1:0", target.clone()).await;
    let (url, _) = through(&base, relay_addr);
    let schema = format!("health_{}", uuid::Uuid::new_v4().simple());
    let store: DynStore = Arc::new(
        PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base}: {e}; run scripts/postgres-up")),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = CoordinatorConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("blobs").display().to_string(),
        "join",
    );
    config.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let running = coordinator::start(config, store).await.expect("start");
    let http = format!("http://{}", running.http_addr.expect("http"));

    assert_eq!(status(&format!("{http}/healthz")).await.0, 200);
    until_status(&format!("{http}/readyz"), 200).await;

    // The database goes away: not ready, naming the store; still alive.
    drop(relay);
    let why = until_status(&format!("{http}/readyz"), 503).await;
    assert!(why.contains("job store"), "{why}");
    assert!(!why.contains("blob store"), "{why}");
    assert_eq!(status(&format!("{http}/healthz")).await.0, 200);

    // Back on the same address: ready again.
    let (_relay, _) = Relay::start(&relay_addr.to_string(), target).await;
    until_status(&format!("{http}/readyz"), 200).await;
    running.shutdown().await.expect("shutdown");
}
