//! The accuracy evaluation: speech synthesized in every supported language by voices other than
//! the alignment reference's, scored against the synthesizer's own phoneme times. Used by the
//! test suite (which asserts the thresholds) and by `reelfarm bench lipsync` (which reports).

use std::time::{Duration, Instant};

use crate::score::{score, Score};
use crate::{reference_track, Engine, LipsyncError, Method, VoiceParams};

/// Frames count as correct when the reference holds the shape within this many ms.
pub const TOLERANCE_MS: f64 = 40.0;

/// One test sentence per language: everyday customer-message speech, 3–6 s.
pub const SENTENCES: &[(&str, &str)] = &[
    ("hi", "नमस्ते प्रिया, आपका ऑर्डर आ गया है। हमारे साथ खरीदारी करने के लिए बहुत धन्यवाद।"),
    ("ta", "வணக்கம் பிரியா, உங்கள் ஆர்டர் வந்துவிட்டது. எங்களிடம் வாங்கியதற்கு மிக்க நன்றி."),
    ("bn", "নমস্কার প্রিয়া, আপনার অর্ডার এসে গেছে। আমাদের সাথে কেনাকাটা করার জন্য অনেক ধন্যবাদ।"),
    ("te", "నమస్కారం ప్రియా, మీ ఆర్డర్ వచ్చేసింది. మాతో షాపింగ్ చేసినందుకు చాలా ధన్యవాదాలు."),
    ("mr", "नमस्कार प्रिया, तुमची ऑर्डर आली आहे. आमच्याकडून खरेदी केल्याबद्दल खूप धन्यवाद."),
    ("kn", "ನಮಸ್ಕಾರ ಪ್ರಿಯಾ, ನಿಮ್ಮ ಆರ್ಡರ್ ಬಂದಿದೆ. ನಮ್ಮೊಂದಿಗೆ ಶಾಪಿಂಗ್ ಮಾಡಿದ್ದಕ್ಕಾಗಿ ತುಂಬಾ ಧನ್ಯವಾದಗಳು."),
    ("ml", "നമസ്കാരം പ്രിയ, നിങ്ങളുടെ ഓർഡർ എത്തി. ഞങ്ങളോടൊപ്പം ഷോപ്പിംഗ് ചെയ്തതിന് വളരെ നന്ദി."),
    ("gu", "નમસ્તે પ્રિયા, તમારો ઓર્ડર આવી ગયો છે. અમારી સાથે ખરીદી કરવા બદલ ખૂબ આભાર."),
    ("pa", "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਪ੍ਰਿਆ, ਤੁਹਾਡਾ ਆਰਡਰ ਆ ਗਿਆ ਹੈ। ਸਾਡੇ ਨਾਲ ਖਰੀਦਦਾਰੀ ਕਰਨ ਲਈ ਬਹੁਤ ਧੰਨਵਾਦ।"),
    ("en", "Hi Priya, your order has arrived. Thank you so much for shopping with us, and enjoy your new bag!"),
    ("ar", "مَرْحَبًا بِرِيَا، لَقَدْ وَصَلَ طَلَبُكِ. شُكْرًا جَزِيلًا لِتَسَوُّقِكِ مَعَنَا."),
    ("es", "Hola Priya, tu pedido ha llegado. Muchas gracias por comprar con nosotros y disfruta tu bolso nuevo."),
];

/// A voice the supplied audio is spoken with.
#[derive(Debug, Clone)]
pub struct TestVoice {
    /// Label for reports.
    pub label: &'static str,
    /// eSpeak NG settings; none is a reference voice (default or `f2` at default rate and pitch).
    pub params: VoiceParams,
    /// White noise added at this signal-to-noise ratio (dB), if any.
    pub snr_db: Option<f32>,
}

/// The voices the supplied audio is spoken with.
pub fn test_voices() -> Vec<TestVoice> {
    let v = |label, variant: &str, rate: u32, pitch: u32, snr_db| TestVoice {
        label,
        params: VoiceParams {
            variant: Some(variant.to_owned()),
            rate_wpm: Some(rate),
            pitch: Some(pitch),
        },
        snr_db,
    };
    vec![
        v("f3 150wpm p70", "f3", 150, 70, None),
        v("m3 220wpm p35", "m3", 220, 35, None),
        v("klatt4 190wpm p55", "klatt4", 190, 55, None),
        v("m1 160wpm p40 +noise 20dB", "m1", 160, 40, Some(20.0)),
    ]
}

/// Adds deterministic white noise at `snr_db` below the signal's RMS.
fn add_noise(samples: &mut [f32], snr_db: f32) {
    let rms = (samples.iter().map(|v| v * v).sum::<f32>() / samples.len().max(1) as f32).sqrt();
    // Uniform noise of amplitude a has RMS a/√3.
    let amp = rms * 10f32.powf(-snr_db / 20.0) * 3f32.sqrt();
    let mut x = 0x9E37_79B9u32;
    for v in samples {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *v += (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp;
    }
}

/// Results of one utterance.
#[derive(Debug, Clone)]
pub struct Case {
    /// Language code.
    pub lang: &'static str,
    /// Voice label.
    pub voice: &'static str,
    /// Seconds of audio.
    pub seconds: f64,
    /// Transcript path.
    pub aligned: Score,
    /// Method the transcript path ended with (`Aligned` unless it fell back).
    pub aligned_method: Method,
    /// Audio-only path.
    pub acoustic: Score,
    /// Analysis time of the transcript path (reference synthesis included).
    pub aligned_time: Duration,
    /// Analysis time of the audio-only path.
    pub acoustic_time: Duration,
}

/// Runs every sentence of `langs` with every test voice.
pub fn run(engine: &Engine, langs: &[&str]) -> Result<Vec<Case>, LipsyncError> {
    let voices = test_voices();
    let mut out = Vec::new();
    for &(lang, text) in SENTENCES.iter().filter(|(l, _)| langs.contains(l)) {
        for voice in &voices {
            let (mut synth, _) = engine.speak(text, lang, &voice.params)?;
            if let Some(snr) = voice.snr_db {
                add_noise(&mut synth.samples, snr);
            }
            let truth = reference_track(&synth.phones, synth.duration_ms());
            let t = Instant::now();
            let aligned = engine.analyze(&synth.samples, synth.sample_rate, lang, Some(text))?;
            let aligned_time = t.elapsed();
            let t = Instant::now();
            let acoustic = engine.analyze(&synth.samples, synth.sample_rate, lang, None)?;
            let acoustic_time = t.elapsed();
            out.push(Case {
                lang,
                voice: voice.label,
                seconds: synth.duration_ms() / 1000.0,
                aligned: score(&truth, &aligned, TOLERANCE_MS),
                aligned_method: aligned.method,
                acoustic: score(&truth, &acoustic, TOLERANCE_MS),
                aligned_time,
                acoustic_time,
            });
        }
    }
    Ok(out)
}

/// Per-language means.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Language code.
    pub lang: &'static str,
    /// Transcript path, mean over voices.
    pub aligned: Score,
    /// Audio-only path, mean over voices.
    pub acoustic: Score,
    /// Seconds of audio analysed.
    pub seconds: f64,
    /// Transcript path: seconds of analysis per second of audio (reference synthesis included).
    pub aligned_cost: f64,
    /// Audio-only path: seconds of analysis per second of audio.
    pub acoustic_cost: f64,
}

/// Per-language means of `cases`, in the order the languages first appear.
pub fn by_language(cases: &[Case]) -> Vec<Summary> {
    let mut langs: Vec<&'static str> = cases.iter().map(|c| c.lang).collect();
    langs.dedup();
    langs
        .into_iter()
        .map(|lang| {
            let cs: Vec<&Case> = cases.iter().filter(|c| c.lang == lang).collect();
            let n = cs.len() as f64;
            let mean = |f: &dyn Fn(&Case) -> f64| cs.iter().map(|c| f(c)).sum::<f64>() / n;
            let seconds: f64 = cs.iter().map(|c| c.seconds).sum();
            let at: f64 = cs.iter().map(|c| c.aligned_time.as_secs_f64()).sum();
            let ct: f64 = cs.iter().map(|c| c.acoustic_time.as_secs_f64()).sum();
            let frames = cs.iter().map(|c| c.aligned.frames).sum();
            Summary {
                lang,
                aligned: Score {
                    exact: mean(&|c| c.aligned.exact),
                    coarse: mean(&|c| c.aligned.coarse),
                    frames,
                },
                acoustic: Score {
                    exact: mean(&|c| c.acoustic.exact),
                    coarse: mean(&|c| c.acoustic.coarse),
                    frames,
                },
                seconds,
                aligned_cost: at / seconds,
                acoustic_cost: ct / seconds,
            }
        })
        .collect()
}
