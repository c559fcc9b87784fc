//! The `reelfarm-espeak` program end to end, over its pipes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reelfarm-espeak"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start reelfarm-espeak");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one request; returns the header and the samples as raw bytes.
    fn ask(&mut self, request: &str) -> (serde_json::Value, Vec<u8>) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(request.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("header");
        let header: serde_json::Value = serde_json::from_str(&line).expect("json header");
        let n = header["samples"].as_u64().unwrap_or(0) as usize;
        let mut samples = vec![0u8; 2 * n];
        self.stdout.read_exact(&mut samples).expect("samples");
        (header, samples)
    }

    /// Closes stdin and returns the exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        self.stdout.read_to_end(&mut rest).expect("read rest");
        assert!(rest.is_empty(), "unexpected output after the last answer");
        self.child.wait().expect("wait")
    }
}

const HINDI: &str = r#"{"text": "नमस्ते, आप कैसे हैं?", "voice": "hi"}"#;
const ENGLISH: &str = r#"{"text": "Hello there, how are you?", "voice": "en", "variant": null}"#;

#[test]
fn espeak_helper_answers_are_deterministic() {
    let mut a = Helper::start(&[]);
    let first = a.ask(HINDI);
    assert_eq!(first.0["ok"], true, "{}", first.0);
    assert!(!first.1.is_empty());
    // Other requests in between, on the same helper, must not change the answer.
    let english = a.ask(ENGLISH);
    assert_eq!(english.0["ok"], true);
    let f3 = a.ask(r#"{"text": "Hello there, how are you?", "voice": "en", "variant": "f3", "rate": 120, "pitch": 70}"#);
    assert_eq!(f3.0["ok"], true);
    assert!(f3.1.len() > english.1.len());
    let bad = a.ask(r#"{"text": "x", "voice": "no-such-voice"}"#);
    assert_eq!(bad.0["ok"], false);
    assert_eq!(a.ask(HINDI), first);
    assert_eq!(a.ask(ENGLISH), english);
    // And a second helper agrees.
    let mut b = Helper::start(&[]);
    assert_eq!(b.ask(ENGLISH), english);
    assert_eq!(b.ask(HINDI), first);
    assert!(a.finish().success());
    assert!(b.finish().success());
}

#[test]
fn espeak_helper_in_process_mode_works() {
    let mut h = Helper::start(&["--no-fork"]);
    let (header, samples) = h.ask(HINDI);
    assert_eq!(header["ok"], true);
    assert_eq!(header["sample_rate"], 22050);
    assert_eq!(header["samples"].as_u64(), Some(samples.len() as u64 / 2));
    let phonemes = header["phonemes"].as_array().expect("phonemes");
    assert_eq!(phonemes[0]["ipa"], "n");
    assert!(h.finish().success());
}

#[test]
fn espeak_helper_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_reelfarm-espeak"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("eSpeak NG"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_reelfarm-espeak"))
        .arg("--bogus")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
