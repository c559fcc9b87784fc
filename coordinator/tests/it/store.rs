//! The job store's contract, one suite run against both backends.
//!
//! Every scenario is a function of a [`DynStore`]; `store_tests!` instantiates each one for
//! SQLite (a fresh file in a temporary directory) and PostgreSQL (a fresh schema in the database
//! named by `REELFARM_TEST_POSTGRES_URL`; start it with `scripts/postgres-up`). After every
//! scenario the harness checks the per-tenant running counts against the jobs table.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use coordinator::lifecycle::{LeasePolicy, RetryPolicy};
use coordinator::model::{
    ArtifactKind, AttemptProgress, Claim, FailureClass, Fence, Job, JobState, Lane, Millis, NewJob,
    NewTemplate, OutputFile, TemplateRef, Tenant, WorkerRecord,
};
use coordinator::store::{
    Completed, DynStore, Failed, JobCursor, PostgresStore, SqliteStore, StoreError, Submitted,
};
use sqlx::Connection;

const NOW: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;
const LEASE: LeasePolicy = LeasePolicy {
    heartbeat_ms: 5_000,
    lease_ttl_ms: 30_000,
};
const RETRY: RetryPolicy = RetryPolicy {
    app_attempts: 3,
    infra_attempts: 5,
    backoff_base_ms: 2_000,
    backoff_cap_ms: 300_000,
};

// ---------------------------------------------------------------------------------------------
// Harness

/// A store under test and what it needs to be inspected and cleaned up.
struct Ctx {
    store: DynStore,
    db: TestDb,
}

enum TestDb {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

fn pg_url() -> String {
    std::env::var("REELFARM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned())
}

async fn sqlite_store() -> Ctx {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("farm.db").display());
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    Ctx {
        store: Arc::new(store),
        db: TestDb::Sqlite { url, _dir: dir },
    }
}

async fn pg_store() -> Ctx {
    let url = pg_url();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL for the store tests is unreachable ({e}); start it with \
                 scripts/postgres-up, or point REELFARM_TEST_POSTGRES_URL at a server"
            )
        });
    Ctx {
        store: Arc::new(store),
        db: TestDb::Postgres { url, schema },
    }
}

impl Ctx {
    /// `(tenant, tenants.running, count of running jobs)` for every tenant.
    async fn running_counts(&self) -> Vec<(String, i64, i64)> {
        const SQL: &str = "SELECT t.id, t.running, \
             (SELECT count(*) FROM jobs j WHERE j.tenant_id = t.id AND j.state = 'running') \
             AS actual FROM tenants t ORDER BY t.id";
        fn rows<R: sqlx::Row>(rows: Vec<R>) -> Vec<(String, i64, i64)>
        where
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|r| {
                    (
                        r.try_get(0).expect("id"),
                        r.try_get(1).expect("running"),
                        r.try_get(2).expect("actual"),
                    )
                })
                .collect()
        }
        match &self.db {
            TestDb::Sqlite { url, .. } => {
                let mut c = sqlx::SqliteConnection::connect(url)
                    .await
                    .expect("inspect SQLite");
                rows(sqlx::query(SQL).fetch_all(&mut c).await.expect("counts"))
            }
            TestDb::Postgres { url, schema } => {
                let mut c = pg_conn(url, Some(schema)).await;
                rows(sqlx::query(SQL).fetch_all(&mut c).await.expect("counts"))
            }
        }
    }

    /// Whether render `id` is committed, as a new connection of its own sees it.
    async fn committed(&self, id: &str) -> bool {
        let (url, schema) = match &self.db {
            TestDb::Sqlite { url, .. } => (url, None),
            TestDb::Postgres { url, schema } => (url, Some(schema.as_str())),
        };
        let sql = "SELECT count(*) FROM jobs WHERE id = $1";
        sqlstore::testing::count_committed(url, schema, sql, id).await == 1
    }

    async fn cleanup(self) {
        let Ctx { store, db } = self;
        drop(store);
        if let TestDb::Postgres { url, schema } = db {
            let mut c = pg_conn(&url, None).await;
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut c)
                .await
                .expect("drop test schema");
        }
    }
}

/// tenants.running equals the number of running jobs, for every tenant.
fn assert_running_invariant(counts: &[(String, i64, i64)]) {
    for (tenant, running, actual) in counts {
        assert_eq!(
            running, actual,
            "tenant {tenant}: tenants.running = {running} but {actual} jobs are running"
        );
    }
}

async fn pg_conn(url: &str, schema: Option<&str>) -> sqlx::PgConnection {
    use std::str::FromStr;
    let mut options = sqlx::postgres::PgConnectOptions::from_str(url).expect("PostgreSQL URL");
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("PostgreSQL connection (scripts/postgres-up)")
}

/// Instantiates every scenario for one backend: `store_tests!(module, ctx_expr; scenarios…)`.
macro_rules! store_tests {
    ($backend:ident, $open:expr; $($scenario:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let ctx = $open.await;
                    // In a task, so that a failing scenario still drops its schema.
                    let outcome = tokio::spawn(super::$scenario(ctx.store.clone())).await;
                    let counts = match outcome {
                        Ok(()) => ctx.running_counts().await,
                        Err(_) => Vec::new(),
                    };
                    ctx.cleanup().await;
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                    super::assert_running_invariant(&counts);
                }
            )*
        }
    };
}

macro_rules! all_scenarios {
    ($backend:ident, $open:expr) => {
        store_tests!($backend, $open;
            tenants_and_api_keys,
            template_versions_and_aliases,
            template_listing_and_isolation,
            submit_idempotency,
            submit_batch_of_500,
            concurrent_submits_of_one_key,
            claim_realtime_before_bulk_fifo,
            claim_fair_share_between_tenants,
            claim_respects_max_running,
            claim_respects_not_before_and_deadline,
            claim_needs_a_registered_idle_worker,
            complete_with_fences,
            fail_retries_and_budgets,
            heartbeat_renews_and_stops,
            cancel_in_every_state,
            sweep_expired_leases_deadlines_and_workers,
            register_with_new_boot_requeues,
            deregister_requeues_without_charging,
            list_jobs_pagination_and_filter,
            stats_counts,
            outbox_order,
            concurrent_claims_claim_each_job_once,
            lifecycle_timing,
            leftovers_of_finished_renders,
            metadata_and_callback_outbox,
        );
    };
}

all_scenarios!(sqlite, super::sqlite_store());
all_scenarios!(postgres, super::pg_store());

/// The in-memory database works for quick tests.
#[tokio::test]
async fn sqlite_in_memory_opens() {
    let store: DynStore = Arc::new(
        SqliteStore::open("sqlite::memory:")
            .await
            .expect("in-memory store"),
    );
    let t = tenant(&store, "mem", 2).await;
    let job = submit_one(&store, new_job(&t, "k", Lane::Bulk)).await;
    assert_eq!(
        store.job(None, &job.id).await.expect("read").map(|j| j.id),
        Some(job.id)
    );
}

/// A second open of the same file finds the schema and the data.
#[tokio::test]
async fn sqlite_reopen_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("farm.db").display());
    let id = {
        let store = SqliteStore::open(&url).await.expect("open");
        let store: DynStore = Arc::new(store);
        let t = tenant(&store, "acme", 2).await;
        submit_one(&store, new_job(&t, "k", Lane::Bulk)).await.id
    };
    let store = SqliteStore::open(&url).await.expect("reopen");
    let store: DynStore = Arc::new(store);
    assert!(store.job(None, &id).await.expect("read").is_some());
}

/// A database written by the previous schema version is upgraded when opened.
#[tokio::test]
async fn sqlite_version_1_database_is_upgraded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("farm.db").display());
    let id = {
        let store: DynStore = Arc::new(SqliteStore::open(&url).await.expect("open"));
        let t = tenant(&store, "acme", 2).await;
        submit_one(&store, new_job(&t, "k", Lane::Bulk)).await.id
    };
    // Back to what version 1 wrote.
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "DROP TABLE outbox_cursors; DROP INDEX outputs_job; \
         ALTER TABLE jobs DROP COLUMN stream_attempt_id; ALTER TABLE jobs DROP COLUMN metadata_json; \
         ALTER TABLE jobs DROP COLUMN callback_url; \
         DROP INDEX jobs_list; CREATE INDEX jobs_list ON jobs (tenant_id, created_ms, id); \
         UPDATE schema_version SET version = 1",
    )
    .execute(&mut c)
    .await
    .expect("downgrade");
    drop(c);
    let store: DynStore = Arc::new(SqliteStore::open(&url).await.expect("reopen"));
    let job = store.job(None, &id).await.expect("read").expect("job kept");
    assert!(job.metadata.is_empty() && job.callback_url.is_empty());
    store
        .set_cursor("output-cleanup", 7)
        .await
        .expect("cursor table");
    assert_eq!(store.cursor("output-cleanup").await.expect("cursor"), 7);
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn tenant(store: &DynStore, name: &str, max_running: u32) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    store
        .create_tenant(&Tenant {
            id: id.clone(),
            name: name.to_owned(),
            max_running,
            created_ms: NOW,
        })
        .await
        .expect("create tenant");
    id
}

fn new_job(tenant_id: &str, key: &str, lane: Lane) -> NewJob {
    NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_owned(),
        idempotency_key: key.to_owned(),
        request_hash: format!("hash-{key}"),
        template_name: "promo".into(),
        template_version: 1,
        template_digest: "d1".into(),
        lang: "en".into(),
        tokens: BTreeMap::from([("first_name".to_owned(), "Ada".to_owned())]),
        preset: "720p".into(),
        lane,
        created_ms: NOW,
        deadline_ms: NOW + HOUR,
        metadata: BTreeMap::new(),
        callback_url: String::new(),
    }
}

async fn submit_one(store: &DynStore, j: NewJob) -> Job {
    match store.submit(&[j]).await.expect("submit").pop() {
        Some(Submitted::Created(job)) => job,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn worker_named(store: &DynStore, name: &str, boot: &str, now: Millis) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    store
        .register_worker(
            &WorkerRecord {
                id: id.clone(),
                name: name.to_owned(),
                boot_id: boot.to_owned(),
                capabilities_json: "{}".into(),
                slots: 4,
                registered_ms: now,
                last_seen_ms: now,
                draining: false,
            },
            &RETRY,
        )
        .await
        .expect("register worker");
    id
}

async fn worker(store: &DynStore, name: &str) -> String {
    worker_named(store, name, "boot-1", NOW).await
}

async fn claim(store: &DynStore, worker_id: &str, max: u32, now: Millis) -> Vec<Claim> {
    store
        .claim(worker_id, max, now, &LEASE)
        .await
        .expect("claim")
}

async fn claim_one(store: &DynStore, worker_id: &str, now: Millis) -> Claim {
    let mut got = claim(store, worker_id, 1, now).await;
    assert_eq!(got.len(), 1, "expected one claim");
    got.remove(0)
}

async fn get_job(store: &DynStore, id: &str) -> Job {
    store
        .job(None, id)
        .await
        .expect("read job")
        .expect("job exists")
}

fn progress(fence: &Fence, p: f32, stage: &str) -> AttemptProgress {
    AttemptProgress {
        fence: fence.clone(),
        progress: p,
        stage: stage.to_owned(),
    }
}

fn file(key: &str, bytes: u64) -> OutputFile {
    OutputFile {
        blob_key: key.to_owned(),
        bytes,
        sha256: format!("sha-{key}"),
    }
}

fn is_stale(r: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::StaleFence { .. }))
}

async fn complete(store: &DynStore, fence: &Fence, now: Millis) -> Completed {
    store
        .complete(fence, &[], &BTreeMap::new(), now)
        .await
        .expect("complete")
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn tenants_and_api_keys(store: DynStore) {
    let id = tenant(&store, "acme", 4).await;
    let t = store
        .tenant_by_name("acme")
        .await
        .expect("by name")
        .expect("found");
    assert_eq!(
        (t.id.as_str(), t.max_running, t.created_ms),
        (id.as_str(), 4, NOW)
    );
    assert!(store
        .tenant_by_name("nope")
        .await
        .expect("by name")
        .is_none());

    let dup = store
        .create_tenant(&Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            name: "acme".into(),
            max_running: 1,
            created_ms: NOW,
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists { .. })),
        "{dup:?}"
    );

    store
        .add_api_key(&id, "hash-1", NOW)
        .await
        .expect("add key");
    store
        .add_api_key(&id, "hash-2", NOW)
        .await
        .expect("add second key");
    let by_key = store.tenant_by_key("hash-2").await.expect("by key");
    assert_eq!(by_key, Some(t));
    assert!(store
        .tenant_by_key("hash-3")
        .await
        .expect("by key")
        .is_none());
    let dup_key = store.add_api_key(&id, "hash-1", NOW).await;
    assert!(
        matches!(dup_key, Err(StoreError::AlreadyExists { .. })),
        "{dup_key:?}"
    );
    let orphan = store.add_api_key("no-such-tenant", "hash-9", NOW).await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );

    // Keys are listed by id (a prefix of the hash) and revoked by it, for their tenant only.
    let long = "0123456789abcdef".repeat(4);
    store
        .add_api_key(&id, &long, NOW + 1)
        .await
        .expect("add long");
    let keys = store.api_keys(&id).await.expect("keys");
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["hash-1", "hash-2", "0123456789abcdef"]);
    let other = tenant(&store, "other", 1).await;
    assert_eq!(
        store
            .revoke_api_key(&other, "0123456789abcdef")
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        store
            .revoke_api_key(&id, "0123456789abcdef")
            .await
            .expect("revoke"),
        1
    );
    assert!(store.tenant_by_key(&long).await.expect("by key").is_none());
    assert_eq!(
        store
            .revoke_api_key(&id, "0123456789abcdef")
            .await
            .expect("again"),
        0
    );
    assert_eq!(store.api_keys(&id).await.expect("keys").len(), 2);
    assert_eq!(
        store
            .tenant_by_id(&id)
            .await
            .expect("by id")
            .map(|t| t.name),
        Some("acme".into())
    );
    assert!(store.tenant_by_id("nope").await.expect("by id").is_none());
}

/// Metadata and callback URLs are stored with the render; the callback outbox carries only
/// the renders that have one.
async fn metadata_and_callback_outbox(store: DynStore) {
    let t = tenant(&store, "acme", 4).await;
    let mut labelled = new_job(&t, "labelled", Lane::Realtime);
    labelled.metadata = BTreeMap::from([("order_id".to_owned(), "4711".to_owned())]);
    labelled.callback_url = "https://hooks.example.com/r".into();
    let labelled = submit_one(&store, labelled).await;
    let plain = submit_one(&store, new_job(&t, "plain", Lane::Realtime)).await;
    let read = get_job(&store, &labelled.id).await;
    assert_eq!(
        read.metadata.get("order_id").map(String::as_str),
        Some("4711")
    );
    assert_eq!(read.callback_url, "https://hooks.example.com/r");
    assert!(get_job(&store, &plain.id).await.metadata.is_empty());
    for id in [&plain.id, &labelled.id] {
        store.cancel(&t, id, NOW + 1).await.expect("cancel");
    }
    assert_eq!(
        store.outbox_after(None, 0, 10).await.expect("outbox").len(),
        2
    );
    let callbacks = store
        .callback_outbox_after(None, 0, 10)
        .await
        .expect("callbacks");
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].job_id, labelled.id);
    let mine = store
        .callback_outbox_after(Some(&t), 0, 10)
        .await
        .expect("callbacks");
    assert_eq!(mine.len(), 1);
    assert!(store
        .callback_outbox_after(Some("someone-else"), 0, 10)
        .await
        .expect("callbacks")
        .is_empty());
    assert!(store
        .callback_outbox_after(None, callbacks[0].seq, 10)
        .await
        .expect("callbacks")
        .is_empty());
}

fn new_template(tenant_id: &str, name: &str, digest: &str) -> NewTemplate {
    NewTemplate {
        tenant_id: tenant_id.to_owned(),
        name: name.to_owned(),
        digest: digest.to_owned(),
        size_bytes: 1234,
        manifest_json: format!("{{\"name\":\"{name}\"}}"),
        blob_key: format!("templates/{name}/{digest}.tar.gz"),
        created_ms: NOW,
    }
}

async fn template_versions_and_aliases(store: DynStore) {
    let t = tenant(&store, "acme", 4).await;
    let (v1, created) = store
        .insert_template(&new_template(&t, "promo", "aaa"))
        .await
        .expect("v1");
    assert!(created);
    assert_eq!(
        (v1.version, v1.digest.as_str(), v1.size_bytes),
        (1, "aaa", 1234)
    );
    let (v2, created) = store
        .insert_template(&new_template(&t, "promo", "bbb"))
        .await
        .expect("v2");
    assert!(created);
    assert_eq!(v2.version, 2);
    let (again, created) = store
        .insert_template(&new_template(&t, "promo", "aaa"))
        .await
        .expect("same digest");
    assert!(!created, "same digest must not make a version");
    assert_eq!(again, v1);

    let live = store
        .set_alias(&t, "promo", "live", 1)
        .await
        .expect("alias");
    assert_eq!(
        (live.version, live.aliases.clone()),
        (1, vec!["live".to_owned()])
    );
    let both = store
        .set_alias(&t, "promo", "canary", 1)
        .await
        .expect("alias");
    assert_eq!(both.aliases, vec!["canary".to_owned(), "live".to_owned()]);
    let missing = store.set_alias(&t, "promo", "live", 9).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    let resolve = |r: TemplateRef| {
        let store = store.clone();
        let t = t.clone();
        async move { store.template(&t, &r).await.expect("resolve") }
    };
    let latest = resolve(TemplateRef::Latest("promo".into()))
        .await
        .expect("latest");
    assert_eq!((latest.version, latest.aliases.len()), (2, 0));
    let at1 = resolve(TemplateRef::Version("promo".into(), 1))
        .await
        .expect("v1");
    assert_eq!(at1.aliases, vec!["canary".to_owned(), "live".to_owned()]);
    let alias = resolve(TemplateRef::Alias("promo".into(), "live".into()))
        .await
        .expect("alias");
    assert_eq!(alias.version, 1);

    // Moving an alias.
    let moved = store.set_alias(&t, "promo", "live", 2).await.expect("move");
    assert_eq!(
        (moved.version, moved.aliases.clone()),
        (2, vec!["live".to_owned()])
    );
    let alias = resolve(TemplateRef::Alias("promo".into(), "live".into()))
        .await
        .expect("alias");
    assert_eq!(alias.version, 2);
    let v1_now = resolve(TemplateRef::Version("promo".into(), 1))
        .await
        .expect("v1");
    assert_eq!(v1_now.aliases, vec!["canary".to_owned()]);

    assert!(resolve(TemplateRef::Version("promo".into(), 3))
        .await
        .is_none());
    assert!(resolve(TemplateRef::Alias("promo".into(), "nope".into()))
        .await
        .is_none());
    assert!(resolve(TemplateRef::Latest("other".into())).await.is_none());
}

async fn template_listing_and_isolation(store: DynStore) {
    let a = tenant(&store, "acme", 4).await;
    let b = tenant(&store, "bolt", 4).await;
    for name in ["delta", "alpha", "charlie", "bravo"] {
        store
            .insert_template(&new_template(&a, name, &format!("{name}-1")))
            .await
            .expect("insert");
    }
    store
        .insert_template(&new_template(&a, "bravo", "bravo-2"))
        .await
        .expect("insert");
    store
        .set_alias(&a, "bravo", "live", 2)
        .await
        .expect("alias");

    let page1 = store.list_templates(&a, None, 3).await.expect("list");
    let names: Vec<_> = page1.iter().map(|r| (r.name.as_str(), r.version)).collect();
    assert_eq!(names, vec![("alpha", 1), ("bravo", 2), ("charlie", 1)]);
    assert_eq!(page1[1].aliases, vec!["live".to_owned()]);
    assert!(page1[0].aliases.is_empty());
    let page2 = store
        .list_templates(&a, Some("charlie"), 3)
        .await
        .expect("list");
    let names: Vec<_> = page2.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["delta"]);
    assert!(store
        .list_templates(&a, Some("delta"), 3)
        .await
        .expect("list")
        .is_empty());

    // Tenant B sees nothing of A's, and versions its own names from 1.
    assert!(store
        .list_templates(&b, None, 10)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .template(&b, &TemplateRef::Latest("alpha".into()))
        .await
        .expect("resolve")
        .is_none());
    let bad_alias = store.set_alias(&b, "bravo", "live", 1).await;
    assert!(
        matches!(bad_alias, Err(StoreError::NotFound { .. })),
        "{bad_alias:?}"
    );
    let (own, created) = store
        .insert_template(&new_template(&b, "bravo", "bravo-2"))
        .await
        .expect("insert");
    assert!(created);
    assert_eq!((own.version, own.tenant_id.as_str()), (1, b.as_str()));
}

async fn submit_idempotency(store: DynStore) {
    let a = tenant(&store, "acme", 4).await;
    let b = tenant(&store, "bolt", 4).await;
    let first = new_job(&a, "order-1", Lane::Realtime);
    let created = submit_one(&store, first.clone()).await;
    assert_eq!(created.state, JobState::Queued);
    assert_eq!(created.tokens, first.tokens);
    assert_eq!(
        get_job(&store, &created.id).await,
        created,
        "returned = stored"
    );

    // Same key, same hash: the existing render, even with a fresh id.
    let mut retry = first.clone();
    retry.id = uuid::Uuid::new_v4().to_string();
    let mut changed = first.clone();
    changed.id = uuid::Uuid::new_v4().to_string();
    changed.request_hash = "other".into();
    let same_key_b = new_job(&b, "order-1", Lane::Realtime);
    let got = store
        .submit(&[retry, changed, same_key_b.clone()])
        .await
        .expect("submit");
    assert_eq!(got[0], Submitted::Existing(created.clone()));
    assert_eq!(
        got[1],
        Submitted::Conflict {
            existing_id: created.id.clone()
        }
    );
    assert!(matches!(&got[2], Submitted::Created(j) if j.id == same_key_b.id));

    // Tenant filter on reads.
    assert!(store
        .job(Some(&b), &created.id)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .job(Some(&a), &created.id)
        .await
        .expect("read")
        .is_some());

    let orphan = store
        .submit(&[new_job("no-such-tenant", "k", Lane::Bulk)])
        .await;
    assert!(orphan.is_err(), "a render of an unknown tenant: {orphan:?}");
}

async fn submit_batch_of_500(store: DynStore) {
    let a = tenant(&store, "acme", 4).await;
    let batch: Vec<NewJob> = (0..500)
        .map(|i| new_job(&a, &format!("batch-{i}"), Lane::Bulk))
        .collect();
    let got = store.submit(&batch).await.expect("batch");
    assert_eq!(got.len(), 500);
    assert!(got.iter().all(|s| matches!(s, Submitted::Created(_))));
    assert_eq!(store.stats().await.expect("stats").queued, [0, 500]);
    // Resubmitting the batch creates nothing.
    let again = store.submit(&batch).await.expect("batch again");
    assert!(again.iter().all(|s| matches!(s, Submitted::Existing(_))));
    assert_eq!(store.stats().await.expect("stats").queued, [0, 500]);
}

async fn concurrent_submits_of_one_key(store: DynStore) {
    let a = tenant(&store, "acme", 4).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let j = new_job(&a, "same-key", Lane::Realtime);
        tasks.push(tokio::spawn(async move { store.submit(&[j]).await }));
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.expect("task").expect("submit must not fail").pop() {
            Some(Submitted::Created(j)) => created.push(j.id),
            Some(Submitted::Existing(j)) => existing.push(j.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one submit creates the render");
    assert_eq!(existing.len(), 7);
    assert!(existing.iter().all(|id| *id == created[0]));
}

async fn claim_realtime_before_bulk_fifo(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let b1 = submit_one(&store, new_job(&a, "b1", Lane::Bulk)).await;
    let b2 = submit_one(&store, new_job(&a, "b2", Lane::Bulk)).await;
    let r1 = submit_one(&store, new_job(&a, "r1", Lane::Realtime)).await;
    let b3 = submit_one(&store, new_job(&a, "b3", Lane::Bulk)).await;
    let r2 = submit_one(&store, new_job(&a, "r2", Lane::Realtime)).await;

    let first = claim_one(&store, &w, NOW).await;
    assert_eq!(first.job.id, r1.id);
    assert_eq!(first.job.state, JobState::Running);
    assert_eq!((first.job.lease_epoch, first.job.attempts), (1, 1));
    assert_eq!(first.job.worker_id, w);
    assert_eq!(first.job.lease_expires_ms, NOW + 30_000);
    assert_eq!(first.fence.attempt_id, first.job.attempt_id);
    assert_eq!(first.fence.epoch, 1);
    assert!(!first.fence.attempt_id.is_empty());
    assert_eq!(
        get_job(&store, &r1.id).await,
        first.job,
        "returned = stored"
    );

    let rest: Vec<String> = claim(&store, &w, 10, NOW)
        .await
        .into_iter()
        .map(|c| c.job.id)
        .collect();
    assert_eq!(rest, vec![r2.id, b1.id, b2.id, b3.id]);
    assert!(claim(&store, &w, 10, NOW).await.is_empty());
    assert_eq!(store.stats().await.expect("stats").running, 5);
}

async fn claim_fair_share_between_tenants(store: DynStore) {
    // Names sort a < b; ids are random, so compare through the claims' tenants.
    let a = tenant(&store, "acme", 10).await;
    let b = tenant(&store, "bolt", 10).await;
    let w = worker(&store, "w1").await;
    for i in 0..4 {
        submit_one(&store, new_job(&a, &format!("a{i}"), Lane::Bulk)).await;
    }
    let a_first = claim_one(&store, &w, NOW).await;
    assert_eq!(a_first.job.tenant_id, a, "only A has work");
    for i in 0..4 {
        submit_one(&store, new_job(&b, &format!("b{i}"), Lane::Bulk)).await;
    }
    // A runs 1, B runs 0: B first, then the tie (1, 1) goes by tenant id, then the other.
    let next = claim_one(&store, &w, NOW).await;
    assert_eq!(
        next.job.tenant_id, b,
        "tenant with fewer running renders first"
    );
    let (lo, hi) = if a < b { (&a, &b) } else { (&b, &a) };
    let third = claim_one(&store, &w, NOW).await;
    assert_eq!(&third.job.tenant_id, lo);
    let fourth = claim_one(&store, &w, NOW).await;
    assert_eq!(&fourth.job.tenant_id, hi);
    // Completing one of A's renders makes A the one with fewer running.
    let a_claim = if third.job.tenant_id == a {
        &third
    } else {
        &fourth
    };
    complete(&store, &a_claim.fence, NOW).await;
    let fifth = claim_one(&store, &w, NOW).await;
    assert_eq!(fifth.job.tenant_id, a);

    // Real-time work of the busier tenant still beats bulk work of the idler one.
    let rt = submit_one(&store, new_job(&b, "b-rt", Lane::Realtime)).await;
    let sixth = claim_one(&store, &w, NOW).await;
    assert_eq!(sixth.job.id, rt.id);
}

async fn claim_respects_max_running(store: DynStore) {
    let a = tenant(&store, "acme", 2).await;
    let b = tenant(&store, "bolt", 5).await;
    let w = worker(&store, "w1").await;
    for i in 0..5 {
        submit_one(&store, new_job(&a, &format!("a{i}"), Lane::Realtime)).await;
    }
    let first = claim(&store, &w, 5, NOW).await;
    assert_eq!(first.len(), 2, "cap of 2");
    assert!(claim(&store, &w, 5, NOW).await.is_empty());
    // Another tenant is not held back by A's cap.
    let bj = submit_one(&store, new_job(&b, "b0", Lane::Bulk)).await;
    let got = claim(&store, &w, 5, NOW).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.id, bj.id);
    // Finishing one of A's frees one slot.
    complete(&store, &first[0].fence, NOW).await;
    let got = claim(&store, &w, 5, NOW).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.tenant_id, a);
    assert!(claim(&store, &w, 5, NOW).await.is_empty());
}

async fn claim_respects_not_before_and_deadline(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let mut late = new_job(&a, "late", Lane::Realtime);
    late.deadline_ms = NOW;
    submit_one(&store, late).await;
    let ok = submit_one(&store, new_job(&a, "ok", Lane::Bulk)).await;
    let c = claim_one(&store, &w, NOW).await;
    assert_eq!(c.job.id, ok.id, "a render past its deadline is not claimed");
    // A retry with backoff is not claimable before not_before.
    let f = store
        .fail(
            &c.fence,
            FailureClass::Application,
            "boom",
            NOW,
            &RETRY,
            1.0,
        )
        .await
        .expect("fail");
    let Failed::Requeued(j) = f else {
        panic!("expected Requeued, got {f:?}")
    };
    assert_eq!(j.not_before_ms, NOW + 2_000);
    assert!(claim(&store, &w, 5, NOW + 1_999).await.is_empty());
    let again = claim_one(&store, &w, NOW + 2_000).await;
    assert_eq!(
        (again.job.id.as_str(), again.job.lease_epoch),
        (ok.id.as_str(), 2)
    );
}

async fn claim_needs_a_registered_idle_worker(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    submit_one(&store, new_job(&a, "k", Lane::Bulk)).await;
    assert!(claim(&store, "no-such-worker", 5, NOW).await.is_empty());
    let w = worker(&store, "w1").await;
    assert!(store.set_draining(&w, true).await.expect("drain"));
    assert!(
        store
            .worker(&w)
            .await
            .expect("worker")
            .expect("exists")
            .draining
    );
    assert!(claim(&store, &w, 5, NOW).await.is_empty(), "draining");
    assert!(!store
        .set_draining("nope", true)
        .await
        .expect("drain unknown"));
    assert!(store.set_draining(&w, false).await.expect("undrain"));
    assert_eq!(claim(&store, &w, 5, NOW).await.len(), 1);
    assert!(claim(&store, &w, 0, NOW).await.is_empty());
}

async fn complete_with_fences(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let job = submit_one(&store, new_job(&a, "k", Lane::Realtime)).await;
    let c = claim_one(&store, &w, NOW).await;
    let video = file("video-1", 1000);
    store
        .record_output(&c.fence, ArtifactKind::Video, &file("video-0", 1))
        .await
        .expect("output");
    store
        .record_output(&c.fence, ArtifactKind::Video, &video)
        .await
        .expect("replace output");
    store
        .record_output(&c.fence, ArtifactKind::Poster, &file("poster-1", 10))
        .await
        .expect("poster");
    // A fence with an old epoch is stale.
    let old_epoch = Fence {
        epoch: c.fence.epoch - 1,
        ..c.fence.clone()
    };
    assert!(is_stale(
        &store
            .record_output(&old_epoch, ArtifactKind::Video, &video)
            .await
    ));
    assert!(is_stale(
        &store.complete(&old_epoch, &[], &BTreeMap::new(), NOW).await
    ));

    let stages = BTreeMap::from([("encode".to_owned(), 1.5), ("render".to_owned(), 0.25)]);
    let warnings = vec!["font fallback".to_owned()];
    let done = store
        .complete(&c.fence, &warnings, &stages, NOW + 500)
        .await
        .expect("complete");
    let Completed::Committed(j) = done else {
        panic!("expected Committed, got {done:?}")
    };
    assert_eq!(j.state, JobState::Succeeded);
    assert_eq!(j.finished_ms, NOW + 500);
    assert_eq!((j.worker_id.as_str(), j.lease_expires_ms), ("", 0));
    assert_eq!(j.warnings, warnings);
    let out = j.output.clone().expect("output");
    assert_eq!(out.attempt_id, c.fence.attempt_id);
    assert_eq!(out.video, Some(video.clone()));
    assert_eq!(out.poster, Some(file("poster-1", 10)));
    assert_eq!(out.stage_seconds, stages);
    assert_eq!(get_job(&store, &job.id).await, j, "returned = stored");

    let events = store.outbox_after(None, 0, 10).await.expect("outbox");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].job_id.as_str(),
            events[0].tenant_id.as_str(),
            events[0].state
        ),
        (job.id.as_str(), a.as_str(), JobState::Succeeded)
    );

    // The worker resends its completion: a duplicate, nothing changes.
    let again = store
        .complete(&c.fence, &[], &BTreeMap::new(), NOW + 900)
        .await
        .expect("resend");
    assert_eq!(again, Completed::Duplicate(j.clone()));
    assert_eq!(
        store.outbox_after(None, 0, 10).await.expect("outbox").len(),
        1
    );
    // Outputs after the commit are stale; so is failing the committed attempt.
    assert!(is_stale(
        &store
            .record_output(&c.fence, ArtifactKind::Video, &file("late", 1))
            .await
    ));
    assert!(is_stale(
        &store
            .fail(&c.fence, FailureClass::Application, "x", NOW, &RETRY, 1.0)
            .await
    ));
    let unknown = Fence {
        job_id: "no-such-job".into(),
        ..c.fence.clone()
    };
    let missing = store.complete(&unknown, &[], &BTreeMap::new(), NOW).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(store.stats().await.expect("stats").running, 0);
}

async fn fail_retries_and_budgets(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;

    // Application failures: two retries with growing backoff, then final.
    let job = submit_one(&store, new_job(&a, "app", Lane::Realtime)).await;
    let mut now = NOW;
    let mut expected_backoff = [2_000, 4_000].into_iter();
    for attempt in 1..=3u32 {
        let c = claim_one(&store, &w, now).await;
        assert_eq!(c.job.id, job.id);
        assert_eq!(
            (c.job.attempts, c.job.lease_epoch),
            (attempt, u64::from(attempt))
        );
        let f = store
            .fail(
                &c.fence,
                FailureClass::Application,
                "decoder crashed",
                now,
                &RETRY,
                1.0,
            )
            .await
            .expect("fail");
        if attempt < 3 {
            let Failed::Requeued(j) = &f else {
                panic!("attempt {attempt}: expected Requeued, got {f:?}")
            };
            let backoff = expected_backoff.next().expect("backoff");
            assert_eq!(j.state, JobState::Queued);
            assert_eq!(j.not_before_ms, now + backoff);
            assert_eq!((j.app_failures, j.infra_failures), (attempt, 0));
            assert_eq!(
                j.failure,
                Some((FailureClass::Application, "decoder crashed".to_owned()))
            );
            assert_eq!(j.worker_id, "");
            // A resent Fail of the same attempt is a duplicate.
            let again = store
                .fail(
                    &c.fence,
                    FailureClass::Application,
                    "decoder crashed",
                    now,
                    &RETRY,
                    1.0,
                )
                .await
                .expect("resend");
            assert_eq!(again, Failed::Duplicate(j.clone()));
            now = j.not_before_ms;
        } else {
            let Failed::Failed(j) = &f else {
                panic!("expected Failed, got {f:?}")
            };
            assert_eq!(
                (j.state, j.app_failures, j.finished_ms),
                (JobState::Failed, 3, now)
            );
            assert!(matches!(
                store
                    .fail(
                        &c.fence,
                        FailureClass::Application,
                        "again",
                        now,
                        &RETRY,
                        1.0
                    )
                    .await,
                Ok(Failed::Duplicate(_))
            ));
        }
    }

    // Invalid input fails at once; messages are cut to 2000 characters.
    let bad = submit_one(&store, new_job(&a, "bad", Lane::Realtime)).await;
    let c = claim_one(&store, &w, now).await;
    assert_eq!(c.job.id, bad.id);
    let long = "x".repeat(5000);
    let f = store
        .fail(
            &c.fence,
            FailureClass::InvalidInput,
            &long,
            now,
            &RETRY,
            1.0,
        )
        .await
        .expect("fail");
    let Failed::Failed(j) = f else {
        panic!("expected Failed, got {f:?}")
    };
    let (class, message) = j.failure.clone().expect("failure");
    assert_eq!((class, message.len()), (FailureClass::InvalidInput, 2000));
    assert_eq!(j.attempts, 1);

    // The infrastructure budget is separate from the application one.
    let mixed = submit_one(&store, new_job(&a, "mixed", Lane::Realtime)).await;
    let mut first_fence = None;
    for _ in 0..2 {
        let c = claim_one(&store, &w, now).await;
        first_fence.get_or_insert(c.fence.clone());
        let f = store
            .fail(&c.fence, FailureClass::Application, "app", now, &RETRY, 0.0)
            .await
            .expect("fail");
        assert!(matches!(f, Failed::Requeued(_)), "{f:?}");
    }
    for i in 1..=5u32 {
        let c = claim_one(&store, &w, now).await;
        assert_eq!(c.job.id, mixed.id);
        let f = store
            .fail(
                &c.fence,
                FailureClass::Infrastructure,
                "gpu lost",
                now,
                &RETRY,
                0.0,
            )
            .await
            .expect("fail");
        let Failed::Requeued(j) = f else {
            panic!("infra failure {i} should retry, got {f:?}")
        };
        assert_eq!((j.app_failures, j.infra_failures), (2, i));
        assert_eq!(j.not_before_ms, now, "jitter 0: no wait");
    }
    let c = claim_one(&store, &w, now).await;
    let f = store
        .fail(
            &c.fence,
            FailureClass::Infrastructure,
            "gpu lost",
            now,
            &RETRY,
            0.0,
        )
        .await
        .expect("fail");
    assert!(
        matches!(&f, Failed::Failed(j) if j.infra_failures == 6),
        "{f:?}"
    );

    // Stale and unknown fences: an earlier attempt whose failure is no longer the last one,
    // and an attempt that never was.
    let first_fence = first_fence.expect("first attempt");
    assert!(is_stale(
        &store
            .fail(
                &first_fence,
                FailureClass::Application,
                "x",
                now,
                &RETRY,
                1.0
            )
            .await
    ));
    let never = Fence {
        attempt_id: uuid::Uuid::new_v4().to_string(),
        epoch: 99,
        ..c.fence.clone()
    };
    assert!(is_stale(
        &store
            .fail(&never, FailureClass::Application, "x", now, &RETRY, 1.0)
            .await
    ));
    let unknown = Fence {
        job_id: "no-such-job".into(),
        ..c.fence.clone()
    };
    let missing = store
        .fail(&unknown, FailureClass::Application, "x", now, &RETRY, 1.0)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    let failed: Vec<_> = store
        .outbox_after(None, 0, 100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|e| (e.job_id, e.state))
        .collect();
    assert_eq!(
        failed,
        vec![
            (job.id, JobState::Failed),
            (bad.id, JobState::Failed),
            (mixed.id, JobState::Failed)
        ]
    );
}

async fn heartbeat_renews_and_stops(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let other = worker(&store, "w2").await;
    for i in 0..3 {
        submit_one(&store, new_job(&a, &format!("k{i}"), Lane::Bulk)).await;
    }
    let claims = claim(&store, &w, 3, NOW).await;
    assert_eq!(claims.len(), 3);
    let (c0, c1, c2) = (&claims[0], &claims[1], &claims[2]);

    let later = NOW + 5_000;
    let beat = store
        .heartbeat(&w, &[progress(&c0.fence, 0.5, "encode")], later, &LEASE)
        .await
        .expect("beat");
    assert!(!beat.unknown_worker && !beat.draining);
    assert_eq!(beat.renewed, vec![c0.fence.clone()]);
    assert!(beat.stop.is_empty());
    let j0 = get_job(&store, &c0.job.id).await;
    assert_eq!(j0.lease_expires_ms, later + 30_000, "lease moved");
    assert_eq!((j0.progress, j0.stage.as_str()), (0.5, "encode"));
    assert_eq!(
        store
            .worker(&w)
            .await
            .expect("worker")
            .expect("exists")
            .last_seen_ms,
        later
    );

    // Cancelled render, a fence with a wrong epoch, and another worker's attempt: stop.
    store.cancel(&a, &c1.job.id, later).await.expect("cancel");
    let wrong_epoch = Fence {
        epoch: c2.fence.epoch + 1,
        ..c2.fence.clone()
    };
    assert!(store.set_draining(&w, true).await.expect("drain"));
    let beat = store
        .heartbeat(
            &w,
            &[
                progress(&c0.fence, 0.6, "encode"),
                progress(&c1.fence, 0.1, "render"),
                progress(&wrong_epoch, 0.1, "render"),
            ],
            later + 5_000,
            &LEASE,
        )
        .await
        .expect("beat");
    assert!(beat.draining);
    assert_eq!(beat.renewed, vec![c0.fence.clone()]);
    assert_eq!(beat.stop, vec![c1.fence.clone(), wrong_epoch]);
    let foreign = store
        .heartbeat(&other, &[progress(&c2.fence, 0.2, "x")], later, &LEASE)
        .await
        .expect("beat");
    assert_eq!(foreign.stop, vec![c2.fence.clone()]);
    assert_eq!(
        get_job(&store, &c2.job.id).await.lease_expires_ms,
        NOW + 30_000,
        "another worker's heartbeat renews nothing"
    );

    let unknown = store
        .heartbeat(
            "no-such-worker",
            &[progress(&c0.fence, 0.7, "x"), progress(&c2.fence, 0.7, "x")],
            later,
            &LEASE,
        )
        .await
        .expect("beat");
    assert!(unknown.unknown_worker);
    assert!(unknown.renewed.is_empty());
    assert_eq!(unknown.stop, vec![c0.fence.clone(), c2.fence.clone()]);
}

async fn cancel_in_every_state(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let b = tenant(&store, "bolt", 10).await;
    let w = worker(&store, "w1").await;
    let queued = submit_one(&store, new_job(&a, "q", Lane::Realtime)).await;
    let running = submit_one(&store, new_job(&a, "r", Lane::Bulk)).await;

    // Another tenant cannot see or cancel it.
    assert!(store
        .cancel(&b, &queued.id, NOW)
        .await
        .expect("cancel")
        .is_none());
    assert!(store
        .cancel(&a, "no-such-job", NOW)
        .await
        .expect("cancel")
        .is_none());

    let q = store
        .cancel(&a, &queued.id, NOW + 1)
        .await
        .expect("cancel")
        .expect("found");
    assert_eq!((q.state, q.finished_ms), (JobState::Cancelled, NOW + 1));

    let c = claim_one(&store, &w, NOW).await;
    assert_eq!(c.job.id, running.id);
    assert_eq!(store.stats().await.expect("stats").running, 1);
    let r = store
        .cancel(&a, &running.id, NOW + 2)
        .await
        .expect("cancel")
        .expect("found");
    assert_eq!(r.state, JobState::Cancelled);
    assert_eq!(r.attempt_id, c.fence.attempt_id, "attempt kept");
    assert_eq!((r.worker_id.as_str(), r.lease_expires_ms), ("", 0));
    assert_eq!(store.stats().await.expect("stats").running, 0);
    assert!(is_stale(
        &store.complete(&c.fence, &[], &BTreeMap::new(), NOW).await
    ));
    let beat = store
        .heartbeat(&w, &[progress(&c.fence, 0.5, "x")], NOW + 3, &LEASE)
        .await
        .expect("beat");
    assert_eq!(beat.stop, vec![c.fence.clone()]);

    // Terminal: unchanged, no second outbox row.
    let again = store
        .cancel(&a, &running.id, NOW + 9)
        .await
        .expect("cancel")
        .expect("found");
    assert_eq!(again, r);
    let events = store.outbox_after(None, 0, 10).await.expect("outbox");
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.job_id.as_str(), e.state))
        .collect();
    assert_eq!(
        got,
        vec![
            (queued.id.as_str(), JobState::Cancelled),
            (running.id.as_str(), JobState::Cancelled)
        ]
    );
    // A cancelled render is never claimed.
    assert!(claim(&store, &w, 5, NOW).await.is_empty());
}

async fn sweep_expired_leases_deadlines_and_workers(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let lost = submit_one(&store, new_job(&a, "lost", Lane::Realtime)).await;
    let c = claim_one(&store, &w, NOW).await;
    assert_eq!(c.job.id, lost.id);

    // Nothing expires while the lease holds.
    let quiet = store
        .sweep(NOW + 29_999, &LEASE, &RETRY)
        .await
        .expect("sweep");
    assert!(quiet.requeued.is_empty() && quiet.failed.is_empty());
    assert_eq!(quiet.workers_removed, 0);

    // Past the lease (the worker keeps beating, but for nothing): requeued as infra failure.
    let t1 = NOW + 30_001;
    store.heartbeat(&w, &[], t1, &LEASE).await.expect("beat");
    let swept = store.sweep(t1, &LEASE, &RETRY).await.expect("sweep");
    assert_eq!(swept.requeued, vec![lost.id.clone()]);
    assert!(swept.failed.is_empty());
    let j = get_job(&store, &lost.id).await;
    assert_eq!(j.state, JobState::Queued);
    assert_eq!((j.app_failures, j.infra_failures), (0, 1));
    assert_eq!(
        j.failure,
        Some((
            FailureClass::Infrastructure,
            "lease expired on worker w1".to_owned()
        ))
    );
    assert!(j.not_before_ms >= t1 && j.not_before_ms <= t1 + 2_000);
    assert_eq!(store.stats().await.expect("stats").running, 0);

    // A new claim gets the next epoch; the old fence is stale everywhere.
    let t2 = t1 + 2_000;
    let again = claim_one(&store, &w, t2).await;
    assert_eq!(again.job.id, lost.id);
    assert_eq!(again.fence.epoch, c.fence.epoch + 1);
    assert_ne!(again.fence.attempt_id, c.fence.attempt_id);
    assert!(is_stale(
        &store.complete(&c.fence, &[], &BTreeMap::new(), t2).await
    ));
    assert!(is_stale(
        &store
            .record_output(&c.fence, ArtifactKind::Video, &file("old", 1))
            .await
    ));
    let beat = store
        .heartbeat(&w, &[progress(&c.fence, 0.1, "x")], t2, &LEASE)
        .await
        .expect("beat");
    assert_eq!(beat.stop, vec![c.fence.clone()]);
    assert!(matches!(
        complete(&store, &again.fence, t2).await,
        Completed::Committed(_)
    ));

    // Deadlines: a queued and a running render past theirs fail.
    let mut q = new_job(&a, "q-deadline", Lane::Bulk);
    q.deadline_ms = t2 + 10_000;
    let q = submit_one(&store, q).await;
    let mut r = new_job(&a, "r-deadline", Lane::Realtime);
    r.deadline_ms = t2 + 10_000;
    let r = submit_one(&store, r).await;
    let rc = claim_one(&store, &w, t2).await;
    assert_eq!(rc.job.id, r.id);
    let t3 = t2 + 10_000;
    store
        .heartbeat(&w, &[progress(&rc.fence, 0.5, "x")], t3 - 1, &LEASE)
        .await
        .expect("beat");
    let swept = store.sweep(t3, &LEASE, &RETRY).await.expect("sweep");
    let failed: HashSet<_> = swept.failed.iter().cloned().collect();
    assert_eq!(failed, HashSet::from([q.id.clone(), r.id.clone()]));
    assert!(swept.requeued.is_empty());
    for id in [&q.id, &r.id] {
        let j = get_job(&store, id).await;
        assert_eq!(j.state, JobState::Failed);
        assert_eq!(j.finished_ms, t3);
        assert_eq!(j.failure.map(|f| f.0), Some(FailureClass::DeadlineExceeded));
    }
    assert!(is_stale(
        &store.complete(&rc.fence, &[], &BTreeMap::new(), t3).await
    ));

    // Over the infrastructure budget: the sweep fails the render.
    let tight = RetryPolicy {
        infra_attempts: 0,
        ..RETRY
    };
    let doomed = submit_one(&store, new_job(&a, "doomed", Lane::Realtime)).await;
    let dc = claim_one(&store, &w, t3).await;
    assert_eq!(dc.job.id, doomed.id);
    let t4 = t3 + 30_001;
    store.heartbeat(&w, &[], t4, &LEASE).await.expect("beat");
    let swept = store.sweep(t4, &LEASE, &tight).await.expect("sweep");
    assert_eq!(swept.failed, vec![doomed.id.clone()]);
    assert_eq!(get_job(&store, &doomed.id).await.state, JobState::Failed);

    // Workers not seen for a lease TTL are removed.
    let idle = worker_named(&store, "idle", "b", t4).await;
    let swept = store
        .sweep(t4 + 30_001, &LEASE, &RETRY)
        .await
        .expect("sweep");
    assert_eq!(swept.workers_removed, 2, "w1 (last seen t4) and idle");
    assert!(store.worker(&idle).await.expect("worker").is_none());
    assert!(store.worker(&w).await.expect("worker").is_none());

    let states: Vec<_> = store
        .outbox_after(None, 0, 100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        states.len(),
        4,
        "one success and three failures: {states:?}"
    );
}

async fn register_with_new_boot_requeues(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let old = worker_named(&store, "gpu-1", "boot-a", NOW).await;
    let bystander = worker_named(&store, "gpu-2", "boot-a", NOW).await;
    for i in 0..3 {
        submit_one(&store, new_job(&a, &format!("k{i}"), Lane::Bulk)).await;
    }
    let mine = claim(&store, &old, 2, NOW).await;
    let theirs = claim_one(&store, &bystander, NOW).await;
    assert_eq!(mine.len(), 2);

    // The same process registering again (same boot) keeps its renders.
    let same_boot = worker_named(&store, "gpu-1", "boot-a", NOW + 1).await;
    assert_ne!(same_boot, old);
    assert_eq!(
        get_job(&store, &mine[0].job.id).await.state,
        JobState::Running
    );

    // A restart (new boot id) requeues the old registrations' renders.
    let now = NOW + 10;
    let id = uuid::Uuid::new_v4().to_string();
    let mut requeued = store
        .register_worker(
            &WorkerRecord {
                id: id.clone(),
                name: "gpu-1".into(),
                boot_id: "boot-b".into(),
                capabilities_json: "{}".into(),
                slots: 2,
                registered_ms: now,
                last_seen_ms: now,
                draining: false,
            },
            &RETRY,
        )
        .await
        .expect("register");
    requeued.sort();
    let mut expected: Vec<String> = mine.iter().map(|c| c.job.id.clone()).collect();
    expected.sort();
    assert_eq!(requeued, expected);
    for c in &mine {
        let j = get_job(&store, &c.job.id).await;
        assert_eq!(j.state, JobState::Queued);
        assert_eq!(j.infra_failures, 1);
        assert_eq!(
            j.failure,
            Some((
                FailureClass::Infrastructure,
                "worker gpu-1 restarted".to_owned()
            ))
        );
        assert!(is_stale(
            &store.complete(&c.fence, &[], &BTreeMap::new(), now).await
        ));
    }
    assert!(store.worker(&old).await.expect("worker").is_none());
    assert!(store.worker(&same_boot).await.expect("worker").is_none());
    assert!(store.worker(&id).await.expect("worker").is_some());
    // Other workers are untouched.
    assert!(store.worker(&bystander).await.expect("worker").is_some());
    assert_eq!(
        get_job(&store, &theirs.job.id).await.state,
        JobState::Running
    );
    assert_eq!(store.stats().await.expect("stats").running, 1);
}

async fn deregister_requeues_without_charging(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    for i in 0..2 {
        submit_one(&store, new_job(&a, &format!("k{i}"), Lane::Bulk)).await;
    }
    let claims = claim(&store, &w, 2, NOW).await;
    assert_eq!(claims.len(), 2);
    let now = NOW + 100;
    let mut ids = store.deregister_worker(&w, now).await.expect("deregister");
    ids.sort();
    let mut expected: Vec<String> = claims.iter().map(|c| c.job.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    for c in &claims {
        let j = get_job(&store, &c.job.id).await;
        assert_eq!(j.state, JobState::Queued);
        assert_eq!((j.app_failures, j.infra_failures), (0, 0), "not charged");
        assert_eq!(j.not_before_ms, now);
        assert_eq!(j.failure, None);
        assert_eq!((j.worker_id.as_str(), j.lease_expires_ms), ("", 0));
        assert!(is_stale(
            &store.complete(&c.fence, &[], &BTreeMap::new(), now).await
        ));
    }
    assert!(store.worker(&w).await.expect("worker").is_none());
    assert_eq!(store.stats().await.expect("stats").running, 0);
    assert!(store
        .deregister_worker(&w, now)
        .await
        .expect("again")
        .is_empty());
    let w2 = worker(&store, "w2").await;
    let again = claim(&store, &w2, 2, now).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.fence.epoch == 2));
}

async fn list_jobs_pagination_and_filter(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let b = tenant(&store, "bolt", 10).await;
    let w = worker(&store, "w1").await;
    let mut all = Vec::new();
    for i in 0..25 {
        let mut j = new_job(&a, &format!("k{i}"), Lane::Bulk);
        j.created_ms = NOW + (i / 3) as Millis; // ties on created_ms
        all.push(submit_one(&store, j).await);
    }
    // Running renders for the state filter below (claimed before B has work).
    let c = claim(&store, &w, 3, NOW).await;
    assert_eq!(c.len(), 3);
    submit_one(&store, new_job(&b, "other", Lane::Bulk)).await;
    // Newest first; ties on created_ms in submission order, newest first too.
    all.reverse();
    all.sort_by_key(|j| std::cmp::Reverse(j.created_ms));

    let mut seen = Vec::new();
    let mut cursor: Option<JobCursor> = None;
    loop {
        let page = store
            .list_jobs(&a, None, cursor.as_ref(), 10)
            .await
            .expect("list");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        let last = page.last().expect("last");
        cursor = Some(JobCursor {
            created_ms: last.created_ms,
            id: last.id.clone(),
        });
        seen.extend(page.into_iter().map(|j| j.id));
    }
    let expected: Vec<String> = all.iter().map(|j| j.id.clone()).collect();
    assert_eq!(seen, expected, "newest first, no gaps, no repeats");

    // State filter.
    let running = store
        .list_jobs(&a, Some(JobState::Running), None, 10)
        .await
        .expect("list");
    let mut got: Vec<_> = running.iter().map(|j| j.id.clone()).collect();
    got.sort();
    let mut want: Vec<_> = c.iter().map(|c| c.job.id.clone()).collect();
    want.sort();
    assert_eq!(got, want);
    let queued = store
        .list_jobs(&a, Some(JobState::Queued), None, 100)
        .await
        .expect("list");
    assert_eq!(queued.len(), 22);
    assert!(store
        .list_jobs(&a, Some(JobState::Failed), None, 10)
        .await
        .expect("list")
        .is_empty());
}

async fn stats_counts(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let empty = store.stats().await.expect("stats");
    assert_eq!(
        (empty.queued, empty.running, empty.workers, empty.slots),
        ([0, 0], 0, 0, 0)
    );
    let w = worker(&store, "w1").await;
    worker(&store, "w2").await;
    for i in 0..3 {
        submit_one(&store, new_job(&a, &format!("r{i}"), Lane::Realtime)).await;
    }
    for i in 0..4 {
        submit_one(&store, new_job(&a, &format!("b{i}"), Lane::Bulk)).await;
    }
    claim(&store, &w, 4, NOW).await;
    let s = store.stats().await.expect("stats");
    assert_eq!((s.queued, s.running, s.workers, s.slots), ([0, 3], 4, 2, 8));
}

async fn outbox_order(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            submit_one(&store, new_job(&a, &format!("k{i}"), Lane::Bulk))
                .await
                .id,
        );
    }
    let claims = claim(&store, &w, 4, NOW).await;
    // Terminal transitions in a known order: complete, cancel (queued), fail, complete.
    complete(&store, &claims[1].fence, NOW).await;
    store.cancel(&a, &ids[5], NOW).await.expect("cancel");
    store
        .fail(
            &claims[0].fence,
            FailureClass::InvalidInput,
            "bad",
            NOW,
            &RETRY,
            1.0,
        )
        .await
        .expect("fail");
    complete(&store, &claims[3].fence, NOW).await;
    let events = store.outbox_after(None, 0, 100).await.expect("outbox");
    let got: Vec<_> = events.iter().map(|e| (e.job_id.clone(), e.state)).collect();
    assert_eq!(
        got,
        vec![
            (claims[1].job.id.clone(), JobState::Succeeded),
            (ids[5].clone(), JobState::Cancelled),
            (claims[0].job.id.clone(), JobState::Failed),
            (claims[3].job.id.clone(), JobState::Succeeded),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let tail = store
        .outbox_after(None, events[1].seq, 1)
        .await
        .expect("outbox");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0], events[2]);
    assert!(store
        .outbox_after(None, events[3].seq, 10)
        .await
        .expect("outbox")
        .is_empty());
}

async fn concurrent_claims_claim_each_job_once(store: DynStore) {
    let a = tenant(&store, "acme", 1_000).await;
    let batch: Vec<NewJob> = (0..200)
        .map(|i| new_job(&a, &format!("c{i}"), Lane::Bulk))
        .collect();
    store.submit(&batch).await.expect("submit");
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let w = worker(&store, &format!("w{t}")).await;
            let mut mine = Vec::new();
            loop {
                let got = store.claim(&w, 3, NOW, &LEASE).await.expect("claim");
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.job.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 200, "every render claimed");
    assert_eq!(distinct.len(), 200, "no render claimed twice");
    assert_eq!(store.stats().await.expect("stats").running, 200);
}

/// Prints the time of one submit → claim → complete cycle (no assertion on it).
async fn lifecycle_timing(store: DynStore) {
    let a = tenant(&store, "acme", 1_000).await;
    let w = worker(&store, "w1").await;
    let n = if store.backend() == "sqlite" {
        2_000
    } else {
        500
    };
    let start = Instant::now();
    for i in 0..n {
        submit_one(&store, new_job(&a, &format!("t{i}"), Lane::Realtime)).await;
        let c = claim_one(&store, &w, NOW).await;
        store
            .record_output(&c.fence, ArtifactKind::Video, &file(&format!("v{i}"), 1))
            .await
            .expect("output");
        complete(&store, &c.fence, NOW).await;
    }
    let per = start.elapsed() / n;
    println!(
        "{}: {per:?} per submit+claim+record_output+complete cycle ({n} cycles, sequential)",
        store.backend()
    );
    assert_eq!(store.stats().await.expect("stats").running, 0);
}

/// Finished renders whose attempts may have left files: more than one attempt, or failed or
/// cancelled after one; the committed attempt is the one to keep, and only its outputs stay.
async fn leftovers_of_finished_renders(store: DynStore) {
    let a = tenant(&store, "acme", 10).await;
    let w = worker(&store, "w1").await;
    assert_eq!(store.cursor("output-cleanup").await.expect("cursor"), 0);

    // One attempt, committed: nothing left over.
    let one = submit_one(&store, new_job(&a, "one", Lane::Realtime)).await;
    let c = claim_one(&store, &w, NOW).await;
    store
        .record_output(&c.fence, ArtifactKind::Video, &file("one-v", 10))
        .await
        .expect("output");
    complete(&store, &c.fence, NOW).await;

    // Two attempts: the first uploads, loses its lease; the second commits.
    let two = submit_one(&store, new_job(&a, "two", Lane::Realtime)).await;
    let first = claim_one(&store, &w, NOW).await;
    store
        .record_output(&first.fence, ArtifactKind::Video, &file("two-lost", 10))
        .await
        .expect("output");
    let later = NOW + i64::from(LEASE.lease_ttl_ms) + 1;
    store.sweep(later, &LEASE, &RETRY).await.expect("sweep");
    let w2 = worker_named(&store, "w2", "boot-1", later + 10_000).await;
    let second = claim_one(&store, &w2, later + 10_000).await;
    assert_eq!(second.job.id, two.id);
    store
        .record_output(&second.fence, ArtifactKind::Video, &file("two-kept", 10))
        .await
        .expect("output");
    complete(&store, &second.fence, later + 10_000).await;

    // One attempt that failed for good.
    let bad = submit_one(&store, new_job(&a, "bad", Lane::Realtime)).await;
    let c = claim_one(&store, &w2, later + 10_000).await;
    assert_eq!(c.job.id, bad.id);
    store
        .record_output(&c.fence, ArtifactKind::Poster, &file("bad-p", 1))
        .await
        .expect("output");
    store
        .fail(
            &c.fence,
            FailureClass::InvalidInput,
            "no",
            later + 10_000,
            &RETRY,
            0.5,
        )
        .await
        .expect("fail");

    // Cancelled before any attempt: nothing to clean.
    let never = submit_one(&store, new_job(&a, "never", Lane::Bulk)).await;
    store.cancel(&a, &never.id, later).await.expect("cancel");

    let (leftovers, last) = store.leftovers_after(0, 100).await.expect("leftovers");
    let got: Vec<(&str, Option<&str>)> = leftovers
        .iter()
        .map(|l| (l.job_id.as_str(), l.keep_attempt.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (two.id.as_str(), Some(second.fence.attempt_id.as_str())),
            (bad.id.as_str(), None),
        ]
    );
    assert!(leftovers.iter().all(|l| l.tenant_id == a));
    let events = store.outbox_after(None, 0, 100).await.expect("outbox");
    assert_eq!(last, events.last().expect("events").seq);
    assert_eq!(
        store.leftovers_after(last, 100).await.expect("none").0,
        vec![]
    );
    // Paging: one row at a time reaches the same renders.
    let (page, page_last) = store.leftovers_after(0, 1).await.expect("page");
    assert!(page.is_empty() && page_last == events[0].seq && events[0].job_id == one.id);

    // Forgetting keeps the committed attempt's outputs, whose keys the render holds.
    assert_eq!(
        store
            .forget_outputs(&two.id, Some(&second.fence.attempt_id))
            .await
            .expect("forget"),
        1
    );
    assert_eq!(
        store.forget_outputs(&bad.id, None).await.expect("forget"),
        1
    );
    let done = get_job(&store, &two.id).await;
    assert_eq!(
        done.output.expect("output").video.expect("video").blob_key,
        "two-kept"
    );
    // The committed attempt's row stays: forgetting again removes nothing.
    assert_eq!(
        store
            .forget_outputs(&two.id, Some(&second.fence.attempt_id))
            .await
            .expect("forget"),
        0
    );

    store.set_cursor("output-cleanup", last).await.expect("set");
    assert_eq!(store.cursor("output-cleanup").await.expect("cursor"), last);
    let _ = one;
}

// ---------------------------------------------------------------------------------------------
// Cancellation: a caller that stops waiting must not leave the store mid-transaction.

/// Every write call of the store, dropped at each of its await points in turn, each followed
/// by an acknowledged submission; all acknowledged submissions are there after a reopen.
async fn cancelled_calls_lose_no_acknowledged_write(ctx: Ctx) {
    let store = ctx.store.clone();
    let t = tenant(&store, "acme", 1000).await;
    let w = worker(&store, "w1").await;
    let mut acked = Vec::new();
    let mut uncommitted = Vec::new();
    let mut n = 0;
    let mut ack = |store: DynStore, t: String| {
        n += 1;
        let key = format!("ack-{n}");
        async move { submit_one(&store, new_job(&t, &key, Lane::Bulk)).await.id }
    };
    for k in 0..6 {
        for op in 0..7 {
            let seed = submit_one(
                &store,
                new_job(&t, &format!("seed-{k}-{op}"), Lane::Realtime),
            )
            .await;
            let claims = claim(&store, &w, 1, NOW).await;
            let fence = claims.first().map(|c| c.fence.clone());
            let s = store.clone();
            let (t2, w2) = (t.clone(), w.clone());
            let call: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match op {
                0 => Box::pin(async move {
                    let jobs = [
                        new_job(&t2, &format!("batch-a-{k}"), Lane::Bulk),
                        new_job(&t2, &format!("batch-b-{k}"), Lane::Bulk),
                    ];
                    let _ = s.submit(&jobs).await;
                }),
                1 => Box::pin(async move {
                    let _ = s.cancel(&t2, &seed.id, NOW).await;
                }),
                2 => Box::pin(async move {
                    let running: Vec<_> =
                        fence.iter().map(|f| progress(f, 0.5, "render")).collect();
                    let _ = s.heartbeat(&w2, &running, NOW + 1_000, &LEASE).await;
                }),
                3 => Box::pin(async move {
                    let _ = s.sweep(NOW + 1_000, &LEASE, &RETRY).await;
                }),
                4 => Box::pin(async move {
                    if let Some(f) = fence {
                        let _ = s
                            .fail(
                                &f,
                                FailureClass::Application,
                                "boom",
                                NOW + 1_000,
                                &RETRY,
                                0.5,
                            )
                            .await;
                    }
                }),
                5 => Box::pin(async move {
                    if let Some(f) = fence {
                        let _ = s.complete(&f, &[], &BTreeMap::new(), NOW + 1_000).await;
                    }
                }),
                _ => Box::pin(async move {
                    let _ = s.claim(&w2, 2, NOW, &LEASE).await;
                }),
            };
            sqlstore::testing::drop_at_suspension(k, call).await;
            // Give a pooled connection time to go back to its pool.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let id = ack(store.clone(), t.clone()).await;
            // Acknowledged means committed: another connection sees it at once.
            if !ctx.committed(&id).await {
                uncommitted.push(format!("{id} (after dropping call {op} at suspension {k})"));
            }
            acked.push(id);
        }
    }
    assert!(
        uncommitted.is_empty(),
        "acknowledged submissions not visible to another connection: {uncommitted:?}"
    );
    drop(store);
    let Ctx { store, db } = ctx;
    drop(store);
    // Let the dropped connections close, then read through a new store.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let reopened = Ctx {
        store: match &db {
            TestDb::Sqlite { url, .. } => Arc::new(SqliteStore::open(url).await.expect("reopen")),
            TestDb::Postgres { url, schema } => Arc::new(
                PostgresStore::connect_with_schema(url, schema)
                    .await
                    .expect("reopen"),
            ),
        },
        db,
    };
    let mut lost = Vec::new();
    for id in &acked {
        if reopened.store.job(None, id).await.expect("read").is_none() {
            lost.push(id.clone());
        }
    }
    reopened.cleanup().await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged submissions are gone after a reopen",
        lost.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_calls_lose_no_acknowledged_write() {
    cancelled_calls_lose_no_acknowledged_write(sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancelled_calls_lose_no_acknowledged_write() {
    cancelled_calls_lose_no_acknowledged_write(pg_store().await).await;
}
