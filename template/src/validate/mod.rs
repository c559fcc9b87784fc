//! The rules of a manifest beyond its JSON shape. Every rule is checked and every broken one is
//! reported, with the JSON path of the field and the allowed values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Problem, TokenError};
use crate::imagesize::image_size;
use crate::manifest::{
    Animated, AudioSpec, Color, Keyframe, Layer, LayerContent, Manifest, Motion, MotionPreset,
    PresenterLayer, Size, TextLayer, TokenSpec, Transform, MOUTH_SHAPES, SCHEMA_VERSION,
};
use crate::tokens::{check_value, is_token_name, parse_placeholders, sanitize, Segment};

mod brand;

/// Longest video accepted, in seconds.
pub const MAX_DURATION: f64 = 600.0;

/// Most layers drawn at the same instant: the compositor's per-tile layer masks hold 64 bits.
/// A presenter layer counts as three (its base and two mouth shapes being cross-faded).
pub const MAX_LAYERS_AT_ONCE: usize = 64;

/// Most brand fonts a manifest may declare.
pub const MAX_FONTS: usize = 16;

/// Largest brand font file accepted, in bytes.
pub const MAX_FONT_BYTES: u64 = 16 * 1024 * 1024;

/// Layers the compositor draws for one manifest layer.
pub fn gpu_layers_of(content: &LayerContent) -> usize {
    match content {
        LayerContent::Presenter(_) => 3,
        _ => 1,
    }
}

/// Extensions (lower case) of a presenter base that is a still image; any other base is a
/// video.
pub const STILL_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// True when a presenter base at `src` is a still image (by its extension, any case).
pub fn is_still_path(src: &str) -> bool {
    Path::new(src)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| STILL_EXTENSIONS.iter().any(|s| e.eq_ignore_ascii_case(s)))
}

/// ``layers[3] (`greeting`)``, or `layers[3]` when the id is empty.
pub(crate) fn layer_label(index: usize, id: &str) -> String {
    if id.is_empty() {
        format!("layers[{index}]")
    } else {
        format!("layers[{index}] (`{id}`)")
    }
}

/// Path segment for a map key: `.key` for plain keys, `["key"]` otherwise.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!(".{k}")
    } else {
        format!("[{}]", serde_json::Value::String(k.to_owned()))
    }
}

/// Collects every problem of a manifest.
pub(crate) fn problems(manifest: &Manifest, dir: Option<&Path>) -> Vec<Problem> {
    let mut c = Checker {
        problems: Vec::new(),
        manifest,
        dir,
        canonical_dir: dir.and_then(|d| d.canonicalize().ok()),
    };
    c.top();
    c.tokens();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, layer) in manifest.layers.iter().enumerate() {
        let label = layer_label(index, &layer.id);
        if layer.id.is_empty() {
            c.push(
                format!("{label}.id"),
                "must not be empty; give each layer a unique id",
            );
        } else if let Some(&first) = seen.get(layer.id.as_str()) {
            c.push(
                format!("{label}.id"),
                format!(
                    "`{}` is already the id of layers[{first}]; layer ids must be unique",
                    layer.id
                ),
            );
        }
        seen.entry(&layer.id).or_insert(index);
        c.layer(&label, layer);
    }
    c.stacks();
    c.layers_at_once();
    c.fonts();
    c.audio(&manifest.audio);
    c.problems
}

struct Checker<'a> {
    problems: Vec<Problem>,
    manifest: &'a Manifest,
    dir: Option<&'a Path>,
    canonical_dir: Option<PathBuf>,
}

impl Checker<'_> {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn languages_list(&self) -> String {
        self.manifest.languages.join(", ")
    }

    fn is_language(&self, lang: &str) -> bool {
        self.manifest.languages.iter().any(|l| l == lang)
    }

    /// A finite number; reports and returns false otherwise.
    fn finite(&mut self, path: &str, v: f64) -> bool {
        if v.is_finite() {
            true
        } else {
            self.push(path, format!("{v} is not a finite number"));
            false
        }
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, path: &str, v: f64, lo: f64, hi: f64) {
        if self.finite(path, v) && !(lo..=hi).contains(&v) {
            self.push(path, format!("{v} is out of range {lo}..={hi}"));
        }
    }

    /// An integer in `lo..=hi` and a multiple of `step`.
    fn range_u32(&mut self, path: &str, v: u32, lo: u32, hi: u32, step: u32) {
        if !(lo..=hi).contains(&v) {
            self.push(path, format!("{v} is out of range {lo}..={hi}"));
        } else if !v.is_multiple_of(step) {
            let down = v - v % step;
            let up = down + step;
            self.push(
                path,
                format!("{v} is not a multiple of {step}; use {down} or {up}"),
            );
        }
    }

    /// A number greater than 0.
    fn positive(&mut self, path: &str, v: f64) {
        if self.finite(path, v) && v <= 0.0 {
            self.push(path, format!("{v} must be greater than 0"));
        }
    }

    /// A number at least 0.
    fn non_negative(&mut self, path: &str, v: f64) {
        if self.finite(path, v) && v < 0.0 {
            self.push(path, format!("{v} must be at least 0"));
        }
    }

    fn color(&mut self, path: &str, color: &Color) {
        if let Err(e) = color.rgba() {
            self.push(path, e.to_string());
        }
    }

    fn size(&mut self, path: &str, size: &Size) {
        self.positive(&format!("{path}.width"), size.width);
        self.positive(&format!("{path}.height"), size.height);
    }

    fn top(&mut self) {
        let m = self.manifest;
        if m.schema_version != SCHEMA_VERSION {
            self.push(
                "schema_version",
                format!(
                    "{} is not supported; this build reads schema_version {SCHEMA_VERSION}",
                    m.schema_version
                ),
            );
        }
        let name_ok = (1..=64).contains(&m.name.len())
            && m.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            self.push(
                "name",
                format!(
                    "`{}` must be 1 to 64 characters of a-z, 0-9 and '-'",
                    m.name
                ),
            );
        }
        self.range_u32("width", m.width, 64, 3840, 8);
        self.range_u32("height", m.height, 64, 3840, 2);
        self.range_u32("fps", m.fps, 1, 60, 1);
        if self.finite("duration", m.duration) && !(m.duration > 0.0 && m.duration <= MAX_DURATION)
        {
            self.push(
                "duration",
                format!(
                    "{} is out of range: must be greater than 0 and at most {MAX_DURATION} seconds",
                    m.duration
                ),
            );
        }
        self.color("background", &m.background);
        if m.languages.is_empty() {
            self.push(
                "languages",
                "must list at least one language code, e.g. [\"en\"]",
            );
        }
        for (i, lang) in m.languages.iter().enumerate() {
            let path = format!("languages[{i}]");
            let code_ok = !lang.is_empty()
                && lang.len() <= 35
                && !lang.starts_with('-')
                && !lang.ends_with('-')
                && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !code_ok {
                self.push(
                    path,
                    format!(
                        "`{lang}` is not a language code; use a BCP 47 code such as `en`, `hi` or `pt-BR`"
                    ),
                );
            } else if let Some(first) = m.languages[..i].iter().position(|l| l == lang) {
                self.push(
                    path,
                    format!("`{lang}` is already listed at languages[{first}]"),
                );
            }
        }
        if !m.languages.is_empty() && !self.is_language(&m.default_language) {
            self.push(
                "default_language",
                format!(
                    "`{}` is not one of languages ({})",
                    m.default_language,
                    self.languages_list()
                ),
            );
        }
    }

    /// Keys of a per-language map must be languages of the template or `"*"`.
    fn language_keys<V>(&mut self, path: &str, map: &BTreeMap<String, V>) {
        for lang in map.keys() {
            if lang != "*" && !self.is_language(lang) {
                self.push(
                    format!("{path}{}", key(lang)),
                    format!(
                        "`{lang}` is not one of languages ({}) or `\"*\"`",
                        self.languages_list()
                    ),
                );
            }
        }
    }

    fn tokens(&mut self) {
        for (name, spec) in &self.manifest.tokens {
            let base = format!("tokens{}", key(name));
            if !is_token_name(name) {
                self.push(
                    base.clone(),
                    format!("`{name}` is not a valid token name; use `[a-z_][a-z0-9_]{{0,31}}`, e.g. `first_name`"),
                );
            }
            if !(1..=200).contains(&spec.max_length) {
                self.push(
                    format!("{base}.max_length"),
                    format!("{} is out of range 1..=200", spec.max_length),
                );
            }
            self.language_keys(&format!("{base}.fallback"), &spec.fallback);
            for (lang, value) in &spec.fallback {
                self.fallback_value(&format!("{base}.fallback{}", key(lang)), name, spec, value);
            }
        }
    }

    fn fallback_value(&mut self, path: &str, name: &str, spec: &TokenSpec, value: &str) {
        let message = match check_value(name, spec, &sanitize(value)) {
            Ok(()) => return,
            Err(TokenError::TooLong { length, max, .. }) => {
                format!("{length} characters, at most {max} allowed (the token's max_length)")
            }
            Err(TokenError::NotCode { value, .. }) => {
                format!("`{value}` may hold only letters, digits, '-' and '_' (the token's type is code)")
            }
            Err(TokenError::NotNumber { value, .. }) => {
                format!("`{value}` is not a decimal number (the token's type is number)")
            }
            Err(other) => other.to_string(),
        };
        self.push(path, message);
    }

    fn animated<T>(
        &mut self,
        path: &str,
        value: &Animated<T>,
        mut check: impl FnMut(&mut Self, &str, &T),
    ) {
        match value {
            Animated::Constant(v) => check(self, path, v),
            Animated::Keyframes(keys) => self.keyframes(path, keys, check),
        }
    }

    fn keyframes<T>(
        &mut self,
        path: &str,
        keys: &[Keyframe<T>],
        mut check: impl FnMut(&mut Self, &str, &T),
    ) {
        if keys.is_empty() {
            self.push(
                path,
                "the keyframe list is empty; give a constant or at least one keyframe",
            );
        }
        let mut previous: Option<f64> = None;
        for (i, k) in keys.iter().enumerate() {
            let kpath = format!("{path}[{i}]");
            let t_path = format!("{kpath}.t");
            if self.finite(&t_path, k.t) {
                if let Some(prev) = previous.filter(|prev| k.t <= *prev) {
                    self.push(
                        t_path,
                        format!(
                            "{} is not after the previous keyframe's {prev}; keyframes must be in strictly increasing time",
                            k.t
                        ),
                    );
                }
                previous = Some(k.t);
            }
            check(self, &format!("{kpath}.value"), &k.value);
        }
    }

    fn layer(&mut self, label: &str, layer: &Layer) {
        let duration = self.manifest.duration;
        let start_path = format!("{label}.start");
        let start_ok = self.finite(&start_path, layer.start);
        if start_ok && layer.start < 0.0 {
            self.push(
                start_path.clone(),
                format!("{} must be at least 0", layer.start),
            );
        }
        match layer.end {
            Some(end) => {
                let end_path = format!("{label}.end");
                if self.finite(&end_path, end) {
                    if duration.is_finite() && end > duration {
                        self.push(
                            end_path.clone(),
                            format!("{end} is after the end of the video (duration {duration})"),
                        );
                    }
                    if start_ok && end <= layer.start {
                        self.push(
                            end_path,
                            format!("{end} must be after start ({})", layer.start),
                        );
                    }
                }
            }
            None => {
                if start_ok && duration.is_finite() && layer.start >= duration {
                    self.push(
                        start_path,
                        format!(
                            "{} must be before the end of the video (duration {duration})",
                            layer.start
                        ),
                    );
                }
            }
        }
        self.transform(&format!("{label}.transform"), &layer.transform);
        self.animated(&format!("{label}.opacity"), &layer.opacity, |c, p, v| {
            c.range(p, *v, 0.0, 1.0)
        });
        self.motions(label, layer);
        match &layer.content {
            LayerContent::Video(v) => {
                self.media(&format!("{label}.src"), &v.src);
                self.non_negative(&format!("{label}.trim_start"), v.trim_start);
                if let Some(d) = v.trim_duration {
                    self.positive(&format!("{label}.trim_duration"), d);
                }
                if let Some(size) = &v.size {
                    self.size(&format!("{label}.size"), size);
                }
            }
            LayerContent::Image(i) => {
                self.media(&format!("{label}.src"), &i.src);
                if let Some(size) = &i.size {
                    self.size(&format!("{label}.size"), size);
                }
            }
            LayerContent::Text(t) => self.text(label, t),
            LayerContent::Presenter(p) => self.presenter(label, p),
            LayerContent::Solid(s) => {
                self.color(&format!("{label}.color"), &s.color);
                self.size(&format!("{label}.size"), &s.size);
                self.non_negative(&format!("{label}.corner_radius"), s.corner_radius);
            }
        }
    }

    fn transform(&mut self, path: &str, t: &Transform) {
        self.animated(&format!("{path}.position"), &t.position, |c, p, v| {
            c.finite(&format!("{p}[0]"), v[0]);
            c.finite(&format!("{p}[1]"), v[1]);
        });
        self.finite(&format!("{path}.anchor[0]"), t.anchor[0]);
        self.finite(&format!("{path}.anchor[1]"), t.anchor[1]);
        self.animated(&format!("{path}.scale"), &t.scale, |c, p, v| {
            c.positive(p, *v)
        });
        self.animated(&format!("{path}.rotation"), &t.rotation, |c, p, v| {
            c.finite(p, *v);
        });
    }

    fn text(&mut self, label: &str, t: &TextLayer) {
        let text_path = format!("{label}.text");
        self.language_keys(&text_path, &t.text);
        if !t.text.contains_key("*") {
            let missing: Vec<&str> = self
                .manifest
                .languages
                .iter()
                .filter(|l| !t.text.contains_key(*l))
                .map(String::as_str)
                .collect();
            for lang in missing {
                self.push(
                    text_path.clone(),
                    format!("no string for language `{lang}`; add `\"{lang}\"` or a `\"*\"` string for all other languages"),
                );
            }
        }
        for (lang, s) in &t.text {
            self.placeholders(&format!("{text_path}{}", key(lang)), s);
        }
        self.size(&format!("{label}.size"), &t.size);
        let font_ok = t.font_size.is_finite() && (4.0..=512.0).contains(&t.font_size);
        self.range(&format!("{label}.font_size"), t.font_size, 4.0, 512.0);
        if let Some(min) = t.min_font_size {
            let path = format!("{label}.min_font_size");
            if self.finite(&path, min) {
                if min <= 0.0 {
                    self.push(path, format!("{min} must be greater than 0"));
                } else if font_ok && min > t.font_size {
                    self.push(
                        path,
                        format!("{min} must be at most font_size ({})", t.font_size),
                    );
                }
            }
        }
        self.range(&format!("{label}.line_height"), t.line_height, 0.5, 3.0);
        self.color(&format!("{label}.color"), &t.color);
        if let Some(shadow) = &t.shadow {
            self.color(&format!("{label}.shadow.color"), &shadow.color);
            self.finite(&format!("{label}.shadow.offset[0]"), shadow.offset[0]);
            self.finite(&format!("{label}.shadow.offset[1]"), shadow.offset[1]);
        }
        if let Some(outline) = &t.outline {
            self.color(&format!("{label}.outline.color"), &outline.color);
            let path = format!("{label}.outline.width");
            if self.finite(&path, outline.width) && !(outline.width > 0.0 && outline.width <= 32.0)
            {
                self.push(
                    path,
                    format!("{} is out of range: more than 0, at most 32", outline.width),
                );
            }
        }
        if let Some(font) = &t.font {
            if !self.manifest.fonts.iter().any(|f| &f.id == font) {
                let ids: Vec<&str> = self.manifest.fonts.iter().map(|f| f.id.as_str()).collect();
                self.push(
                    format!("{label}.font"),
                    if ids.is_empty() {
                        format!("`{font}` is not a font id: the template declares no `fonts`")
                    } else {
                        format!(
                            "`{font}` is not a font id; the template's fonts are: {}",
                            ids.join(", ")
                        )
                    },
                );
            }
        }
        self.range(&format!("{label}.gap"), t.gap, 0.0, 1000.0);
    }

    /// A string with `{{token}}` placeholders: well formed, and every token declared.
    fn placeholders(&mut self, path: &str, s: &str) {
        match parse_placeholders(s) {
            Err(e) => self.push(path, e.to_string()),
            Ok(segments) => {
                let used: BTreeSet<&str> = segments
                    .into_iter()
                    .filter_map(|segment| match segment {
                        Segment::Token(name) => Some(name),
                        Segment::Literal(_) => None,
                    })
                    .collect();
                let undeclared = used
                    .into_iter()
                    .filter(|name| !self.manifest.tokens.contains_key(*name));
                for name in undeclared.collect::<Vec<_>>() {
                    let declared: Vec<&str> =
                        self.manifest.tokens.keys().map(String::as_str).collect();
                    let declared = if declared.is_empty() {
                        "none".to_owned()
                    } else {
                        declared.join(", ")
                    };
                    self.push(
                        path,
                        format!("`{{{{{name}}}}}` uses token `{name}`, which is not declared in `tokens` (declared: {declared})"),
                    );
                }
            }
        }
    }

    fn presenter(&mut self, label: &str, p: &PresenterLayer) {
        self.media(&format!("{label}.src"), &p.src);
        if let Some(size) = &p.size {
            self.size(&format!("{label}.size"), size);
        }
        if is_still_path(&p.src) {
            let still = |field: &str| {
                format!(
                    "applies only to a video base; `{}` is a still image (a base ending in .png, .jpg, .jpeg or .webp); remove `{field}`",
                    p.src
                )
            };
            if p.trim_start != 0.0 {
                self.push(format!("{label}.trim_start"), still("trim_start"));
            }
            if p.trim_duration.is_some() {
                self.push(format!("{label}.trim_duration"), still("trim_duration"));
            }
            if p.looped {
                self.push(format!("{label}.loop"), still("loop"));
            }
        } else {
            self.non_negative(&format!("{label}.trim_start"), p.trim_start);
            if let Some(d) = p.trim_duration {
                self.positive(&format!("{label}.trim_duration"), d);
            }
        }

        let m = &p.mouths;
        let atlas = self.media(&format!("{label}.mouths.src"), &m.src);
        let mut grid_ok = true;
        for (field, v) in [("columns", m.columns), ("rows", m.rows)] {
            if v == 0 {
                grid_ok = false;
                self.push(format!("{label}.mouths.{field}"), "0 must be at least 1");
            }
        }
        let cells = u64::from(m.columns) * u64::from(m.rows);
        if grid_ok && cells < 9 {
            grid_ok = false;
            self.push(
                format!("{label}.mouths"),
                format!(
                    "a grid of {} columns by {} rows has {cells} cells; the nine mouth shapes need at least 9",
                    m.columns, m.rows
                ),
            );
        }
        self.mouth_order(&format!("{label}.mouths.order"), &m.order);
        if let (Some(path), true) = (atlas, grid_ok) {
            match image_size(&path) {
                Err(e) => self.push(format!("{label}.mouths.src"), format!("`{}` {e}", m.src)),
                Ok((w, h)) => {
                    for (field, side, v, n) in [
                        ("columns", "wide", w, m.columns),
                        ("rows", "high", h, m.rows),
                    ] {
                        if v % n != 0 || v < n {
                            let down = v - v % n;
                            let up = down + n;
                            self.push(
                                format!("{label}.mouths.{field}"),
                                format!(
                                    "`{}` is {v} px {side}, which {n} {field} of equal cells do not divide; make it a multiple of {n} px {side} (e.g. {} or {up})",
                                    m.src,
                                    if down > 0 { down } else { up },
                                ),
                            );
                        }
                    }
                }
            }
        }

        let b = &p.mouth;
        let path = format!("{label}.mouth");
        self.animated(&format!("{path}.position"), &b.position, |c, p, v| {
            c.finite(&format!("{p}[0]"), v[0]);
            c.finite(&format!("{p}[1]"), v[1]);
        });
        self.size(&format!("{path}.size"), &b.size);
        self.animated(&format!("{path}.scale"), &b.scale, |c, p, v| {
            c.positive(p, *v)
        });
        self.animated(&format!("{path}.rotation"), &b.rotation, |c, p, v| {
            c.finite(p, *v);
        });
        self.range(&format!("{path}.feather"), b.feather, 0.0, 0.5);
        self.range(&format!("{path}.crossfade"), b.crossfade, 0.0, 0.2);
    }

    /// Each of the nine mouth letters exactly once.
    fn mouth_order(&mut self, path: &str, order: &str) {
        let mut problems = Vec::new();
        for c in order.chars() {
            if !MOUTH_SHAPES.contains(c) {
                problems.push(format!("`{c}` is not a mouth shape"));
            }
        }
        for shape in MOUTH_SHAPES.chars() {
            match order.chars().filter(|&c| c == shape).count() {
                0 => problems.push(format!("`{shape}` is missing")),
                1 => {}
                n => problems.push(format!("`{shape}` appears {n} times")),
            }
        }
        if !problems.is_empty() {
            self.push(
                path,
                format!(
                    "`{order}`: {}; give each of the nine shapes {MOUTH_SHAPES} exactly once, in the order of the atlas cells",
                    problems.join(", ")
                ),
            );
        }
    }

    /// At no instant are more than [`MAX_LAYERS_AT_ONCE`] compositor layers shown.
    fn layers_at_once(&mut self) {
        let m = self.manifest;
        let mut events: Vec<(f64, i64)> = Vec::with_capacity(m.layers.len() * 2);
        for layer in &m.layers {
            let end = layer.end.unwrap_or(m.duration);
            if !(layer.start.is_finite() && end.is_finite() && layer.start < end) {
                continue;
            }
            let n = gpu_layers_of(&layer.content) as i64;
            events.push((layer.start, n));
            events.push((end, -n));
        }
        // Ends before starts at the same time: `end` is exclusive.
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut most, mut at) = (0i64, 0i64, 0.0);
        for (t, delta) in events {
            now += delta;
            if now > most {
                most = now;
                at = t;
            }
        }
        if most > MAX_LAYERS_AT_ONCE as i64 {
            self.push(
                "layers",
                format!(
                    "{most} layers are drawn at once at {at} s (a presenter counts as 3: its base and two mouth shapes); at most {MAX_LAYERS_AT_ONCE} can be; end some layers earlier or start them later"
                ),
            );
        }
    }

    fn audio(&mut self, audio: &AudioSpec) {
        let duration = self.manifest.duration;
        self.range("audio.loudness_lufs", audio.loudness_lufs, -40.0, -5.0);
        if let Some(music) = &audio.music {
            self.media("audio.music.src", &music.src);
            self.finite("audio.music.gain_db", music.gain_db);
            self.non_negative("audio.music.duck_db", music.duck_db);
            self.non_negative("audio.music.fade_out", music.fade_out);
            if music.fade_out.is_finite() && duration.is_finite() && music.fade_out > duration {
                self.push(
                    "audio.music.fade_out",
                    format!(
                        "{} is longer than the video (duration {duration})",
                        music.fade_out
                    ),
                );
            }
        }
        if let Some(voice) = &audio.voice {
            if self.finite("audio.voice.start", voice.start)
                && !(voice.start >= 0.0 && voice.start < duration)
            {
                self.push(
                    "audio.voice.start",
                    format!(
                        "{} must be at least 0 and before the end of the video (duration {duration})",
                        voice.start
                    ),
                );
            }
            self.positive("audio.voice.max_duration", voice.max_duration);
            self.finite("audio.voice.gain_db", voice.gain_db);
            self.language_keys("audio.voice.default", &voice.default);
            for (lang, src) in &voice.default {
                self.media(&format!("audio.voice.default{}", key(lang)), src);
            }
            self.language_keys("audio.voice.script", &voice.script);
            for (lang, text) in &voice.script {
                let path = format!("audio.voice.script{}", key(lang));
                if text.trim().is_empty() {
                    self.push(path.clone(), "is empty; give the words the voice says");
                }
                self.placeholders(&path, text);
            }
            if let Some(tts) = &voice.tts {
                if voice.script.is_empty() {
                    self.push(
                        "audio.voice.tts",
                        "needs `audio.voice.script`, the words to speak by language code (`\"*\"` for any), e.g. {\"en\": \"Hi {{first_name}}!\"}",
                    );
                }
                if let Some(rate) = tts.rate {
                    self.range_u32("audio.voice.tts.rate", rate, 80, 450, 1);
                }
                if let Some(pitch) = tts.pitch {
                    self.range_u32("audio.voice.tts.pitch", pitch, 0, 99, 1);
                }
                if let Some(variant) = &tts.variant {
                    let ok = (1..=32).contains(&variant.len())
                        && variant
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_+".contains(&b));
                    if !ok {
                        self.push(
                            "audio.voice.tts.variant",
                            format!("`{variant}` must be 1 to 32 characters of letters, digits, '-', '_' and '+', e.g. `f3`"),
                        );
                    }
                }
            }
        }
    }

    /// A media path: relative, inside the bundle, and present when the bundle folder is known.
    /// Returns the file's full path when the folder is known and the file is there.
    fn media(&mut self, path: &str, src: &str) -> Option<PathBuf> {
        if src.is_empty() {
            self.push(
                path,
                "must name a file in the bundle, e.g. `media/background.mp4`",
            );
            return None;
        }
        if src.chars().any(char::is_control) {
            self.push(path, format!("{src:?} holds a control character"));
            return None;
        }
        let bytes = src.as_bytes();
        let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
        if src.starts_with('/') || src.starts_with('\\') || drive || Path::new(src).is_absolute() {
            self.push(
                path,
                format!("`{src}` is an absolute path; give a path relative to the bundle folder"),
            );
            return None;
        }
        if src.split(['/', '\\']).any(|part| part == "..") {
            self.push(path, format!("`{src}` escapes the bundle"));
            return None;
        }
        let dir = self.dir?;
        let full = dir.join(src);
        if !full.is_file() {
            let what = if full.is_dir() {
                "is a folder, not a file,"
            } else {
                "not found"
            };
            self.push(path, format!("file `{src}` {what} in bundle"));
            return None;
        }
        let inside = match (&self.canonical_dir, full.canonicalize()) {
            (Some(root), Ok(real)) => real.starts_with(root),
            _ => false,
        };
        if !inside {
            self.push(
                path,
                format!("`{src}` escapes the bundle through a symbolic link"),
            );
            return None;
        }
        Some(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_key(input: &str, expect: &str) {
        assert_eq!(key(input), expect, "key({input:?})");
    }

    #[test]
    fn key_cases() {
        check_key("en", ".en");
        check_key("pt-BR", ".pt-BR");
        check_key("first_name", ".first_name");
        check_key("*", "[\"*\"]");
        check_key("", "[\"\"]");
        check_key("a b", "[\"a b\"]");
        check_key("say \"hi\"", "[\"say \\\"hi\\\"\"]");
    }

    #[test]
    fn layer_label_cases() {
        assert_eq!(layer_label(3, "greeting"), "layers[3] (`greeting`)");
        assert_eq!(layer_label(0, ""), "layers[0]");
    }
}
