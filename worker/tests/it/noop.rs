//! The protocol without rendering: noop workers acquire, complete, drain and deregister.

use std::collections::HashMap;
use std::time::Duration;

use crate::fake::{free_addr, scrape, tls_dir, Behavior, Fake, TestWorker};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_worker_completes_each_assignment_once_with_its_fence() {
    let (fake, url) = Fake::start(Behavior::default()).await;
    let mut expected = HashMap::new();
    for _ in 0..20 {
        let a = fake.assignment("d", &[]);
        let attempt = a.attempt.clone().expect("attempt");
        expected.insert(attempt.attempt_id.clone(), attempt);
        fake.push(a);
    }
    let metrics = free_addr();
    let worker = TestWorker::start(&url, true, 4, Some(metrics));
    fake.wait_for("20 completions", WAIT, |l| l.completes.len() >= 20)
        .await;
    // Give a duplicate a chance to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let log = fake.log();
        assert_eq!(log.unauthenticated, 0, "every call carries the join token");
        assert_eq!(log.registers.len(), 1);
        let register = &log.registers[0];
        assert_eq!(register.name, "test-worker");
        uuid::Uuid::parse_str(&register.boot_id).expect("boot id is a UUID");
        let caps = register.capabilities.as_ref().expect("capabilities");
        assert!(caps.noop);
        assert_eq!(caps.slots, 4);
        assert_eq!(caps.encoders, ["libx264"]);
        assert!(!caps.version.is_empty());
        assert!(log
            .acquires
            .iter()
            .all(|a| (1..=4).contains(&a.max_assignments) && a.wait_ms == 20_000));

        assert_eq!(log.completes.len(), 20, "each assignment completed once");
        for c in &log.completes {
            assert_eq!(c.worker_id, "w-1");
            let got = c.attempt.as_ref().expect("fence");
            assert_eq!(
                Some(got),
                expected.get(&got.attempt_id),
                "fence as assigned"
            );
            assert_eq!(log.completed(&got.attempt_id), 1, "completed exactly once");
        }
        assert!(log.fails.is_empty());
        assert!(log.fetches.is_empty(), "noop fetches nothing");
        assert!(log.uploads.is_empty(), "noop uploads nothing");
    }

    let text = scrape(metrics).await;
    assert!(
        text.contains("reelfarm_worker_attempts_total{outcome=\"completed\"} 20"),
        "{text}"
    );
    assert!(text.contains("reelfarm_worker_slots 4"), "{text}");
    assert!(text.contains("reelfarm_worker_slots_busy 0"), "{text}");

    worker.stop(WAIT).await.expect("clean exit");
    assert_eq!(fake.log().deregisters, ["w-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_precondition_on_complete_is_not_retried() {
    let (fake, url) = Fake::start(Behavior::default()).await;
    let stale = fake.assignment("d", &[]);
    let stale_id = stale.attempt.as_ref().expect("attempt").attempt_id.clone();
    fake.behave().reject_complete.insert(stale_id.clone());
    fake.push(stale);
    let worker = TestWorker::start(&url, true, 1, None);
    fake.wait_for("the refused Complete", WAIT, |l| {
        l.complete_calls.len() == 1
    })
    .await;

    // The worker keeps working.
    let later: Vec<String> = (0..3)
        .map(|_| {
            let a = fake.assignment("d", &[]);
            let id = a.attempt.as_ref().expect("attempt").attempt_id.clone();
            fake.push(a);
            id
        })
        .collect();
    fake.wait_for("three more completions", WAIT, |l| {
        later.iter().all(|id| l.completed(id) == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = fake.log();
        let calls = log
            .complete_calls
            .iter()
            .filter(|c| c.attempt.as_ref().map(|a| a.attempt_id.as_str()) == Some(&stale_id))
            .count();
        assert_eq!(calls, 1, "a stale attempt's Complete is not resent");
        assert!(log.fails.is_empty(), "nor is it failed");
    }
    worker.stop(WAIT).await.expect("clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_running_attempt_then_deregisters() {
    let behavior = Behavior {
        complete_delay: Duration::from_millis(1500),
        ..Behavior::default()
    };
    let (fake, url) = Fake::start(behavior).await;
    let a = fake.assignment("d", &[]);
    let id = a.attempt.as_ref().expect("attempt").attempt_id.clone();
    fake.push(a);
    let mut worker = TestWorker::start(&url, true, 2, None);
    fake.wait_for("the Complete call", WAIT, |l| !l.complete_calls.is_empty())
        .await;
    let acquires_at_signal = {
        worker.signal();
        fake.log().acquires.len()
    };
    // More work arrives after the signal: it must not be taken.
    fake.push(fake.assignment("d", &[]));
    worker.join(WAIT).await.expect("clean exit");

    let log = fake.log();
    let done = format!("complete:{id}");
    let finished = log.events.iter().position(|e| *e == done);
    let deregistered = log.events.iter().position(|e| e == "deregister");
    assert!(
        matches!((finished, deregistered), (Some(f), Some(d)) if f < d),
        "the running attempt completes before the worker deregisters: {:?}",
        log.events
    );
    assert_eq!(log.deregisters, ["w-1"]);
    assert_eq!(log.completes.len(), 1, "nothing acquired after the signal");
    assert!(log.acquires.len() <= acquires_at_signal + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_from_a_heartbeat_stops_the_worker() {
    let (fake, url) = Fake::start(Behavior {
        heartbeat_ms: 100,
        ..Behavior::default()
    })
    .await;
    let worker = TestWorker::start(&url, true, 1, None);
    fake.wait_for("a heartbeat", WAIT, |l| !l.heartbeats.is_empty())
        .await;
    fake.behave().drain = true;
    // No shutdown signal: the drain alone ends `run`.
    worker.join(WAIT).await.expect("clean exit");
    assert_eq!(fake.log().deregisters, ["w-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_over_tls_with_a_private_ca() {
    let (fake, url) = Fake::start_tls(Behavior::default()).await;
    assert!(url.starts_with("https://"));
    let a = fake.assignment("d", &[]);
    let id = a.attempt.as_ref().expect("attempt").attempt_id.clone();
    fake.push(a);
    let worker = TestWorker::start_with(&url, |config| {
        config.noop = true;
        config.tls_ca = Some(tls_dir().join("ca.pem"));
    });
    fake.wait_for("the Complete over TLS", WAIT, |l| l.completed(&id) == 1)
        .await;
    worker.stop(WAIT).await.expect("clean exit");
    assert_eq!(fake.log().deregisters, ["w-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_a_coordinator_that_is_not_up_yet() {
    // Reserve a port, start the worker against it, then start the coordinator there.
    let addr = free_addr();
    let mut worker = TestWorker::start(&format!("http://{addr}"), true, 1, None);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let behavior = Behavior {
        heartbeat_ms: 100,
        ..Behavior::default()
    };
    let (fake, _) = Fake::start_at(behavior, addr).await;
    // A heartbeat: registered, and running.
    fake.wait_for("a heartbeat", WAIT, |l| !l.heartbeats.is_empty())
        .await;
    assert_eq!(fake.log().registers.len(), 1);
    worker.signal();
    worker.join(WAIT).await.expect("clean exit");
    assert_eq!(fake.log().deregisters, ["w-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_again_when_the_coordinator_forgot_it() {
    let (fake, url) = Fake::start(Behavior {
        heartbeat_ms: 100,
        ..Behavior::default()
    })
    .await;
    let worker = TestWorker::start(&url, true, 1, None);
    fake.wait_for("a heartbeat", WAIT, |l| !l.heartbeats.is_empty())
        .await;
    fake.behave().reregister_once = true;
    fake.wait_for("a heartbeat as w-2", WAIT, |l| {
        l.heartbeats.iter().any(|h| h.worker_id == "w-2")
    })
    .await;
    let a = fake.assignment("d", &[]);
    let id = a.attempt.as_ref().expect("attempt").attempt_id.clone();
    fake.push(a);
    fake.wait_for("the Complete", WAIT, |l| l.completed(&id) == 1)
        .await;
    worker.stop(WAIT).await.expect("clean exit");
    let log = fake.log();
    assert_eq!(log.registers.len(), 2);
    assert_eq!(
        log.registers[0].boot_id, log.registers[1].boot_id,
        "same process, same boot id"
    );
    assert!(log.completes.iter().all(|c| c.worker_id == "w-2"));
    assert_eq!(log.deregisters, ["w-2"]);
}
