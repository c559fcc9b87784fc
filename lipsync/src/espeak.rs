//! The eSpeak NG voice, spoken by the separate `reelfarm-espeak` helper program.
//!
//! libespeak-ng is GPL-3.0-or-later, so this crate does not link it: the `tts-espeak` crate
//! builds the `reelfarm-espeak` program, which links the library, and [`EspeakVoice`] talks to
//! it over pipes (the protocol is documented in that crate: one JSON request line in, one JSON
//! header line plus raw 16-bit little-endian samples out).
//!
//! eSpeak NG's state is global, so each helper process speaks one request at a time.
//! [`EspeakVoice`] keeps a small pool of live helpers: a call takes an idle one (or starts a new
//! one), uses it, and gives it back, so the voice can be shared between threads and the start-up
//! cost (about 6–10 ms) is paid once per helper, not per call. A helper that fails at the pipe
//! level is stopped and the request retried once on a fresh one.
//!
//! The helper speaks every request from the same freshly initialised state, so the same text,
//! language and [`VoiceParams`] always give the same samples and phone times, whichever helper
//! serves them.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::{LipsyncError, Phone, Synthesis, VoiceParams, VoiceProvider};

/// The languages the eSpeak NG voice speaks for lip-sync (BCP 47 primary subtags; `en` is
/// spoken as `en-us`).
pub const LANGUAGES: &[&str] = crate::viseme::LANGUAGES;

/// The helper's file name.
const PROGRAM: &str = "reelfarm-espeak";
/// Environment variable naming the helper's path.
const ENV_PROGRAM: &str = "REELFARM_ESPEAK";
/// Provider name in messages.
const NAME: &str = "espeak-ng";
/// Largest sample count accepted from a helper (about 25 minutes at 22050 Hz), so a corrupt
/// header cannot make us allocate without bound.
const MAX_SAMPLES: usize = 1 << 25;
/// How long a helper may take to answer one request before it is stopped (eSpeak NG speaks
/// the longest accepted text, 10,000 characters, in a few seconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest header line accepted from a helper.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// eSpeak NG through the `reelfarm-espeak` helper.
pub struct EspeakVoice {
    program: PathBuf,
    /// Idle helpers.
    pool: Mutex<Vec<Helper>>,
    /// Most idle helpers kept; more are stopped when given back.
    max_idle: usize,
    /// How long one answer may take.
    timeout: Duration,
}

impl std::fmt::Debug for EspeakVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EspeakVoice")
            .field("program", &self.program)
            .field("idle", &self.pool.lock().map_or(0, |p| p.len()))
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

/// A running helper process.
struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        // The helper may be mid-answer or stuck; do not wait for it to see end of input.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(serde::Serialize)]
struct WireRequest<'a> {
    text: &'a str,
    voice: &'a str,
    variant: Option<&'a str>,
    rate: Option<u32>,
    pitch: Option<u32>,
}

#[derive(serde::Deserialize)]
struct WireHeader {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    sample_rate: u32,
    #[serde(default)]
    samples: usize,
    #[serde(default)]
    phonemes: Vec<WirePhoneme>,
}

#[derive(serde::Deserialize)]
struct WirePhoneme {
    ms: f64,
    /// Exact sample index (newer helpers); preferred over `ms`, which is truncated.
    #[serde(default)]
    sample: Option<u64>,
    ipa: String,
}

/// A helper's answer.
struct Answer {
    sample_rate: u32,
    samples: Vec<i16>,
    phonemes: Vec<WirePhoneme>,
}

/// Why a request failed.
enum Failure {
    /// The helper answered with an error; it is still usable.
    Refused(String),
    /// Talking to the helper failed; it must be stopped.
    Broken(String),
}

impl Helper {
    fn spawn(program: &Path) -> Result<Self, String> {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{}: no pipes to the helper", program.display()));
        };
        tracing::debug!(program = %program.display(), pid = child.id(), "started eSpeak NG helper");
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 16, stdout),
        })
    }

    /// Sends `line` and reads the answer; a helper that has not answered within `timeout` is
    /// killed, which ends the read.
    fn request(&mut self, line: &[u8], timeout: Duration) -> Result<Answer, Failure> {
        let Self {
            child,
            stdin,
            stdout,
        } = self;
        let timed_out = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            let (done, wait) = mpsc::channel::<()>();
            let timed_out = &timed_out;
            scope.spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                    timed_out.store(true, Ordering::SeqCst);
                    let _ = child.kill();
                }
            });
            let result = Self::exchange(stdin, stdout, line);
            drop(done);
            result
        });
        if timed_out.load(Ordering::SeqCst) {
            return Err(Failure::Broken(format!(
                "no answer within {:.1} s",
                timeout.as_secs_f64()
            )));
        }
        result
    }

    fn exchange(
        stdin: &mut ChildStdin,
        stdout: &mut BufReader<ChildStdout>,
        line: &[u8],
    ) -> Result<Answer, Failure> {
        let broken = |what: &str, e: std::io::Error| {
            Failure::Broken(format!("{what} the helper failed: {e}"))
        };
        stdin
            .write_all(line)
            .and_then(|()| stdin.flush())
            .map_err(|e| broken("writing to", e))?;

        let mut header = Vec::new();
        let n = stdout
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut header)
            .map_err(|e| broken("reading from", e))?;
        if n == 0 {
            return Err(Failure::Broken(
                "the helper exited without answering".to_owned(),
            ));
        }
        let header: WireHeader = serde_json::from_slice(&header).map_err(|e| {
            Failure::Broken(format!(
                "the helper's answer is not understood: {e}: {}",
                String::from_utf8_lossy(&header[..header.len().min(200)]).trim_end()
            ))
        })?;
        if !header.ok {
            return Err(Failure::Refused(
                header
                    .error
                    .unwrap_or_else(|| "failed without saying why".to_owned()),
            ));
        }
        if header.samples > MAX_SAMPLES {
            return Err(Failure::Broken(format!(
                "the helper announced {} samples (at most {MAX_SAMPLES} accepted)",
                header.samples
            )));
        }
        let mut bytes = vec![0u8; header.samples * 2];
        stdout
            .read_exact(&mut bytes)
            .map_err(|e| broken("reading samples from", e))?;
        let samples = bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Answer {
            sample_rate: header.sample_rate,
            samples,
            phonemes: header.phonemes,
        })
    }
}

/// `dir/reelfarm-espeak` if it is an executable file.
fn program_in(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX));
    is_executable(&path).then_some(path)
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Audio and phones from a helper's answer: phone times from the exact sample indices, events
/// at or past the end of the audio dropped, sorted stably by time, each phone ending where the
/// next starts and the last at the end of the audio.
fn to_synthesis(answer: Answer) -> Result<Synthesis, LipsyncError> {
    if answer.sample_rate == 0 {
        return Err(LipsyncError::Voice {
            provider: NAME.to_owned(),
            message: "the helper reported a sample rate of 0".to_owned(),
        });
    }
    let rate = f64::from(answer.sample_rate);
    let samples: Vec<f32> = answer
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let duration_ms = samples.len() as f64 * 1000.0 / rate;
    let mut starts: Vec<(f64, String)> = answer
        .phonemes
        .into_iter()
        .map(|p| {
            let start = match p.sample {
                Some(sample) => sample as f64 * 1000.0 / rate,
                None => p.ms,
            };
            (start, p.ipa)
        })
        .filter(|(start, _)| start.is_finite() && *start >= 0.0 && *start < duration_ms)
        .collect();
    starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ends: Vec<f64> = starts
        .iter()
        .skip(1)
        .map(|(start, _)| *start)
        .chain(std::iter::once(duration_ms))
        .collect();
    let phones = starts
        .into_iter()
        .zip(ends)
        .map(|((start_ms, ipa), end_ms)| Phone {
            start_ms,
            end_ms,
            ipa,
        })
        .collect();
    Ok(Synthesis {
        samples,
        sample_rate: answer.sample_rate,
        phones,
    })
}

impl EspeakVoice {
    /// Finds the helper: `$REELFARM_ESPEAK` if set; else `reelfarm-espeak` beside the running
    /// program or in its parent directory (test programs run from `target/*/deps/`); else on
    /// `PATH`. [`LipsyncError::NoVoice`] if none is found.
    pub fn locate() -> Result<Self, LipsyncError> {
        if let Some(path) = std::env::var_os(ENV_PROGRAM).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if is_executable(&path) {
                return Ok(Self::with_program(path));
            }
            tracing::warn!("{ENV_PROGRAM}={} is not an executable file", path.display());
            return Err(LipsyncError::NoVoice);
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            if let Some(path) = program_in(&dir).or_else(|| dir.parent().and_then(program_in)) {
                return Ok(Self::with_program(path));
            }
        }
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).find_map(|dir| program_in(&dir)))
            .map(Self::with_program)
            .ok_or(LipsyncError::NoVoice)
    }

    /// The helper at `program`. Nothing is started until the first synthesis.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        let max_idle = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 32);
        Self {
            program: program.into(),
            pool: Mutex::new(Vec::new()),
            max_idle,
            timeout: ANSWER_TIMEOUT,
        }
    }

    /// The same voice with another limit on how long one answer may take (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The helper's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn take_helper(&self) -> Option<Helper> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, helper: Helper) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.max_idle {
            pool.push(helper);
        }
        // Otherwise the helper is dropped here, which stops it.
    }

    fn voice_error(&self, message: String) -> LipsyncError {
        LipsyncError::Voice {
            provider: NAME.to_owned(),
            message,
        }
    }

    /// Sends one request line, on an idle helper or a new one; after a pipe-level failure the
    /// helper is stopped and the request tried once more on a fresh helper.
    fn exchange(&self, line: &[u8]) -> Result<Answer, LipsyncError> {
        let mut failures = Vec::new();
        for attempt in 0..2 {
            let pooled = if attempt == 0 {
                self.take_helper()
            } else {
                None
            };
            let mut helper = match pooled {
                Some(helper) => helper,
                None => Helper::spawn(&self.program).map_err(|m| self.voice_error(m))?,
            };
            match helper.request(line, self.timeout) {
                Ok(answer) => {
                    self.give_back(helper);
                    return Ok(answer);
                }
                Err(Failure::Refused(message)) => {
                    self.give_back(helper);
                    return Err(self.voice_error(message));
                }
                Err(Failure::Broken(message)) => {
                    tracing::warn!(
                        program = %self.program.display(),
                        "eSpeak NG helper failed, stopping it: {message}"
                    );
                    drop(helper);
                    failures.push(message);
                }
            }
        }
        Err(self.voice_error(format!(
            "{}: {} (tried twice, the second time with a fresh helper)",
            self.program.display(),
            failures.join("; then: ")
        )))
    }
}

impl Drop for EspeakVoice {
    fn drop(&mut self) {
        // Stops every idle helper (Helper's Drop kills and reaps it).
        self.pool
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl VoiceProvider for EspeakVoice {
    fn name(&self) -> &str {
        NAME
    }

    fn supports(&self, lang: &str) -> bool {
        LANGUAGES.iter().any(|l| l.eq_ignore_ascii_case(lang))
    }

    fn synthesize(
        &self,
        text: &str,
        lang: &str,
        params: &VoiceParams,
    ) -> Result<Synthesis, LipsyncError> {
        if text.trim().is_empty() {
            return Err(LipsyncError::EmptyText);
        }
        let Some(voice) = LANGUAGES.iter().find(|l| l.eq_ignore_ascii_case(lang)) else {
            return Err(LipsyncError::UnsupportedLanguage {
                lang: lang.to_owned(),
                supported: LANGUAGES.join(", "),
            });
        };
        let request = WireRequest {
            text,
            voice: if *voice == "en" { "en-us" } else { voice },
            variant: params.variant.as_deref().filter(|v| !v.trim().is_empty()),
            rate: params.rate_wpm,
            pitch: params.pitch,
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|e| self.voice_error(format!("cannot encode the request: {e}")))?;
        line.push(b'\n');
        to_synthesis(self.exchange(&line)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice() -> EspeakVoice {
        EspeakVoice::locate().unwrap_or_else(|e| {
            panic!(
                "the reelfarm-espeak helper was not found ({e}); \
                 build it first: cargo build --release -p tts-espeak"
            )
        })
    }

    const HINDI: &str = "नमस्ते, आज का मौसम बहुत अच्छा है।";
    const ENGLISH: &str = "Hello, the weather is lovely today.";

    fn check(s: &Synthesis) {
        assert_eq!(s.sample_rate, 22050);
        assert!(!s.samples.is_empty());
        assert!(!s.phones.is_empty());
        assert!(s.samples.iter().all(|x| (-1.0..1.0).contains(x)));
        assert!(s.samples.iter().any(|x| x.abs() > 0.05), "silent");
        let duration = s.duration_ms();
        for p in &s.phones {
            assert!(p.start_ms >= 0.0 && p.start_ms < duration, "{p:?}");
            assert!(p.end_ms >= p.start_ms && p.end_ms <= duration, "{p:?}");
            assert!(!p.ipa.is_empty());
        }
        for w in s.phones.windows(2) {
            assert!(w[0].start_ms <= w[1].start_ms, "{w:?}");
            assert_eq!(w[0].end_ms, w[1].start_ms);
        }
        let last = s.phones.last().expect("phones");
        assert_eq!(last.end_ms, duration);
    }

    #[test]
    fn espeak_speaks_hindi_and_english() {
        let voice = voice();
        assert!(voice.supports("hi") && voice.supports("EN") && voice.supports("ml"));
        assert!(!voice.supports("xx"));
        let hi = voice
            .synthesize(HINDI, "hi", &VoiceParams::default())
            .expect("hindi");
        check(&hi);
        assert!(hi.phones.iter().any(|p| p.ipa == "n"), "{:?}", hi.phones);
        assert!(hi.phones.iter().any(|p| p.ipa == "_"), "{:?}", hi.phones);
        let en = voice
            .synthesize(ENGLISH, "en", &VoiceParams::default())
            .expect("english");
        check(&en);
        assert!(en.phones.iter().any(|p| p.ipa == "h"), "{:?}", en.phones);
        // The same helper served both.
        assert_eq!(voice.pool.lock().expect("pool").len(), 1);
    }

    #[test]
    fn espeak_params_change_the_speech() {
        let voice = voice();
        let plain = voice
            .synthesize(ENGLISH, "en", &VoiceParams::default())
            .expect("plain");
        let params = VoiceParams {
            variant: Some("f3".to_owned()),
            rate_wpm: Some(100),
            pitch: Some(80),
        };
        let slow = voice.synthesize(ENGLISH, "en", &params).expect("slow");
        check(&slow);
        assert!(
            slow.duration_ms() > plain.duration_ms() * 1.4,
            "{} vs {}",
            slow.duration_ms(),
            plain.duration_ms()
        );
        // Settings do not stick to the helper.
        let again = voice
            .synthesize(ENGLISH, "en", &VoiceParams::default())
            .expect("plain again");
        let ratio = again.duration_ms() / plain.duration_ms();
        assert!((0.95..1.05).contains(&ratio), "{ratio}");
        // An unknown variant is refused, and the helper stays usable.
        let bad = VoiceParams {
            variant: Some("no-such-variant".to_owned()),
            ..VoiceParams::default()
        };
        let err = voice
            .synthesize(ENGLISH, "en", &bad)
            .expect_err("must fail");
        assert!(matches!(err, LipsyncError::Voice { .. }), "{err}");
        assert_eq!(voice.pool.lock().expect("pool").len(), 1);
    }

    #[test]
    fn espeak_serves_threads_concurrently() {
        let voice = voice();
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let voice = &voice;
                    scope.spawn(move || {
                        let (text, lang) = if i % 2 == 0 {
                            (HINDI, "hi")
                        } else {
                            (ENGLISH, "en")
                        };
                        voice.synthesize(text, lang, &VoiceParams::default())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for result in &results {
            check(result.as_ref().expect("synthesis"));
        }
        assert_eq!(results[0].as_ref().ok(), results[2].as_ref().ok());
        let idle = voice.pool.lock().expect("pool").len();
        assert!((1..=4).contains(&idle), "{idle}");
    }

    #[test]
    fn espeak_same_request_same_answer() {
        let a = voice();
        let b = voice();
        let params = VoiceParams::default();
        a.synthesize(ENGLISH, "en", &params).expect("history");
        a.synthesize(ENGLISH, "en", &params).expect("history");
        let from_a = a.synthesize(HINDI, "hi", &params).expect("a");
        let from_b = b.synthesize(HINDI, "hi", &params).expect("b");
        assert_eq!(from_a, from_b);
    }

    #[test]
    fn espeak_replaces_a_dead_helper() {
        let voice = voice();
        voice
            .synthesize("one", "en", &VoiceParams::default())
            .expect("first");
        let mut helper = voice.take_helper().expect("idle helper");
        helper.child.kill().expect("kill");
        helper.child.wait().expect("wait");
        voice.give_back(helper);
        let s = voice
            .synthesize("two", "en", &VoiceParams::default())
            .expect("retried on a fresh helper");
        check(&s);
    }

    #[test]
    fn espeak_rejects_bad_input() {
        let voice = voice();
        let err = voice
            .synthesize("hola", "xx", &VoiceParams::default())
            .expect_err("must fail");
        assert!(
            matches!(&err, LipsyncError::UnsupportedLanguage { lang, supported }
                if lang == "xx" && supported.contains("hi")),
            "{err}"
        );
        let err = voice
            .synthesize("  \n", "hi", &VoiceParams::default())
            .expect_err("must fail");
        assert!(matches!(err, LipsyncError::EmptyText), "{err}");
        let missing = EspeakVoice::with_program("/nonexistent/reelfarm-espeak");
        let err = missing
            .synthesize("hello", "en", &VoiceParams::default())
            .expect_err("must fail");
        assert!(matches!(err, LipsyncError::Voice { .. }), "{err}");
        // A program that exits without answering: tried twice, then a clear error.
        if Path::new("/bin/true").exists() {
            let mute = EspeakVoice::with_program("/bin/true");
            let err = mute
                .synthesize("hello", "en", &VoiceParams::default())
                .expect_err("must fail");
            assert!(err.to_string().contains("tried twice"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn espeak_helper_that_hangs_is_stopped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lipsync-hang-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let program = dir.join("hangs");
        std::fs::write(&program, "#!/bin/sh\nexec sleep 30\n").expect("write");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let voice = EspeakVoice::with_program(&program).with_timeout(Duration::from_millis(300));
        // Another test's child process may still hold the script open for writing from the
        // moment it forked (ETXTBSY, "Text file busy"); starting it is then tried again.
        let mut tries = 0;
        let (err, started) = loop {
            let started = std::time::Instant::now();
            let err = voice
                .synthesize("hello", "en", &VoiceParams::default())
                .expect_err("must fail");
            tries += 1;
            if !err.to_string().contains("Text file busy") || tries == 20 {
                break (err, started);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(err.to_string().contains("no answer within 0.3 s"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn espeak_phones_from_answer() {
        let answer = Answer {
            sample_rate: 1000,
            samples: vec![0; 100],
            phonemes: vec![
                WirePhoneme {
                    ms: 50.0,
                    sample: Some(50),
                    ipa: "b".into(),
                },
                WirePhoneme {
                    ms: 0.0,
                    sample: Some(0),
                    ipa: "a".into(),
                },
                WirePhoneme {
                    ms: 50.0,
                    sample: None,
                    ipa: "c".into(),
                },
                WirePhoneme {
                    ms: 100.0,
                    sample: Some(100),
                    ipa: "_".into(),
                },
            ],
        };
        let s = to_synthesis(answer).expect("synthesis");
        let got: Vec<_> = s
            .phones
            .iter()
            .map(|p| (p.start_ms, p.end_ms, p.ipa.as_str()))
            .collect();
        assert_eq!(
            got,
            [(0.0, 50.0, "a"), (50.0, 50.0, "b"), (50.0, 100.0, "c")]
        );
    }
}
