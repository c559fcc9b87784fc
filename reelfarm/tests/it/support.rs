//! What the farm tests share: the binary, processes killed when dropped, a farm's data folder
//! and store, and gRPC helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coordinator::store::{DynStore, PostgresStore};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reelfarm"));
    c.env("NODEVICE_SELECT", "1")
        .env_remove("REELFARM_API_KEY")
        .env_remove("REELFARM_STORE");
    c
}

pub fn demo_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

/// Copies the folder `from` to `to`, recursively (a template to edit in a test).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A data folder and, for PostgreSQL, a fresh schema: the `--store` arguments to pass.
pub struct Farm {
    dir: tempfile::TempDir,
    store_url: String,
}

impl Farm {
    pub async fn new(backend: Backend) -> Farm {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("farm.db").display()),
            Backend::Postgres => {
                let base = std::env::var("REELFARM_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                    "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned()
                });
                let schema = format!("farm_{}", coordinator::auth::random_hex(6));
                // Creates the schema and its tables.
                let store = PostgresStore::connect_with_schema(&base, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {base}: {e}; run scripts/postgres-up")
                    });
                store.close().await;
                format!("{base}?options=-c%20search_path%3D{schema}")
            }
        };
        Farm { dir, store_url }
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn tenant(&self, name: &str) -> String {
        let out = bin()
            .args(["tenant", "create", name, "--data"])
            .arg(self.data())
            .args(["--store", &self.store_url])
            .output()
            .expect("run tenant create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.lines().last().expect("key line").trim().to_owned()
    }

    /// Starts `reelfarm serve` and returns it with its URL.
    pub fn serve(&self, listen: &str) -> (Proc, String) {
        self.serve_with(listen, &[])
    }

    /// Like [`Farm::serve`], with more arguments.
    pub fn serve_with(&self, listen: &str, extra: &[&str]) -> (Proc, String) {
        let mut child = bin()
            .args([
                "serve",
                "--listen",
                listen,
                "--http-listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(self.data())
            .args([
                "--store",
                &self.store_url,
                "--lease-ttl-ms",
                "3000",
                "--heartbeat-ms",
                "500",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("serve prints its URL");
        // Keep reading so the server never writes to a closed pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        let url = line
            .trim()
            .strip_prefix("coordinator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line `{line}`"))
            .to_owned();
        (Proc(child), url)
    }

    pub fn work(&self, url: &str, name: &str, extra: &[&str]) -> Proc {
        self.work_logging(url, name, extra, "warn")
    }

    /// Like [`Farm::work`], logging at `level` (`REELFARM_LOG`).
    pub fn work_logging(&self, url: &str, name: &str, extra: &[&str], level: &str) -> Proc {
        let child = bin()
            .env("REELFARM_LOG", level)
            .args([
                "work",
                "--coordinator",
                url,
                "--name",
                name,
                "--join-token-file",
            ])
            .arg(self.data().join("join-token"))
            .arg("--cache")
            .arg(self.data().join(name))
            .args(extra)
            .spawn()
            .expect("start worker");
        Proc(child)
    }

    pub async fn store(&self) -> DynStore {
        coordinator::store::open(&self.store_url)
            .await
            .expect("open store")
    }
}

pub fn authed<T>(key: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).expect("ascii"),
    );
    req
}

pub fn push(url: &str, key: &str) {
    let out = bin()
        .args(["template", "push"])
        .arg(demo_template())
        .args(["--coordinator", url, "--api-key", key])
        .output()
        .expect("push");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn spec(name: &str) -> v1::RenderSpec {
    v1::RenderSpec {
        template: "order-delivered".into(),
        lang: "en".into(),
        tokens: [("first_name".to_owned(), name.to_owned())]
            .into_iter()
            .collect(),
        preset: v1::Preset::Preset720p as i32,
        lane: v1::Lane::Realtime as i32,
        ..Default::default()
    }
}

pub async fn client(url: &str) -> RenderServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_owned())
        .expect("url")
        .connect_lazy();
    RenderServiceClient::new(channel)
}

/// Submits `name`'s render under `idempotency_key` and returns its id, retrying the same key
/// while the coordinator is away (unavailable, a connection reset by its death, a full queue):
/// safe by idempotency. Any other answer fails the test.
pub async fn submit_retrying(
    c: &mut RenderServiceClient<Channel>,
    key: &str,
    idempotency_key: &str,
    name: &str,
) -> String {
    let req = v1::SubmitRenderRequest {
        idempotency_key: idempotency_key.to_owned(),
        spec: Some(spec(name)),
    };
    loop {
        match c.submit_render(authed(key, req.clone())).await {
            Ok(r) => return r.into_inner().render.expect("render").id,
            Err(s) => {
                assert!(
                    matches!(
                        s.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                            | tonic::Code::ResourceExhausted
                    ),
                    "unexpected answer to SubmitRender: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub async fn wait_for(
    c: &mut RenderServiceClient<Channel>,
    key: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&v1::Render) -> bool,
) -> v1::Render {
    let until = Instant::now() + within;
    loop {
        if let Ok(r) = c
            .get_render(authed(key, v1::GetRenderRequest { id: id.into() }))
            .await
        {
            let r = r.into_inner();
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < until, "timed out; render is {r:?}");
        }
        assert!(Instant::now() < until, "timed out waiting for render {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
