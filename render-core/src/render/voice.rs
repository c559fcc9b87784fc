//! The job's voice and the presenters' lip-sync: which voice a render speaks with, its mouth
//! track and that track's warnings, and the audio mix built around the voice.

use std::time::Instant;

use lipsync::{Engine, LipsyncError, Track, VoiceParams};
use template::{Bundle, ResolvedContent, Timeline};

use super::{RenderRequest, StageTimings};
use crate::audio::{self, MixSpec, MusicTrack, Pcm, VoiceTrack};
use crate::RenderError;

/// The job's voice, ready to mix, and the presenters' mouth track.
#[derive(Default)]
pub(super) struct Voice {
    /// The voice for the mix; `None` when there is none.
    pub track: Option<VoiceTrack>,
    /// The mouth track, when the timeline has a presenter and something to follow.
    pub mouth: Option<Track>,
}

/// The first presenter layer of the timeline, if any.
pub(super) fn first_presenter(timeline: &Timeline) -> Option<&template::ResolvedLayer> {
    timeline
        .layers
        .iter()
        .find(|l| matches!(l.content, ResolvedContent::Presenter { .. }))
}

/// Finds the job's voice and, when the timeline has presenters, its mouth track. The voice is,
/// in order: the request's own file, the template's default file for the language, the voice
/// script spoken by the built-in voice (`audio.voice.tts`), or none.
pub(super) fn prepare_voice(
    engine: &Engine,
    bundle: &Bundle,
    req: &RenderRequest,
    timeline: &Timeline,
    warnings: &mut Vec<String>,
    timings: &mut StageTimings,
) -> Result<Voice, RenderError> {
    let presenter = first_presenter(timeline);
    let lang = timeline.lang.as_str();
    let script = timeline.voice_script.as_deref();
    let injected = presenter.and(req.mouth_track.clone());
    let slot = match (&bundle.manifest.audio.voice, req.voice_file(bundle)) {
        (None, Some(_)) => return Err(RenderError::NoVoiceSlot),
        (None, None) => {
            if let (Some(p), None) = (presenter, &injected) {
                warnings.push(format!(
                    "presenter layer `{}`: the template has no voice slot (audio.voice); the mouth rests",
                    p.id
                ));
            }
            return Ok(Voice {
                track: None,
                mouth: injected,
            });
        }
        (Some(slot), Some(path)) => {
            let pcm = audio::decode_file(&path)?;
            if pcm.duration_secs() > slot.max_duration + 1e-3 {
                return Err(RenderError::VoiceTooLong {
                    seconds: pcm.duration_secs(),
                    max: slot.max_duration,
                });
            }
            let mouth = match (presenter, injected) {
                (Some(_), Some(track)) => Some(track),
                (Some(p), None) => {
                    let t = Instant::now();
                    let mono = audio::to_mono(&pcm);
                    let analyze =
                        |transcript| engine.analyze(&mono, audio::SAMPLE_RATE, lang, transcript);
                    let result = match analyze(script) {
                        // Aligning to the script needs the built-in voice; the audio alone
                        // needs nothing.
                        Err(LipsyncError::NoVoice) if script.is_some() => {
                            warnings.push(format!(
                                "presenter layer `{}`: no text-to-speech helper to align the voice script; mouth shapes estimated from the audio alone",
                                p.id
                            ));
                            analyze(None)
                        }
                        other => other,
                    };
                    let track = result.map_err(|error| RenderError::LipSync {
                        layer: p.id.clone(),
                        lang: lang.to_owned(),
                        error,
                    })?;
                    timings.lipsync += t.elapsed();
                    Some(track)
                }
                (None, _) => None,
            };
            return Ok(Voice {
                track: Some(VoiceTrack {
                    pcm,
                    start: slot.start,
                    gain_db: slot.gain_db,
                }),
                mouth,
            });
        }
        (Some(slot), None) => slot,
    };
    if let (Some(tts), Some(script)) = (&slot.tts, script) {
        let t = Instant::now();
        let params = VoiceParams {
            variant: tts.variant.clone(),
            rate_wpm: tts.rate,
            pitch: tts.pitch,
        };
        let (speech, track) =
            engine
                .speak(script, lang, &params)
                .map_err(|error| RenderError::Speech {
                    lang: lang.to_owned(),
                    error,
                })?;
        timings.lipsync += t.elapsed();
        let seconds = speech.duration_ms() / 1000.0;
        if seconds > slot.max_duration + 1e-3 {
            return Err(RenderError::ScriptTooLong {
                lang: lang.to_owned(),
                seconds,
                max: slot.max_duration,
            });
        }
        let pcm = audio::from_mono("built-in voice", &speech.samples, speech.sample_rate)?;
        return Ok(Voice {
            track: Some(VoiceTrack {
                pcm,
                start: slot.start,
                gain_db: slot.gain_db,
            }),
            mouth: presenter.map(|_| injected.unwrap_or(track)),
        });
    }
    if let (Some(p), None) = (presenter, &injected) {
        warnings.push(format!(
            "presenter layer `{}`: no voice for language `{lang}` (no voice file, no default voice and no spoken script); the mouth rests",
            p.id
        ));
    }
    Ok(Voice {
        track: None,
        mouth: injected,
    })
}

/// Adds a mouth track's warnings to the job's.
pub(super) fn track_warnings(
    track: Option<&Track>,
    timeline: &Timeline,
    warnings: &mut Vec<String>,
) {
    if let (Some(track), Some(p)) = (track, first_presenter(timeline)) {
        warnings.extend(
            track
                .warnings
                .iter()
                .map(|w| format!("presenter layer `{}`: lip-sync: {w}", p.id)),
        );
    }
}

/// Mixes the template's music (decoded here) with `voice` over the whole video, to the
/// template's loudness, and adds the mix's warnings to the job's.
pub(super) fn mix_audio(
    bundle: &Bundle,
    voice: Option<VoiceTrack>,
    duration: f64,
    warnings: &mut Vec<String>,
) -> Result<Pcm, RenderError> {
    let spec = &bundle.manifest.audio;
    let music = match &spec.music {
        Some(m) => Some(MusicTrack {
            pcm: audio::decode_file(&bundle.media_path(&m.src))?,
            gain_db: m.gain_db,
            duck_db: m.duck_db,
            fade_out: m.fade_out,
        }),
        None => None,
    };
    let mix = audio::mix(&MixSpec {
        duration,
        music,
        voice,
        loudness_lufs: spec.loudness_lufs,
    })?;
    warnings.extend(mix.warnings);
    Ok(mix.pcm)
}
