//! Mouth shapes, cues and tracks.

use serde::{Deserialize, Serialize};

use crate::Method;

/// One of Rhubarb Lip Sync's mouth shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Shape {
    /// Closed lips with slight pressure: p, b, m.
    A,
    /// Slightly open, teeth together: most consonants, and "ee".
    B,
    /// Open: "eh", "ae", short "a".
    C,
    /// Wide open: long "aa".
    D,
    /// Slightly rounded: "aw", "o", "er".
    E,
    /// Puckered: "oo", "w".
    F,
    /// Upper teeth on the lower lip: f, v.
    G,
    /// Tongue raised behind the teeth: a long l.
    H,
    /// Rest: the mouth in a pause.
    X,
}

/// Coarse mouth classes, the level at which accuracy is judged most often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coarse {
    /// Lips together: A and X.
    Closed,
    /// Lips apart, jaw nearly closed: B and G.
    Narrow,
    /// Jaw open: C, D and H.
    Open,
    /// Lips rounded: E and F.
    Round,
}

/// Continuous mouth parameters carried with every shape, for renderers that blend rather than
/// switch (each 0..=1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MouthParams {
    /// Jaw opening.
    pub jaw_open: f32,
    /// Lip rounding.
    pub round: f32,
    /// Lip spreading.
    pub spread: f32,
    /// Lips pressed together.
    pub closure: f32,
    /// Upper teeth on the lower lip.
    pub teeth_on_lip: f32,
}

impl Shape {
    /// All shapes in atlas order: A, B, C, D, E, F, G, H, X.
    pub const ALL: [Shape; 9] = [
        Shape::A,
        Shape::B,
        Shape::C,
        Shape::D,
        Shape::E,
        Shape::F,
        Shape::G,
        Shape::H,
        Shape::X,
    ];

    /// Position in [`Shape::ALL`] (0 for A … 8 for X).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The shape's letter.
    pub fn letter(self) -> char {
        b"ABCDEFGHX"[self.index()] as char
    }

    /// The shape for a letter `A`..`H` or `X` (either case).
    pub fn from_letter(c: char) -> Option<Shape> {
        let i = "ABCDEFGHX".find(c.to_ascii_uppercase())?;
        Some(Shape::ALL[i])
    }

    /// The coarse class.
    pub fn coarse(self) -> Coarse {
        match self {
            Shape::A | Shape::X => Coarse::Closed,
            Shape::B | Shape::G => Coarse::Narrow,
            Shape::C | Shape::D | Shape::H => Coarse::Open,
            Shape::E | Shape::F => Coarse::Round,
        }
    }

    /// Continuous parameters of the shape.
    pub fn params(self) -> MouthParams {
        let p = |jaw_open, round, spread, closure, teeth_on_lip| MouthParams {
            jaw_open,
            round,
            spread,
            closure,
            teeth_on_lip,
        };
        match self {
            Shape::X => p(0.0, 0.0, 0.0, 0.5, 0.0),
            Shape::A => p(0.0, 0.0, 0.0, 1.0, 0.0),
            Shape::B => p(0.25, 0.0, 0.6, 0.0, 0.0),
            Shape::C => p(0.6, 0.0, 0.3, 0.0, 0.0),
            Shape::D => p(1.0, 0.0, 0.2, 0.0, 0.0),
            Shape::E => p(0.5, 0.6, 0.0, 0.0, 0.0),
            Shape::F => p(0.3, 1.0, 0.0, 0.0, 0.0),
            Shape::G => p(0.2, 0.0, 0.0, 0.0, 1.0),
            Shape::H => p(0.6, 0.0, 0.2, 0.0, 0.0),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// One shape held over `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cue {
    /// Start, milliseconds from the start of the audio.
    pub start_ms: u32,
    /// End (exclusive), milliseconds from the start of the audio.
    pub end_ms: u32,
    /// The mouth shape.
    pub shape: Shape,
}

/// A mouth track: cues in order, without gaps, from 0 to the end of the audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Track {
    /// The cues.
    pub cues: Vec<Cue>,
    /// How the track was made.
    pub method: Method,
    /// Degradations the caller should surface (acoustic fallback, a doubtful transcript...).
    pub warnings: Vec<String>,
}

impl Track {
    /// A track of `cues` made by `method`, repaired to cover `[0, duration_ms)` without gaps
    /// (gaps and the ends are filled with X).
    pub fn from_cues(cues: Vec<Cue>, duration_ms: f64, method: Method) -> Self {
        let end = duration_ms.max(0.0).round() as u32;
        let mut out: Vec<Cue> = Vec::with_capacity(cues.len() + 2);
        let mut at = 0u32;
        for c in cues {
            let start = c.start_ms.max(at).min(end);
            let stop = c.end_ms.min(end);
            if stop <= start {
                continue;
            }
            if start > at {
                push_merged(
                    &mut out,
                    Cue {
                        start_ms: at,
                        end_ms: start,
                        shape: Shape::X,
                    },
                );
            }
            push_merged(
                &mut out,
                Cue {
                    start_ms: start,
                    end_ms: stop,
                    shape: c.shape,
                },
            );
            at = stop;
        }
        if at < end || out.is_empty() {
            push_merged(
                &mut out,
                Cue {
                    start_ms: at,
                    end_ms: end.max(at),
                    shape: Shape::X,
                },
            );
        }
        Self {
            cues: out,
            method,
            warnings: Vec::new(),
        }
    }

    /// Length covered, in milliseconds.
    pub fn duration_ms(&self) -> u32 {
        self.cues.last().map_or(0, |c| c.end_ms)
    }

    /// The shape at `ms` (X outside the track).
    pub fn shape_at(&self, ms: f64) -> Shape {
        self.cue_index(ms).map_or(Shape::X, |i| self.cues[i].shape)
    }

    /// For a cross-fade of `fade_ms` at each change of shape: the previous shape, the current
    /// one, and how far (0..=1) the fade from previous to current has come at `ms`.
    pub fn blend_at(&self, ms: f64, fade_ms: f64) -> (Shape, Shape, f32) {
        let Some(i) = self.cue_index(ms) else {
            return (Shape::X, Shape::X, 1.0);
        };
        let cur = self.cues[i];
        if i == 0 || fade_ms <= 0.0 {
            return (cur.shape, cur.shape, 1.0);
        }
        let prev = self.cues[i - 1].shape;
        let k = ((ms - f64::from(cur.start_ms)) / fade_ms).clamp(0.0, 1.0) as f32;
        (prev, cur.shape, k)
    }

    /// The shape every `step_ms` from 0 to the end, for scoring.
    pub fn sample(&self, step_ms: f64) -> Vec<Shape> {
        let n = (f64::from(self.duration_ms()) / step_ms).floor() as usize;
        (0..n)
            .map(|i| self.shape_at((i as f64 + 0.5) * step_ms))
            .collect()
    }

    fn cue_index(&self, ms: f64) -> Option<usize> {
        if ms < 0.0 {
            return None;
        }
        let i = self.cues.partition_point(|c| f64::from(c.end_ms) <= ms);
        (i < self.cues.len()).then_some(i)
    }
}

fn push_merged(out: &mut Vec<Cue>, c: Cue) {
    if let Some(last) = out.last_mut() {
        if last.shape == c.shape && last.end_ms == c.start_ms {
            last.end_ms = c.end_ms;
            return;
        }
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_fills_gaps_and_ends_with_rest() {
        let t = Track::from_cues(
            vec![
                Cue {
                    start_ms: 100,
                    end_ms: 200,
                    shape: Shape::D,
                },
                Cue {
                    start_ms: 250,
                    end_ms: 300,
                    shape: Shape::A,
                },
            ],
            400.0,
            Method::Tts,
        );
        let got: Vec<_> = t
            .cues
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.shape))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 100, Shape::X),
                (100, 200, Shape::D),
                (200, 250, Shape::X),
                (250, 300, Shape::A),
                (300, 400, Shape::X)
            ]
        );
        assert_eq!(t.shape_at(150.0), Shape::D);
        assert_eq!(t.shape_at(1000.0), Shape::X);
        let (prev, cur, k) = t.blend_at(110.0, 40.0);
        assert_eq!((prev, cur), (Shape::X, Shape::D));
        assert!((k - 0.25).abs() < 1e-6);
    }

    #[test]
    fn letters_round_trip() {
        for s in Shape::ALL {
            assert_eq!(Shape::from_letter(s.letter()), Some(s));
        }
        assert_eq!(Shape::from_letter('z'), None);
    }
}
