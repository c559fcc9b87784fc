//! A safe wrapper around the global eSpeak NG synthesizer.
//!
//! eSpeak NG keeps all its state in globals, so there is one [`Espeak`] per process
//! ([`Espeak::get`]), initialised on first use, and every synthesis holds a process-wide lock.
//! In synchronous mode the synth callback runs on the thread that called `espeak_Synth`, so the
//! callback collects into a thread-local buffer.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_short, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::ffi;

/// Longest accepted text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Speaking rate bounds, words per minute (`espeakRATE_MINIMUM`..=`espeakRATE_MAXIMUM`).
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 80..=450;
/// Default speaking rate (`espeakRATE_NORMAL`).
pub const DEFAULT_RATE: u32 = 175;
/// Pitch bounds.
pub const PITCH_RANGE: std::ops::RangeInclusive<u32> = 0..=99;
/// Default pitch.
pub const DEFAULT_PITCH: u32 = 50;

/// What to say and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// UTF-8 text; plain text (no SSML, no `[[phoneme]]` input).
    pub text: String,
    /// eSpeak NG voice name (`hi`, `en-us`, ...); `en` means `en-us`.
    pub voice: String,
    /// Voice variant (`f3`, `klatt4`, ...), appended as `voice+variant`.
    pub variant: Option<String>,
    /// Words per minute, 80..=450; default 175.
    pub rate: Option<u32>,
    /// 0..=99; default 50.
    pub pitch: Option<u32>,
}

/// One phoneme event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phoneme {
    /// Sample index where the phoneme starts, from the start of the returned audio.
    pub sample: u32,
    /// eSpeak's own time for it in whole milliseconds (`sample * 1000 / rate`, truncated).
    pub ms: u32,
    /// IPA name as eSpeak reports it; pauses (which eSpeak names with an empty string in IPA
    /// mode) are `_`.
    pub ipa: String,
}

/// Synthesized speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    /// Hz.
    pub sample_rate: u32,
    /// Mono 16-bit samples.
    pub samples: Vec<i16>,
    /// Phonemes in the order eSpeak reported them, each starting before the end of `samples`.
    pub phonemes: Vec<Phoneme>,
}

/// The process's eSpeak NG instance.
#[derive(Debug)]
pub struct Espeak {
    sample_rate: u32,
    data_path: Option<PathBuf>,
}

/// Serialises every call into the library.
static LOCK: Mutex<()> = Mutex::new(());
static INSTANCE: OnceLock<Result<Espeak, String>> = OnceLock::new();

#[derive(Default)]
struct Collector {
    samples: Vec<i16>,
    /// (sample, ms, raw name bytes)
    phonemes: Vec<(i64, i64, [u8; 8])>,
}

thread_local! {
    static COLLECTOR: RefCell<Collector> = RefCell::new(Collector::default());
}

/// The synth callback. Never panics (a panic cannot unwind into C).
unsafe extern "C" fn synth_callback(
    wav: *mut c_short,
    numsamples: c_int,
    events: *mut ffi::espeak_EVENT,
) -> c_int {
    COLLECTOR.with(|cell| {
        let Ok(mut collector) = cell.try_borrow_mut() else {
            return 1; // abort: cannot happen, synthesis is not re-entrant
        };
        if !wav.is_null() && numsamples > 0 {
            // SAFETY: eSpeak passes `numsamples` valid samples at `wav`, alive for this call.
            let chunk = unsafe { std::slice::from_raw_parts(wav, numsamples as usize) };
            collector.samples.extend_from_slice(chunk);
        }
        if events.is_null() {
            return 0;
        }
        let mut event = events.cast_const();
        loop {
            // SAFETY: `events` is an array terminated by an espeakEVENT_LIST_TERMINATED entry,
            // and `event` has not gone past the terminator.
            let ev = unsafe { &*event };
            if ev.type_ == ffi::espeakEVENT_LIST_TERMINATED {
                break;
            }
            if ev.type_ == ffi::espeakEVENT_PHONEME {
                // SAFETY: PHONEME events use the `string` member of the union; any bit pattern
                // is a valid `[c_char; 8]`.
                let raw = unsafe { ev.id.string };
                let bytes = raw.map(|c| c as u8);
                collector.phonemes.push((
                    i64::from(ev.sample),
                    i64::from(ev.audio_position),
                    bytes,
                ));
            }
            // SAFETY: the current entry is not the terminator, so the next one is in the array.
            event = unsafe { event.add(1) };
        }
        0
    })
}

/// The UTF-8 name in a NUL-padded 8-byte field; a character cut off at the end is dropped.
fn phoneme_name(bytes: &[u8; 8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..len];
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    };
    if text.is_empty() {
        "_".to_owned()
    } else {
        text.to_owned()
    }
}

fn espeak_error(code: c_int) -> &'static str {
    match code {
        ffi::EE_OK => "ok",
        ffi::EE_BUFFER_FULL => "buffer full",
        ffi::EE_NOT_FOUND => "not found",
        _ => "internal error",
    }
}

/// The library's version string.
pub fn library_version() -> String {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: a null `path_data` is allowed; the returned pointer is a static NUL-terminated
    // string inside the library (or null, which is checked).
    let version = unsafe { ffi::espeak_Info(std::ptr::null_mut()) };
    if version.is_null() {
        return "unknown".to_owned();
    }
    // SAFETY: non-null, NUL-terminated and static (see above).
    unsafe { CStr::from_ptr(version) }
        .to_string_lossy()
        .into_owned()
}

impl Espeak {
    /// The process's instance, initialising eSpeak NG on the first call.
    pub fn get() -> Result<&'static Espeak, String> {
        INSTANCE
            .get_or_init(|| {
                let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
                Self::init()
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn init() -> Result<Espeak, String> {
        let options = ffi::espeakINITIALIZE_PHONEME_EVENTS
            | ffi::espeakINITIALIZE_PHONEME_IPA
            | ffi::espeakINITIALIZE_DONT_EXIT;
        // SAFETY: called once per process (guarded by INSTANCE and LOCK); a null path selects the
        // default data directory (or $ESPEAK_DATA_PATH).
        let rate = unsafe {
            ffi::espeak_Initialize(ffi::AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), options)
        };
        if rate <= 0 {
            return Err(format!(
                "espeak_Initialize failed ({rate}): is the espeak-ng-data directory installed?"
            ));
        }
        // SAFETY: `synth_callback` has the C signature eSpeak expects and lives forever.
        unsafe { ffi::espeak_SetSynthCallback(Some(synth_callback)) };

        let mut path: *const c_char = std::ptr::null();
        // SAFETY: `path` is a valid out-pointer; eSpeak stores a pointer to its static path
        // buffer there.
        unsafe { ffi::espeak_Info(&mut path) };
        let data_path = if path.is_null() {
            None
        } else {
            // SAFETY: non-null pointer to eSpeak's NUL-terminated static path buffer.
            let p = unsafe { CStr::from_ptr(path) };
            Some(PathBuf::from(p.to_string_lossy().into_owned()))
        };
        Ok(Espeak {
            sample_rate: rate as u32,
            data_path,
        })
    }

    /// The voice name eSpeak is asked for: `en` becomes `en-us`, and the variant is appended.
    fn voice_name(&self, req: &Request) -> Result<String, String> {
        let voice = req.voice.trim();
        if voice.is_empty() {
            return Err("voice is empty".to_owned());
        }
        if voice.contains(['\0', '/', '\\']) || voice.starts_with('.') {
            return Err(format!("invalid voice name `{voice}`"));
        }
        let voice = if voice.eq_ignore_ascii_case("en") {
            "en-us"
        } else {
            voice
        };
        let Some(variant) = req.variant.as_deref().map(str::trim) else {
            return Ok(voice.to_owned());
        };
        if variant.is_empty() {
            return Ok(voice.to_owned());
        }
        if voice.contains('+') {
            return Err(format!(
                "voice `{voice}` already names a variant; variant `{variant}` given too"
            ));
        }
        if variant.contains(['\0', '/', '\\', '+']) || variant.starts_with('.') {
            return Err(format!("invalid voice variant `{variant}`"));
        }
        // eSpeak silently ignores an unknown variant, so check that it exists.
        if let Some(dir) = &self.data_path {
            let file = dir.join("voices").join("!v").join(variant);
            if !file.is_file() {
                return Err(format!(
                    "unknown voice variant `{variant}` (no {})",
                    file.display()
                ));
            }
        }
        Ok(format!("{voice}+{variant}"))
    }

    /// Speaks `req`. Voice, rate and pitch are set afresh for every request.
    pub fn synthesize(&self, req: &Request) -> Result<Speech, String> {
        let chars = req.text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(format!(
                "text is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed"
            ));
        }
        if req.text.trim().is_empty() {
            return Err("text is empty".to_owned());
        }
        let rate = req.rate.unwrap_or(DEFAULT_RATE);
        if !RATE_RANGE.contains(&rate) {
            return Err(format!(
                "rate {rate} out of range {}..={} words per minute",
                RATE_RANGE.start(),
                RATE_RANGE.end()
            ));
        }
        let pitch = req.pitch.unwrap_or(DEFAULT_PITCH);
        if !PITCH_RANGE.contains(&pitch) {
            return Err(format!(
                "pitch {pitch} out of range {}..={}",
                PITCH_RANGE.start(),
                PITCH_RANGE.end()
            ));
        }
        let name = self.voice_name(req)?;
        let c_name = CString::new(name.clone()).map_err(|_| "voice name contains NUL")?;
        let c_text =
            CString::new(req.text.as_str()).map_err(|_| "text contains a NUL character")?;

        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());

        // SAFETY: `c_name` is a valid NUL-terminated string for the duration of the call; the
        // library is initialised and access is serialised by LOCK.
        let rc = unsafe { ffi::espeak_SetVoiceByName(c_name.as_ptr()) };
        if rc != ffi::EE_OK {
            return Err(if rc == ffi::EE_NOT_FOUND {
                format!("unknown voice `{name}`")
            } else {
                format!("setting voice `{name}` failed: {}", espeak_error(rc))
            });
        }
        for (param, value, what) in [
            (ffi::espeakRATE, rate, "rate"),
            (ffi::espeakPITCH, pitch, "pitch"),
        ] {
            // SAFETY: plain integer arguments; serialised by LOCK.
            let rc = unsafe { ffi::espeak_SetParameter(param, value as c_int, 0) };
            if rc != ffi::EE_OK {
                return Err(format!("setting {what} failed: {}", espeak_error(rc)));
            }
        }

        COLLECTOR.with(|c| *c.borrow_mut() = Collector::default());
        let bytes = c_text.as_bytes_with_nul();
        // SAFETY: `bytes` is NUL-terminated UTF-8 that outlives the call (synchronous mode
        // returns only when synthesis is complete); a null unique_identifier and user_data are
        // allowed. Flags: UTF-8 only, so no SSML, no [[phonemes]], and no pause added at the end.
        let rc = unsafe {
            ffi::espeak_Synth(
                bytes.as_ptr().cast::<c_void>(),
                bytes.len(),
                0,
                ffi::POS_CHARACTER,
                0,
                ffi::espeakCHARS_UTF8,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        // No espeak_Synchronize: in synchronous mode espeak_Synth has already finished, and
        // Synchronize would take the lock of eSpeak's idle command thread, which a forked
        // child (see `isolate`) must not touch.
        let collected = COLLECTOR.with(|c| std::mem::take(&mut *c.borrow_mut()));
        if rc != ffi::EE_OK {
            return Err(format!("espeak_Synth failed: {}", espeak_error(rc)));
        }

        let total = collected.samples.len() as i64;
        let phonemes = collected
            .phonemes
            .iter()
            .filter(|(sample, _, _)| (0..total).contains(sample))
            .map(|(sample, ms, name)| Phoneme {
                sample: *sample as u32,
                ms: (*ms).max(0) as u32,
                ipa: phoneme_name(name),
            })
            .collect();
        Ok(Speech {
            sample_rate: self.sample_rate,
            samples: collected.samples,
            phonemes,
        })
    }
}

/// Releases the library's resources; call at most once, at exit, after all synthesis.
pub fn terminate() {
    if INSTANCE.get().is_some_and(Result::is_ok) {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: initialised, serialised by LOCK, and no synthesis follows (the process exits).
        unsafe { ffi::espeak_Terminate() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str, voice: &str) -> Request {
        Request {
            text: text.to_owned(),
            voice: voice.to_owned(),
            variant: None,
            rate: None,
            pitch: None,
        }
    }

    fn check(speech: &Speech) {
        assert_eq!(speech.sample_rate, 22050);
        assert!(!speech.samples.is_empty(), "no samples");
        assert!(!speech.phonemes.is_empty(), "no phonemes");
        let duration_ms = speech.samples.len() as f64 * 1000.0 / f64::from(speech.sample_rate);
        for pair in speech.phonemes.windows(2) {
            assert!(pair[0].sample <= pair[1].sample, "{:?}", speech.phonemes);
            assert!(pair[0].ms <= pair[1].ms, "{:?}", speech.phonemes);
        }
        let last = speech.phonemes.last().expect("phonemes");
        assert!((last.sample as usize) < speech.samples.len());
        assert!(f64::from(last.ms) < duration_ms);
        for p in &speech.phonemes {
            let exact = f64::from(p.sample) * 1000.0 / f64::from(speech.sample_rate);
            assert!((f64::from(p.ms) - exact).abs() <= 1.0, "{p:?}");
            assert!(!p.ipa.is_empty());
        }
        assert!(
            speech.samples.iter().any(|&s| s.unsigned_abs() > 1000),
            "silent"
        );
    }

    #[test]
    fn espeak_speaks_hello_in_english() {
        let espeak = Espeak::get().expect("init");
        let speech = espeak.synthesize(&req("hello", "en")).expect("synth");
        check(&speech);
        let names: Vec<_> = speech.phonemes.iter().map(|p| p.ipa.as_str()).collect();
        assert!(names.contains(&"h"), "{names:?}");
        assert!(names.contains(&"l"), "{names:?}");
    }

    #[test]
    fn espeak_speaks_namaste_in_hindi() {
        let espeak = Espeak::get().expect("init");
        let speech = espeak.synthesize(&req("नमस्ते", "hi")).expect("synth");
        check(&speech);
        let names: Vec<_> = speech.phonemes.iter().map(|p| p.ipa.as_str()).collect();
        assert_eq!(names.first(), Some(&"n"), "{names:?}");
        assert!(names.contains(&"m"), "{names:?}");
    }

    #[test]
    fn espeak_settings_do_not_leak_between_requests() {
        let espeak = Espeak::get().expect("init");
        let plain = req("The quick brown fox jumps over the lazy dog.", "en");
        let before = espeak.synthesize(&plain).expect("plain");
        let mut slow = plain.clone();
        slow.rate = Some(90);
        slow.pitch = Some(20);
        slow.variant = Some("f3".to_owned());
        let slow = espeak.synthesize(&slow).expect("slow");
        assert!(slow.samples.len() > before.samples.len() * 3 / 2);
        let after = espeak.synthesize(&plain).expect("plain again");
        let (a, b) = (before.samples.len() as f64, after.samples.len() as f64);
        assert!((a - b).abs() / a < 0.05, "{a} vs {b}");
    }

    #[test]
    fn espeak_rejects_bad_requests() {
        let espeak = Espeak::get().expect("init");
        let err = espeak
            .synthesize(&req("hello", "no-such-voice"))
            .expect_err("must fail");
        assert!(err.contains("unknown voice"), "{err}");
        let mut r = req("hello", "hi");
        r.variant = Some("no-such-variant".to_owned());
        let err = espeak.synthesize(&r).expect_err("must fail");
        assert!(err.contains("unknown voice variant"), "{err}");
        let err = espeak.synthesize(&req(" \n", "hi")).expect_err("must fail");
        assert!(err.contains("empty"), "{err}");
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let err = espeak.synthesize(&req(&long, "en")).expect_err("must fail");
        assert!(err.contains("at most"), "{err}");
        let mut r = req("hello", "en");
        r.rate = Some(1000);
        assert!(espeak.synthesize(&r).is_err());
        let mut r = req("hello", "en");
        r.pitch = Some(100);
        assert!(espeak.synthesize(&r).is_err());
    }

    #[test]
    fn espeak_phoneme_names_are_decoded() {
        assert_eq!(phoneme_name(b"n\0\0\0\0\0\0\0"), "n");
        assert_eq!(phoneme_name(&[0; 8]), "_");
        // "ʈʰ" is 4 bytes; eight bytes ending in a cut-off two-byte character.
        let mut b = [0u8; 8];
        b[..7].copy_from_slice("aaaaaaa".as_bytes());
        b[7] = 0xCA;
        assert_eq!(phoneme_name(&b), "aaaaaaa");
        let full: [u8; 8] = "ʈʰʈʰ".as_bytes().try_into().expect("8 bytes");
        assert_eq!(phoneme_name(&full), "ʈʰʈʰ");
    }
}
