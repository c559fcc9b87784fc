//! `reelfarm-espeak`: the eSpeak NG text-to-speech helper of reelfarm.
//!
//! # Why a separate process
//!
//! libespeak-ng is licensed GPL-3.0-or-later. The rest of reelfarm is MIT OR Apache-2.0, so it
//! must not link the library. This program (and only this program) links it, is itself
//! GPL-3.0-or-later, and talks to reelfarm over a pipe: the `lipsync` crate's `EspeakVoice`
//! starts it as a child process and exchanges the messages below, which keeps the two programs
//! separate works. Leaving it out of a deployment only removes the built-in voice.
//!
//! It also suits eSpeak NG, whose state is global and not thread-safe: each helper process
//! initialises the library once and serves one request at a time; the caller runs several
//! helpers for parallelism.
//!
//! # Same request, same answer
//!
//! eSpeak NG carries state from one synthesis to the next that changes the sound (the phase of
//! its pitch flutter, the random numbers of the Klatt voices), so the same text spoken twice by
//! one process differs by a few samples and its phoneme times shift. On Linux the helper
//! therefore initialises the library once and then speaks each request in a child process
//! forked from that initialised state (about 2 ms per request, mostly reloading the voice):
//! the answer to a request depends on nothing but the request, whichever helper serves it and
//! whatever it served before, and a crash inside the library fails one request, not the helper.
//! `--no-fork` speaks in-process instead.
//!
//! # Protocol
//!
//! The helper reads requests from standard input, one JSON object per line (blank lines are
//! ignored):
//!
//! ```json
//! {"text": "नमस्ते", "voice": "hi", "variant": "f3", "rate": 175, "pitch": 50}
//! ```
//!
//! * `text` (required): plain UTF-8 text, at most 10,000 characters, not blank. It is not read
//!   as SSML, and `[[...]]` is not read as phoneme input.
//! * `voice` (required): an eSpeak NG voice name: `hi`, `ta`, `bn`, `te`, `mr`, `kn`, `ml`, `gu`,
//!   `pa`, `ar`, `es`, `en` (which means `en-us`), or any other voice eSpeak NG knows (`en-gb`,
//!   `fr`...). An unknown voice is an error.
//! * `variant` (optional, may be `null`): a voice variant from `espeak-ng-data/voices/!v`
//!   (`f3`, `m3`, `klatt4`...), spoken as `voice+variant`. An unknown variant is an error.
//! * `rate` (optional): words per minute, 80..=450, default 175.
//! * `pitch` (optional): 0..=99, default 50.
//!
//! Voice, variant, rate and pitch are set afresh for every request (missing ones to their
//! defaults), so nothing carries over from one request to the next. Unknown fields are an error.
//!
//! For every request the helper writes one JSON header line to standard output, then, on
//! success, exactly `samples` mono 16-bit little-endian PCM samples (`2 * samples` bytes) with
//! no separator:
//!
//! ```json
//! {"ok":true,"sample_rate":22050,"samples":16707,"phonemes":[{"ms":11,"sample":264,"ipa":"h"},...]}
//! ```
//!
//! * `phonemes` are eSpeak NG's phoneme events, in the order it reports them: `sample` is the
//!   exact sample index in the returned audio where the phoneme starts, `ms` eSpeak's own time
//!   in whole milliseconds (the same instant, truncated), and `ipa` the phoneme's IPA name as
//!   eSpeak gives it (up to 8 bytes of UTF-8, e.g. `ʈʰ`, `eː`, `ɛ̃`, `oʊ`). Pauses, which eSpeak
//!   names with an empty string in IPA mode, are `_`. Events are passed on as they are, for
//!   instance the separate `ʲ` events of the Dravidian voices, and the language-switch markers
//!   such as `(en)` … `(gu)` around a word eSpeak speaks in another language; events at or past
//!   the end of the audio are left out. A phoneme ends where the next one starts, the last one at the end
//!   of the audio.
//! * No pause is added after the end of the text (like `espeak-ng -z`).
//!
//! or, on failure, `{"ok":false,"error":"..."}` and no samples; the helper then reads the next
//! request. Bad JSON, an unknown voice or variant, an out-of-range rate or pitch, blank or
//! too-long text are such failures. The helper exits with status 0 at the end of standard
//! input, and with status 1 if it cannot write its output or read its input.
//!
//! # Build
//!
//! Links libespeak-ng (`libespeak-ng-dev` on Debian) and needs its `espeak-ng-data` files at
//! run time (found by the library itself; `ESPEAK_DATA_PATH` overrides). The FFI declarations in `ffi` are written by hand from `speak_lib.h` (API
//! revision 12); a test checks the event struct's layout.
#![deny(unsafe_op_in_unsafe_fn)]

mod ffi;
#[cfg(target_os = "linux")]
mod isolate;
mod synth;

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// Longest accepted request line in bytes (the text limit is 10,000 characters).
const MAX_LINE_BYTES: u64 = 1 << 20;

const HELP: &str = "\
reelfarm-espeak: eSpeak NG text-to-speech helper for reelfarm (GPL-3.0-or-later).

Usage: reelfarm-espeak [--no-fork] | --help | --version

  --no-fork   speak in this process instead of a child forked per request (faster by about
              2 ms a request, but the audio then depends slightly on earlier requests)

Reads one JSON request per line on stdin:
  {\"text\": \"...\", \"voice\": \"hi\", \"variant\": \"f3\" | null, \"rate\": 175 | null, \"pitch\": 50 | null}
and answers each with one JSON header line on stdout,
  {\"ok\": true, \"sample_rate\": 22050, \"samples\": N, \"phonemes\": [{\"ms\": 0, \"sample\": 0, \"ipa\": \"n\"}, ...]}
followed by N little-endian i16 samples (2N bytes), or {\"ok\": false, \"error\": \"...\"}.
Exits 0 at end of input.
";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    text: String,
    voice: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    rate: Option<u32>,
    #[serde(default)]
    pitch: Option<u32>,
}

#[derive(Serialize)]
struct WirePhoneme<'a> {
    ms: u32,
    sample: u32,
    ipa: &'a str,
}

#[derive(Serialize)]
struct WireOk<'a> {
    ok: bool,
    sample_rate: u32,
    samples: usize,
    phonemes: Vec<WirePhoneme<'a>>,
}

#[derive(Serialize)]
struct WireErr<'a> {
    ok: bool,
    error: &'a str,
}

/// Reads one line of at most MAX_LINE_BYTES; `Ok(None)` at end of input, `Ok(Some(Err))` for a
/// line that is too long or not UTF-8 (consumed entirely).
fn read_request_line(input: &mut impl BufRead) -> std::io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE_BYTES {
        // Skip the rest of the overlong line.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m = input
                .by_ref()
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut rest)?;
            if m == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(Err(format!(
            "request line longer than {MAX_LINE_BYTES} bytes"
        ))));
    }
    Ok(Some(
        String::from_utf8(buf).map_err(|_| "request is not valid UTF-8".to_owned()),
    ))
}

/// Decodes a request line.
fn parse_request(line: Result<String, String>) -> Result<synth::Request, String> {
    let req: WireRequest = serde_json::from_str(&line?).map_err(|e| format!("bad request: {e}"))?;
    Ok(synth::Request {
        text: req.text,
        voice: req.voice,
        variant: req.variant,
        rate: req.rate,
        pitch: req.pitch,
    })
}

/// Writes one answer (header line, then the samples) in a single write, and flushes.
fn respond(result: Result<synth::Speech, String>, out: &mut impl Write) -> std::io::Result<()> {
    let bytes = match result {
        Ok(speech) => {
            let header = WireOk {
                ok: true,
                sample_rate: speech.sample_rate,
                samples: speech.samples.len(),
                phonemes: speech
                    .phonemes
                    .iter()
                    .map(|p| WirePhoneme {
                        ms: p.ms,
                        sample: p.sample,
                        ipa: &p.ipa,
                    })
                    .collect(),
            };
            let mut bytes = serde_json::to_vec(&header)?;
            bytes.reserve(1 + 2 * speech.samples.len());
            bytes.push(b'\n');
            bytes.extend(speech.samples.iter().flat_map(|s| s.to_le_bytes()));
            bytes
        }
        Err(error) => {
            let mut bytes = serde_json::to_vec(&WireErr {
                ok: false,
                error: &error,
            })?;
            bytes.push(b'\n');
            bytes
        }
    };
    out.write_all(&bytes)?;
    out.flush()
}

/// Answers one request line; with `isolate`, the synthesis runs in a forked child.
fn answer(
    line: Result<String, String>,
    out: &mut impl Write,
    isolate: bool,
) -> std::io::Result<()> {
    let prepared = parse_request(line).and_then(|req| Ok((synth::Espeak::get()?, req)));
    let (espeak, req) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return respond(Err(error), out),
    };
    #[cfg(target_os = "linux")]
    if isolate {
        return answer_forked(espeak, &req, out);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = isolate;
    respond(espeak.synthesize(&req), out)
}

/// Exit status of a child whose answer could not be written.
#[cfg(target_os = "linux")]
const CHILD_WRITE_FAILED: i32 = 3;
/// Exit status of a child that panicked.
#[cfg(target_os = "linux")]
const CHILD_PANICKED: i32 = 4;

/// Speaks `req` in a child forked from this (initialised, never-synthesizing) process, which
/// writes the answer itself; see [`isolate`].
#[cfg(target_os = "linux")]
fn answer_forked(
    espeak: &synth::Espeak,
    req: &synth::Request,
    out: &mut impl Write,
) -> std::io::Result<()> {
    use isolate::{Ended, Forked};
    // Nothing of ours may be left in the buffer for the child to write a second time.
    out.flush()?;
    // SAFETY: the child only synthesizes (eSpeak's synchronous path, which does not touch the
    // lock of eSpeak's idle command thread, the one other thread of this process), allocates
    // (made fork-safe by glibc), writes to stdout through `out` (whose lock this thread holds),
    // and leaves through `exit_child`, panics included.
    match unsafe { isolate::fork_process() }? {
        Forked::Child => {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                respond(espeak.synthesize(req), out)
            }));
            isolate::exit_child(match result {
                Ok(Ok(())) => 0,
                Ok(Err(_)) => CHILD_WRITE_FAILED,
                Err(_) => CHILD_PANICKED,
            })
        }
        Forked::Parent(pid) => match isolate::wait_child(pid)? {
            Ended::Exited(0) => Ok(()),
            Ended::Exited(CHILD_WRITE_FAILED) => Err(std::io::Error::other(
                "writing the answer to standard output failed",
            )),
            ended => respond(
                Err(format!(
                    "synthesis failed: its process ended with {ended:?}"
                )),
                out,
            ),
        },
    }
}

fn serve(isolate: bool) -> std::io::Result<()> {
    // Initialise eSpeak NG now, once, so that every request (and every forked child) starts
    // from the initialised state; an error is reported to each request.
    let _ = synth::Espeak::get();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Some(line) = read_request_line(&mut input)? {
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        answer(line, &mut out, isolate)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut isolate = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!(
                    "reelfarm-espeak {} (eSpeak NG {})",
                    env!("CARGO_PKG_VERSION"),
                    synth::library_version()
                );
                return ExitCode::SUCCESS;
            }
            "--no-fork" => isolate = false,
            other => {
                eprintln!("reelfarm-espeak: unknown argument `{other}` (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let result = serve(isolate);
    synth::terminate();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reelfarm-espeak: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Vec<u8> {
        let mut reader = std::io::BufReader::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(line) = read_request_line(&mut reader).expect("read") {
            if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
                continue;
            }
            answer(line, &mut out, false).expect("write");
        }
        out
    }

    /// Splits a response stream into (header, samples) pairs.
    fn parse(mut bytes: &[u8]) -> Vec<(serde_json::Value, Vec<i16>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let nl = bytes.iter().position(|&b| b == b'\n').expect("header line");
            let header: serde_json::Value = serde_json::from_slice(&bytes[..nl]).expect("json");
            bytes = &bytes[nl + 1..];
            let n = header["samples"].as_u64().unwrap_or(0) as usize;
            let samples = bytes[..2 * n]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            bytes = &bytes[2 * n..];
            out.push((header, samples));
        }
        out
    }

    #[test]
    fn espeak_protocol_round_trip() {
        let input = concat!(
            r#"{"text": "hello", "voice": "en"}"#,
            "\n\n",
            "not json\n",
            r#"{"text": "नमस्ते", "voice": "hi", "variant": "f3", "rate": 150, "pitch": 60}"#,
            "\n",
            r#"{"text": "hola", "voice": "klingon-xx", "variant": null}"#,
            "\n",
            r#"{"text": "hola", "voice": "es", "speed": 3}"#,
            "\n",
            r#"{"text": "hola", "voice": "es"}"#,
        );
        let responses = parse(&run(input));
        assert_eq!(responses.len(), 6);
        let oks: Vec<bool> = responses
            .iter()
            .map(|(h, _)| h["ok"].as_bool().expect("ok"))
            .collect();
        assert_eq!(oks, [true, false, true, false, false, true]);
        for (header, samples) in &responses {
            if header["ok"] == true {
                assert_eq!(header["sample_rate"], 22050);
                assert_eq!(header["samples"].as_u64(), Some(samples.len() as u64));
                let phonemes = header["phonemes"].as_array().expect("phonemes");
                assert!(!phonemes.is_empty());
                for p in phonemes {
                    assert!(p["sample"].as_u64().expect("sample") < samples.len() as u64);
                    assert!(!p["ipa"].as_str().expect("ipa").is_empty());
                }
            } else {
                assert!(!header["error"].as_str().expect("error").is_empty());
            }
        }
        let unknown = responses[3].0["error"].as_str().expect("error");
        assert!(unknown.contains("unknown voice"), "{unknown}");
    }
}
