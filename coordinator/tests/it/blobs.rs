//! The blob store's contract, one suite run against a local folder and a real S3-compatible
//! server, plus the start-up check's errors.
//!
//! The S3 runs use the bucket named by `REELFARM_TEST_S3_URL` (e.g. `s3://reelfarm-test`) with
//! the usual `AWS_*` settings (endpoint, credentials, `AWS_ALLOW_HTTP`); `scripts/s3-up` starts
//! such a server on loopback and prints them, and `make test` exports them. Without
//! `REELFARM_TEST_S3_URL` the S3 runs say so and pass. Each run writes under a fresh prefix.

use bytes::Bytes;
use coordinator::blobs::{BlobError, Blobs, MULTIPART_THRESHOLD, PART_SIZE};
use coordinator::model::ArtifactKind;
use futures::TryStreamExt;

/// A blob store under test, and the folder it lives in for a local one.
struct Ctx {
    blobs: Blobs,
    s3: bool,
    _dir: Option<tempfile::TempDir>,
}

fn s3_base() -> Option<String> {
    std::env::var("REELFARM_TEST_S3_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn skip_note(test: &str) {
    eprintln!(
        "{test}: skipped, REELFARM_TEST_S3_URL is not set (start a server with scripts/s3-up \
         and export the settings it prints)"
    );
}

fn local() -> Ctx {
    let dir = tempfile::tempdir().expect("temp dir");
    let blobs = Blobs::open(&dir.path().join("blobs").to_string_lossy()).expect("open folder");
    Ctx {
        blobs,
        s3: false,
        _dir: Some(dir),
    }
}

/// The test bucket under a fresh prefix, or `None` (after a note) without a configured server.
fn s3(test: &str) -> Option<Ctx> {
    let Some(base) = s3_base() else {
        skip_note(test);
        return None;
    };
    let url = format!(
        "{}/t-{}",
        base.trim_end_matches('/'),
        coordinator::auth::random_hex(6)
    );
    let blobs = Blobs::open(&url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    Some(Ctx {
        blobs,
        s3: true,
        _dir: None,
    })
}

/// Bytes that differ from position to position, so that a misplaced part shows.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

async fn round_trip(ctx: Ctx) {
    let blobs = &ctx.blobs;
    let key = Blobs::output_key("t", "r", "a", ArtifactKind::Video);
    assert_eq!(key, "renders/t/r/attempts/a/video.mp4");
    assert!(!blobs.exists(&key).await.expect("head"));
    blobs
        .put_parts(
            &key,
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
        )
        .await
        .expect("put");
    assert!(blobs.exists(&key).await.expect("head"));
    assert_eq!(
        blobs.get(&key).await.expect("get"),
        Bytes::from_static(b"abcd")
    );
    assert_eq!(blobs.head(&key).await.expect("head").size, 4);
    // A later put replaces the object whole.
    blobs
        .put(&key, Bytes::from_static(b"xyz"))
        .await
        .expect("replace");
    assert_eq!(
        blobs.get(&key).await.expect("get"),
        Bytes::from_static(b"xyz")
    );
    match blobs.get("renders/none/video.mp4").await {
        Err(BlobError::NotFound { key }) => assert_eq!(key, "renders/none/video.mp4"),
        other => panic!("a missing key reads as NotFound, not {other:?}"),
    }
    assert!(matches!(
        blobs.head("renders/none/video.mp4").await,
        Err(BlobError::NotFound { .. })
    ));
    blobs.delete(&key).await.expect("delete");
    assert!(!blobs.exists(&key).await.expect("head"));
    blobs
        .delete(&key)
        .await
        .expect("deleting a missing key is fine");
    assert_eq!(
        blobs.metrics().errors("get"),
        0,
        "a missing key is no error"
    );
}

async fn create_if_absent(ctx: Ctx) {
    let blobs = &ctx.blobs;
    let seg = Blobs::segment_key(&"ab".repeat(32));
    assert!(seg.starts_with("segments/ab/abab"), "{seg}");
    assert!(!blobs.exists(&seg).await.expect("head"));
    assert!(blobs
        .put_parts_if_absent(&seg, vec![Bytes::from_static(b"one")])
        .await
        .expect("first write"));
    assert!(!blobs
        .put_parts_if_absent(&seg, vec![Bytes::from_static(b"two")])
        .await
        .expect("second write"));
    assert_eq!(
        blobs.get(&seg).await.expect("get"),
        Bytes::from_static(b"one")
    );
    // Writers racing for one new key: exactly one of them writes.
    let other = Blobs::segment_key(&"cd".repeat(32));
    let writes = (0..4u8).map(|i| {
        let blobs = blobs.clone();
        let key = other.clone();
        tokio::spawn(async move {
            blobs
                .put_parts_if_absent(&key, vec![Bytes::from(vec![i; 64])])
                .await
                .expect("racing write")
        })
    });
    let mut won = 0;
    for write in writes {
        won += usize::from(write.await.expect("task"));
    }
    // At least one writer wins (with S3 conditional creates exactly one, as far as the server
    // makes its check and write atomic), and readers see one writer's whole object.
    assert!(won >= 1);
    let stored = blobs.get(&other).await.expect("get");
    assert_eq!(stored.len(), 64);
    assert!(stored.iter().all(|b| *b == stored[0]), "{stored:?}");
}

async fn streaming_reads(ctx: Ctx) {
    let blobs = &ctx.blobs;
    let key = Blobs::stream_key("t", "r", "a", "seg-00001.ts");
    assert_eq!(key, "renders/t/r/attempts/a/stream/seg-00001.ts");
    let data = pattern(3 << 20, 7);
    blobs.put(&key, data.clone()).await.expect("put");
    let (size, stream) = blobs.get_sized_stream(&key).await.expect("stream");
    assert_eq!(size, data.len() as u64);
    let pieces: Vec<Bytes> = stream.try_collect().await.expect("read stream");
    assert_eq!(Bytes::from(pieces.concat()), data);
    let whole: Vec<Bytes> = blobs
        .get_stream(&key)
        .await
        .expect("stream")
        .try_collect()
        .await
        .expect("read");
    assert_eq!(whole.iter().map(Bytes::len).sum::<usize>(), data.len());
    assert!(matches!(
        blobs
            .get_stream("renders/t/r/attempts/a/stream/none.ts")
            .await,
        Err(BlobError::NotFound { .. })
    ));
}

async fn keys_listing_and_attempt_cleanup(ctx: Ctx) {
    let blobs = &ctx.blobs;
    let template = Blobs::template_key("t", "promo", "d1");
    assert_eq!(template, "templates/t/promo/d1.tar");
    blobs
        .put(&template, Bytes::from_static(b"tar"))
        .await
        .expect("template");
    let files = [
        Blobs::output_key("t", "r", "a1", ArtifactKind::Video),
        Blobs::output_key("t", "r", "a1", ArtifactKind::Poster),
        Blobs::stream_key("t", "r", "a1", "index.m3u8"),
        Blobs::output_key("t", "r", "a2", ArtifactKind::Video),
        Blobs::output_key("t", "r", "a2", ArtifactKind::Poster),
        // Another render whose id extends this one's: not part of it.
        Blobs::output_key("t", "r2", "a1", ArtifactKind::Video),
    ];
    for file in &files {
        blobs
            .put(file, Bytes::from(file.clone()))
            .await
            .expect("put");
    }
    let mut listed = blobs.list("renders/t/r").await.expect("list");
    listed.sort();
    let mut expected: Vec<String> = files[..5].to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(blobs.list("renders/none").await.expect("list").is_empty());

    assert_eq!(
        blobs
            .delete_attempts_except("t", "r", Some("a2"))
            .await
            .expect("cleanup"),
        3
    );
    let mut left = blobs.list("renders/t").await.expect("list");
    left.sort();
    let mut expected = files[3..].to_vec();
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(
        blobs
            .delete_attempts_except("t", "r", None)
            .await
            .expect("cleanup"),
        2
    );
    assert_eq!(
        blobs.list("renders/t").await.expect("list"),
        vec![files[5].clone()]
    );
    assert_eq!(
        blobs.get(&template).await.expect("template stays"),
        Bytes::from_static(b"tar")
    );
}

async fn large_objects_go_up_in_parts(ctx: Ctx) {
    let blobs = &ctx.blobs;
    let key = Blobs::output_key("t", "big", "a", ArtifactKind::Video);
    // 40 MiB in uneven pieces, as an upload arrives: five 8 MiB parts.
    let data = pattern(40 << 20, 3);
    assert!(data.len() >= MULTIPART_THRESHOLD);
    let mut pieces = Vec::new();
    let mut rest = data.clone();
    while !rest.is_empty() {
        pieces.push(rest.split_to(rest.len().min(3 << 20 | 12_345)));
    }
    blobs.put_parts(&key, pieces).await.expect("multipart put");
    let info = blobs.head(&key).await.expect("head");
    assert_eq!(info.size, data.len() as u64);
    if ctx.s3 {
        // S3's ETag of a multipart object is "<md5 of the part md5s>-<number of parts>".
        let etag = info.etag.expect("an S3 object has an ETag");
        let parts = data.len().div_ceil(PART_SIZE);
        assert!(
            etag.trim_matches('"').ends_with(&format!("-{parts}")),
            "the server did not store a {parts}-part upload: ETag {etag}"
        );
    }
    assert!(
        blobs.get(&key).await.expect("get") == data,
        "content differs"
    );
    let mut registry = prometheus_client::registry::Registry::default();
    blobs.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains("blob_operation_seconds_count{op=\"put_multipart\"} 1"),
        "{text}"
    );
    // A small object still goes up in one request.
    blobs
        .put(&key, Bytes::from_static(b"small"))
        .await
        .expect("put");
    let info = blobs.head(&key).await.expect("head");
    assert_eq!(info.size, 5);
    if ctx.s3 {
        let etag = info.etag.unwrap_or_default();
        assert!(
            !etag.contains('-'),
            "one PUT, not a multipart upload: {etag}"
        );
    }
}

async fn check_passes_and_leaves_nothing(ctx: Ctx) {
    let blobs = &ctx.blobs;
    blobs
        .check()
        .await
        .expect("a usable store passes the check");
    blobs.check().await.expect("and again");
    assert!(
        blobs.list("_reelfarm").await.expect("list").is_empty(),
        "the probe objects are deleted"
    );
}

macro_rules! blob_tests {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::local()).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(ctx) = super::s3(concat!("blobs::s3::", stringify!($scenario))) {
                        super::$scenario(ctx).await;
                    }
                }
            )*
        }
    };
}

blob_tests!(
    round_trip,
    create_if_absent,
    streaming_reads,
    keys_listing_and_attempt_cleanup,
    large_objects_go_up_in_parts,
    check_passes_and_leaves_nothing,
);

// ---------------------------------------------------------------------------------------------
// The start-up check's errors: one line naming the problem.

/// The process's `AWS_*` settings with some replaced.
fn settings_with(replaced: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") && !replaced.iter().any(|(r, _)| r == k))
        .collect();
    settings.extend(
        replaced
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_wrong_secret() {
    let Some(base) = s3_base() else {
        return skip_note("blobs::check_names_a_wrong_secret");
    };
    let blobs = Blobs::open_with(
        &base,
        settings_with(&[("AWS_SECRET_ACCESS_KEY", "not-the-secret")]),
    )
    .expect("open");
    let err = blobs.check().await.expect_err("a wrong secret is refused");
    assert!(matches!(err, BlobError::Unusable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "blob store {base}: access denied — check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        )
    );
    assert!(
        blobs.metrics().errors("list") >= 1,
        "the refusal is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_missing_bucket() {
    let Some(base) = s3_base() else {
        return skip_note("blobs::check_names_a_missing_bucket");
    };
    assert!(base.starts_with("s3://"), "{base}");
    let bucket = format!("reelfarm-missing-{}", coordinator::auth::random_hex(4));
    let url = format!("s3://{bucket}/renders");
    let blobs = Blobs::open(&url).expect("open");
    let err = blobs
        .check()
        .await
        .expect_err("a missing bucket is refused");
    assert_eq!(
        err.to_string(),
        format!("blob store {url}: bucket `{bucket}` does not exist")
    );
    // The check created nothing: the bucket is still missing.
    assert!(blobs.check().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_an_unreachable_endpoint() {
    // Port 1 on loopback: nothing listens there. Needs no server, so it always runs.
    let blobs = Blobs::open_with(
        "s3://reelfarm-test",
        [
            ("AWS_ENDPOINT", "http://127.0.0.1:1"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("open");
    let err = blobs.check().await.expect_err("nothing answers");
    assert_eq!(
        err.to_string(),
        "blob store s3://reelfarm-test: cannot reach the S3 endpoint at http://127.0.0.1:1: \
         connection refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_folder_that_cannot_be_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("blobs");
    let blobs = Blobs::open(&folder.to_string_lossy()).expect("open");
    blobs.check().await.expect("a fresh folder is usable");
    // The folder replaced by a file: nothing can be written under it (even as root, which
    // permission bits would not stop).
    std::fs::remove_dir_all(&folder).expect("remove folder");
    std::fs::write(&folder, b"not a folder").expect("write file");
    let err = blobs.check().await.expect_err("a file is no folder");
    let message = err.to_string();
    assert_eq!(
        message,
        format!(
            "blob store {}: folder is not writable: Not a directory (os error 20)",
            folder.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_url_path_is_a_key_prefix() {
    let Some(base) = s3_base() else {
        return skip_note("blobs::an_s3_url_path_is_a_key_prefix");
    };
    let base = base.trim_end_matches('/').to_owned();
    let run = coordinator::auth::random_hex(6);
    let one = Blobs::open(&format!("{base}/p-{run}/one")).expect("open");
    let two = Blobs::open(&format!("{base}/p-{run}/two/")).expect("open");
    let whole = Blobs::open(&base).expect("open");
    let key = Blobs::template_key("t", "promo", "d1");
    one.put(&key, Bytes::from_static(b"one"))
        .await
        .expect("put");
    assert!(!two.exists(&key).await.expect("head"), "prefixes are apart");
    assert_eq!(
        whole.list(&format!("p-{run}")).await.expect("list"),
        vec![format!("p-{run}/one/{key}")]
    );
    two.put(&key, Bytes::from_static(b"two"))
        .await
        .expect("put");
    assert_eq!(
        one.get(&key).await.expect("get"),
        Bytes::from_static(b"one")
    );
    for store in [&one, &two] {
        store.delete(&key).await.expect("delete");
    }
    assert!(whole
        .list(&format!("p-{run}"))
        .await
        .expect("list")
        .is_empty());
}
