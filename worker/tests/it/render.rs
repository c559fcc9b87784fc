//! The real path: fetch the demo template, render it on lavapipe, upload, complete; and the
//! ways an attempt ends without output (stopped, self-fenced, invalid input).

use std::time::Duration;

use proto::v1::{Artifact, FailureClass};
use sha2::{Digest as _, Sha256};

use crate::fake::{demo_archive, Behavior, Fake, TestWorker};

/// The demo recipient `en-priya` (assets/templates/order-delivered/recipients.json).
const PRIYA: [(&str, &str); 3] = [
    ("first_name", "Priya"),
    ("product", "Bluetooth Speaker"),
    ("offer_code", "PRIYA10"),
];

/// Renders run on a software GPU, next to other tests.
const RENDER_WAIT: Duration = Duration::from_secs(300);
const WAIT: Duration = Duration::from_secs(30);

fn attempt_id(a: &proto::v1::Assignment) -> String {
    a.attempt.as_ref().expect("attempt").attempt_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_uploads_and_completes() {
    let (archive, digest) = demo_archive();
    let mut behavior = Behavior::default();
    behavior.archives.insert(digest.clone(), archive);
    let (fake, url) = Fake::start(behavior).await;
    let a = fake.assignment(&digest, &PRIYA);
    let id = attempt_id(&a);
    let fence = a.attempt.clone();
    fake.push(a);
    let worker = TestWorker::start(&url, false, 1, None);
    fake.wait_for("the Complete", RENDER_WAIT, |l| l.completed(&id) == 1)
        .await;

    {
        let log = fake.log();
        assert!(log.fails.is_empty(), "{:?}", log.fails);
        assert_eq!(log.fetches.len(), 1);
        let caps = log.registers[0].capabilities.as_ref().expect("caps");
        assert!(!caps.gpu_adapter.is_empty(), "the GPU adapter is reported");
        assert!(!caps.noop);

        assert_eq!(log.uploads.len(), 2, "video and poster");
        for u in &log.uploads {
            assert_eq!(u.header.attempt, fence, "uploads carry the fence");
            assert_eq!(u.header.worker_id, "w-1");
            assert!(u.largest_chunk <= proto::CHUNK_BYTES);
        }
        let video = log
            .uploads
            .iter()
            .find(|u| u.header.artifact == Artifact::Video as i32)
            .expect("video upload");
        assert_eq!(
            &video.data[4..8],
            b"ftyp",
            "an MP4 starts with its ftyp box"
        );
        assert!(video.data.len() > 1 << 20, "several chunks");
        let poster = log
            .uploads
            .iter()
            .find(|u| u.header.artifact == Artifact::Poster as i32)
            .expect("poster upload");
        let image = image::load_from_memory_with_format(&poster.data, image::ImageFormat::Jpeg)
            .expect("the poster is a JPEG");
        assert_eq!((image.width(), image.height()), (1280, 720));

        let complete = &log.completes[0];
        assert_eq!(complete.attempt, fence);
        for stage in [
            "fetch_template",
            "render",
            "poster",
            "upload",
            "gpu",
            "encode",
            "first_playable",
        ] {
            let secs = complete.stage_seconds.get(stage).copied();
            assert!(
                secs.is_some_and(|s| s >= 0.0 && s.is_finite()),
                "stage {stage}: {:?}",
                complete.stage_seconds
            );
        }
        assert!(complete.stage_seconds["render"] > 0.0);
        assert!(complete.stage_seconds["first_playable"] < complete.stage_seconds["render"] + 60.0);

        // Smart render: 30 one-second segments, each looked up in the farm's store (a miss)
        // and then shared through it; the live stream was published as it grew, each
        // segment before the playlist naming it, and closed at the end.
        assert_eq!(log.segment_fetches.len(), 30, "one lookup per segment");
        assert_eq!(log.segments.len(), 30, "every segment shared");
        let names: Vec<&str> = log.publishes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.iter().filter(|n| n.ends_with(".ts")).count(), 30);
        assert_eq!(names.first(), Some(&"seg-00000.ts"));
        assert_eq!(names.last(), Some(&"index.m3u8"));
        let (_, last_playlist) = log.publishes.last().expect("a playlist");
        let text = String::from_utf8_lossy(last_playlist);
        assert!(
            text.contains("seg-00029.ts") && text.ends_with("#EXT-X-ENDLIST\n"),
            "{text}"
        );

        // Heartbeats reported the render's progress.
        let rendering: Vec<f32> = log
            .heartbeats
            .iter()
            .flat_map(|h| &h.running)
            .filter(|p| p.stage == "render")
            .map(|p| p.progress)
            .collect();
        assert!(!rendering.is_empty(), "a heartbeat during the render");
        assert!(rendering.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    let cache = worker.cache_path().to_owned();
    assert!(cache
        .join("templates")
        .join(&digest)
        .join("template.json")
        .is_file());
    // The folder goes after the Complete is answered.
    let work = cache.join("work").join(&id);
    let deadline = std::time::Instant::now() + WAIT;
    while work.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!work.exists(), "work folder removed");
    assert_eq!(
        std::fs::read_dir(cache.join("segments"))
            .expect("segment cache")
            .count(),
        30,
        "the worker keeps every segment locally"
    );
    worker.stop(WAIT).await.expect("clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_render_is_cancelled_and_never_reported() {
    let (archive, digest) = demo_archive();
    let mut behavior = Behavior::default();
    behavior.archives.insert(digest.clone(), archive);
    let (fake, url) = Fake::start(behavior).await;
    let a = fake.assignment(&digest, &PRIYA);
    let id = attempt_id(&a);
    fake.push(a);
    let worker = TestWorker::start(&url, false, 1, None);

    fake.wait_for("a heartbeat from the render", RENDER_WAIT, |l| {
        l.heartbeats
            .iter()
            .flat_map(|h| &h.running)
            .any(|p| p.stage == "render" && p.progress > 0.1)
    })
    .await;
    fake.behave().stop.insert(id.clone());
    let stopped_at = fake.log().heartbeats.len();
    // The worker stops the render: its heartbeats no longer list the attempt.
    fake.wait_for("the attempt to leave the heartbeats", WAIT, |l| {
        l.heartbeats.len() > stopped_at + 1
            && l.heartbeats.last().is_some_and(|h| h.running.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = fake.log();
        assert!(
            log.complete_calls.is_empty(),
            "a stopped attempt is never completed"
        );
        assert!(log.fails.is_empty(), "nor failed");
        assert!(log.uploads.is_empty(), "nor uploaded");
    }
    assert!(
        !worker.cache_path().join("work").join(&id).exists(),
        "its partial output is gone"
    );
    worker.stop(WAIT).await.expect("clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_fences_when_heartbeats_fail() {
    let (archive, digest) = demo_archive();
    let mut behavior = Behavior {
        heartbeat_ms: 100,
        // Fence window: 1.5 s less a third = 1 s.
        lease_ttl_ms: 1500,
        fetch_hangs: true,
        heartbeat_fails: true,
        ..Behavior::default()
    };
    behavior.archives.insert(digest.clone(), archive);
    let (fake, url) = Fake::start(behavior).await;
    let a = fake.assignment(&digest, &PRIYA);
    fake.push(a);
    let worker = TestWorker::start(&url, false, 1, None);
    fake.wait_for("the fetch", WAIT, |l| !l.fetches.is_empty())
        .await;
    // Without a successful heartbeat the worker gives the attempt up on its own.
    fake.wait_for("the worker to drop the transfer", WAIT, |l| {
        l.events.iter().any(|e| e == "fetch-dropped")
    })
    .await;
    fake.behave().heartbeat_fails = false;
    fake.wait_for("heartbeats again", WAIT, |l| l.heartbeats.len() >= 2)
        .await;
    {
        let log = fake.log();
        assert!(
            log.heartbeats.last().is_some_and(|h| h.running.is_empty()),
            "the fenced attempt is gone: {:?}",
            log.heartbeats
        );
        assert!(log.complete_calls.is_empty());
        assert!(log.fails.is_empty(), "a fenced attempt is not failed");
    }
    worker.stop(WAIT).await.expect("clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_fails_without_leaking_tokens() {
    let (archive, digest) = demo_archive();
    let junk = b"this is not a tar archive".repeat(40);
    let junk_digest = hex::encode(Sha256::digest(&junk));
    let mut behavior = Behavior::default();
    behavior.archives.insert(digest.clone(), archive);
    behavior.archives.insert(junk_digest.clone(), junk);
    let (fake, url) = Fake::start(behavior).await;

    let bad_archive = fake.assignment(&junk_digest, &PRIYA);
    let bad_archive_id = attempt_id(&bad_archive);
    // Over the token's 40-character limit.
    let long_name = "Bartholomew-Maximilian-Alexander-Featherstonehaugh";
    let bad_token = fake.assignment(&digest, &[("first_name", long_name)]);
    let bad_token_id = attempt_id(&bad_token);
    // Not a code: a space.
    let bad_code = fake.assignment(&digest, &[("offer_code", "PRIYA 10")]);
    let bad_code_id = attempt_id(&bad_code);
    fake.push(bad_archive);
    fake.push(bad_token);
    fake.push(bad_code);
    // Three slots: all three at once, two of them needing the same bundle.
    let worker = TestWorker::start(&url, false, 3, None);
    fake.wait_for("three failures", RENDER_WAIT, |l| l.fails.len() >= 3)
        .await;

    {
        let log = fake.log();
        assert!(log.complete_calls.is_empty());
        assert_eq!(
            log.fetches.len(),
            2,
            "one fetch per digest, even for slots that need it at once"
        );
        for id in [&bad_archive_id, &bad_token_id, &bad_code_id] {
            let fail = log
                .fails
                .iter()
                .find(|f| f.attempt.as_ref().map(|a| &a.attempt_id) == Some(id))
                .expect("a Fail per attempt");
            assert_eq!(
                fail.class,
                FailureClass::InvalidInput as i32,
                "{}",
                fail.message
            );
            assert!(!fail.message.is_empty());
            assert!(!fail.message.contains("Priya"), "{}", fail.message);
            assert!(!fail.message.contains("Bartholomew"), "{}", fail.message);
        }
    }
    worker.stop(WAIT).await.expect("clean exit");
}

/// A bundle whose background video is corrupt fails with a message that names the file as the
/// template names it, not where the worker unpacked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_media_file_is_named_as_in_the_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("order-delivered");
    copy_dir(&crate::fake::demo_template(), &copy);
    std::fs::write(copy.join("media/background.mp4"), b"not a video at all").expect("corrupt");
    let archive = template::pack_dir(&copy).expect("pack");
    let digest = hex::encode(Sha256::digest(&archive));
    let mut behavior = Behavior::default();
    behavior.archives.insert(digest.clone(), archive);
    let (fake, url) = Fake::start(behavior).await;
    fake.push(fake.assignment(&digest, &PRIYA));
    let worker = TestWorker::start(&url, false, 1, None);
    fake.wait_for("a failure", RENDER_WAIT, |l| !l.fails.is_empty())
        .await;
    let message = fake.log().fails[0].message.clone();
    assert!(message.contains("`media/background.mp4`"), "{message}");
    let cache = worker.cache_path().display().to_string();
    assert!(!message.contains(&cache), "{message}");
    worker.stop(WAIT).await.expect("clean exit");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
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
