//! The `template.json` manifest: plain serde types, no behaviour beyond defaults.
//!
//! Times are seconds from the start of the video; positions and sizes are output pixels with
//! the origin at the top-left corner; colours are `#RRGGBB` or `#RRGGBBAA` (straight alpha).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};

/// The only manifest version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A template: the whole of `template.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The JSON Schema this file follows (for editors); ignored by the loader.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub json_schema: Option<String>,
    /// Manifest format version; must be 1.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// Machine name of the template, `[a-z0-9-]{1,64}`.
    #[schemars(regex(pattern = crate::schema::NAME_PATTERN))]
    pub name: String,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// Canvas width in pixels, a multiple of 8 in 64..=3840.
    #[schemars(range(min = 64, max = 3840), extend("multipleOf" = 8))]
    pub width: u32,
    /// Canvas height in pixels, a multiple of 2 in 64..=3840.
    #[schemars(range(min = 64, max = 3840), extend("multipleOf" = 2))]
    pub height: u32,
    /// Frames per second, 1..=60.
    #[schemars(range(min = 1, max = 60))]
    pub fps: u32,
    /// Length of the video in seconds, (0, 600].
    #[schemars(range(max = crate::MAX_DURATION), extend("exclusiveMinimum" = 0))]
    pub duration: f64,
    /// Canvas colour under all layers; default opaque black.
    #[serde(default = "default_background")]
    pub background: Color,
    /// Language codes (BCP 47 primary subtags such as `en`, `hi`, `ta`) this template speaks.
    #[schemars(length(min = 1), inner(regex(pattern = crate::schema::LANGUAGE_PATTERN)))]
    #[schemars(extend("uniqueItems" = true))]
    pub languages: Vec<String>,
    /// Language used for a request that names none; must be in `languages`.
    #[schemars(regex(pattern = crate::schema::LANGUAGE_PATTERN))]
    pub default_language: String,
    /// Personalization tokens, by name (`[a-z_][a-z0-9_]{0,31}`), used as `{{name}}` in text.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": crate::schema::TOKEN_NAME_PATTERN}))]
    pub tokens: BTreeMap<String, TokenSpec>,
    /// Brand fonts shipped in the bundle, in order of preference. A text layer uses its own
    /// `font`, else the first font whose `languages` holds the layer's language (or is empty),
    /// else the bundled Noto family of the language's script; characters a brand font lacks
    /// fall back to the bundled Noto families.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub fonts: Vec<FontSpec>,
    /// Visual layers, bottom first.
    pub layers: Vec<Layer>,
    /// Music bed and voice slot.
    #[serde(default)]
    pub audio: AudioSpec,
}

fn default_background() -> Color {
    Color("#000000".to_owned())
}

/// A colour as `#RRGGBB` or `#RRGGBBAA`, straight (not premultiplied) alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("pattern" = crate::schema::COLOR_PATTERN))]
pub struct Color(pub String);

/// What a token accepts and what stands in when it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Kind of value; default `text`.
    #[serde(default, rename = "type")]
    pub kind: TokenKind,
    /// Longest accepted value in characters (Unicode scalar values, after normalization), 1..=200.
    #[schemars(range(min = 1, max = 200))]
    pub max_length: usize,
    /// When true, a request without this token is rejected unless a fallback exists for its language.
    #[serde(default)]
    pub required: bool,
    /// Value used when the token is missing or empty, by language code (`"*"` for any language).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": crate::schema::LANGUAGE_KEY_PATTERN}))]
    pub fallback: BTreeMap<String, String>,
}

/// Kind of token value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Any text in any script; NFC-normalized, control and bidi-override characters removed.
    #[default]
    Text,
    /// Letters, digits and `-`, `_` only (offer codes, order numbers).
    Code,
    /// A decimal number.
    Number,
}

/// One visual layer.
// No `deny_unknown_fields` here: serde would then reject the flattened content's `type` tag.
// Unknown fields are still rejected, by the content types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::close_layer_kinds)]
#[schemars(transform = crate::schema::motion_needs_constants)]
pub struct Layer {
    /// Unique id within the template, used in error messages.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Seconds at which the layer appears; default 0.
    #[serde(default)]
    #[schemars(range(min = 0), extend("exclusiveMaximum" = crate::MAX_DURATION))]
    pub start: f64,
    /// Seconds at which the layer disappears (exclusive); default: the end of the video.
    #[serde(default)]
    #[schemars(range(max = crate::MAX_DURATION), extend("exclusiveMinimum" = 0))]
    pub end: Option<f64>,
    /// Placement and animation.
    #[serde(default)]
    pub transform: Transform,
    /// Opacity 0..=1, constant or keyframed; default 1.
    #[serde(default = "Animated::one")]
    #[schemars(transform = crate::schema::animated_unit)]
    pub opacity: Animated<f64>,
    /// Entrance animation, expanded into keyframes starting at `start`; default none.
    #[serde(default)]
    pub enter: Option<Motion>,
    /// Exit animation, expanded into keyframes ending at `end`; default none.
    #[serde(default)]
    pub exit: Option<Motion>,
    /// What the layer draws.
    #[serde(flatten)]
    pub content: LayerContent,
}

/// What a layer draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerContent {
    /// A video file from the bundle (anything FFmpeg decodes).
    Video(VideoLayer),
    /// A still image from the bundle (PNG, JPEG or WebP; alpha honoured).
    Image(ImageLayer),
    /// Text with `{{token}}` placeholders, fitted into a box.
    Text(TextLayer),
    /// A solid rectangle, optionally with rounded corners.
    Solid(SolidLayer),
    /// A presenter: a still or video of a face whose mouth is replaced, frame by frame, by the
    /// mouth shape that matches the voice (`audio.voice`).
    Presenter(PresenterLayer),
}

/// A video layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoLayer {
    /// Path of the file inside the bundle, relative, no `..`.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    pub src: String,
    /// Seconds skipped at the start of the file; default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub trim_start: f64,
    /// Seconds of the file used after `trim_start`; default: to its end.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub trim_duration: Option<f64>,
    /// Start again from `trim_start` when the used part ends; default false (hold the last frame).
    #[serde(default, rename = "loop")]
    pub looped: bool,
    /// Size the frame is drawn at, in pixels, before the transform's scale; default: the canvas size.
    #[serde(default)]
    pub size: Option<Size>,
}

/// An image layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageLayer {
    /// Path of the file inside the bundle, relative, no `..`.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    pub src: String,
    /// Size the image is drawn at, in pixels, before the transform's scale; default: its own size.
    #[serde(default)]
    pub size: Option<Size>,
}

/// A text layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextLayer {
    /// The text per language code; `"*"` applies to languages not listed. May contain `{{token}}`.
    #[schemars(extend(
        "propertyNames" = {"pattern": crate::schema::LANGUAGE_KEY_PATTERN},
        "additionalProperties" = {"type": "string", "pattern": crate::schema::TEXT_PATTERN}
    ))]
    pub text: BTreeMap<String, String>,
    /// The box the text must fit in, in pixels; the text shrinks until it fits.
    pub size: Size,
    /// Largest font size in pixels, 4..=512.
    #[schemars(range(min = 4, max = 512))]
    pub font_size: f64,
    /// Smallest font size in pixels the text may shrink to before it is reported as not fitting; default 40% of `font_size`.
    #[serde(default)]
    #[schemars(range(max = 512), extend("exclusiveMinimum" = 0))]
    pub min_font_size: Option<f64>,
    /// Bold face; default false.
    #[serde(default)]
    pub bold: bool,
    /// Text colour; default white.
    #[serde(default = "default_text_color")]
    pub color: Color,
    /// Horizontal alignment in the box; default centre.
    #[serde(default)]
    pub align: Align,
    /// Line height as a multiple of the font size; default 1.3.
    #[serde(default = "default_line_height")]
    #[schemars(range(min = 0.5, max = 3))]
    pub line_height: f64,
    /// Optional drop shadow.
    #[serde(default)]
    pub shadow: Option<Shadow>,
    /// Id of a brand font in the top-level `fonts` to use for every language; default: the
    /// font the language picks (see `fonts`).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,32}$"))]
    pub font: Option<String>,
    /// Vertical alignment of the lines in the box; default middle.
    #[serde(default)]
    pub vertical_align: VerticalAlign,
    /// Optional outline drawn around the glyphs, under them.
    #[serde(default)]
    pub outline: Option<Outline>,
    /// Id of an earlier text layer this one sits below: when that layer's ink reaches lower
    /// than `gap` pixels above this one's ink (more lines for a longer name or language), this
    /// layer moves down by the difference. Default: placed where its transform says.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub below: Option<String>,
    /// Smallest distance in pixels between the ink of the `below` layer and this one's, 0..=1000;
    /// default 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub gap: f64,
}

/// A brand font file shipped in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FontSpec {
    /// Id that text layers' `font` names, `[a-z0-9-]{1,32}`, unique among the fonts.
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,32}$"))]
    pub id: String,
    /// Path of a TrueType (`.ttf`) or OpenType (`.otf`) file inside the bundle, at most 16 MiB.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    #[schemars(extend("allOf" = [{"pattern": crate::schema::FONT_FILE_PATTERN}]))]
    pub src: String,
    /// Languages (codes from the template's `languages`) whose text layers use this font when
    /// they name none; empty: every language.
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::schema::LANGUAGE_PATTERN)))]
    pub languages: Vec<String>,
}

/// Vertical alignment of text in its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerticalAlign {
    /// Lines start at the top of the box.
    Top,
    /// Lines are centred vertically.
    #[default]
    Middle,
    /// Lines end at the bottom of the box.
    Bottom,
}

/// An outline (stroke) around text glyphs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outline {
    /// Outline colour.
    pub color: Color,
    /// Width in pixels outside the glyph edge, (0, 32].
    #[schemars(range(max = 32.0), extend("exclusiveMinimum" = 0))]
    pub width: f64,
}

/// A named entrance or exit animation, expanded into the layer's keyframes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Motion {
    /// The animation.
    pub preset: MotionPreset,
    /// Length in seconds, (0, 10]; default 0.5. Entrance and exit together must fit in the
    /// layer's life.
    #[serde(default = "default_motion_duration")]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = 0))]
    pub duration: f64,
}

fn default_motion_duration() -> f64 {
    0.5
}

/// Entrance and exit presets. Each needs the property it animates to be constant in the
/// manifest (it becomes the keyframes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MotionPreset {
    /// Opacity from 0 to the layer's opacity on entrance, back to 0 on exit (ease in-out).
    Fade,
    /// Fade plus a rise of 5% of the canvas height: from below into place on entrance
    /// (ease-out), from place upwards on exit (ease-in).
    SlideUp,
    /// Fade plus scale about the anchor: from 1% past 110% to the layer's scale on entrance,
    /// back through 110% to 1% on exit.
    Pop,
}

fn default_text_color() -> Color {
    Color("#ffffff".to_owned())
}

fn default_line_height() -> f64 {
    1.3
}

/// A drop shadow under text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shadow {
    /// Shadow colour, usually translucent black.
    pub color: Color,
    /// Offset in pixels `[x, y]`.
    pub offset: [f64; 2],
}

/// Horizontal text alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// Start of the line in the text's direction (left for Latin, right for Arabic).
    Start,
    /// Centred.
    #[default]
    Center,
    /// End of the line in the text's direction.
    End,
}

/// A solid rectangle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SolidLayer {
    /// Fill colour.
    pub color: Color,
    /// Size in pixels.
    pub size: Size,
    /// Corner radius in pixels; default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub corner_radius: f64,
}

/// A presenter layer: base footage with a lip-synced mouth drawn over it.
///
/// The base is a still image when `src` ends in `.png`, `.jpg`, `.jpeg` or `.webp` (any case)
/// and a video (anything FFmpeg decodes) otherwise. The mouth shapes come from `mouths`, an
/// atlas of nine equal cells; each frame the cell of the shape the voice makes at that moment
/// is drawn into the `mouth` box, cross-faded from the previous shape and feathered at its edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::schema::still_base_rule)]
pub struct PresenterLayer {
    /// Base footage inside the bundle: a still (`.png`, `.jpg`, `.jpeg`, `.webp`) or a video.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    pub src: String,
    /// Size the base is drawn at, in pixels, before the transform's scale; default: the base
    /// file's own size. The mouth box scales with it.
    #[serde(default)]
    pub size: Option<Size>,
    /// Video base only: seconds skipped at the start of the file; default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub trim_start: f64,
    /// Video base only: seconds of the file used after `trim_start`; default: to its end.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub trim_duration: Option<f64>,
    /// Video base only: start again from `trim_start` when the used part ends; default false.
    #[serde(default, rename = "loop")]
    pub looped: bool,
    /// The mouth-shape atlas.
    pub mouths: MouthAtlas,
    /// Where the mouth goes on the base.
    pub mouth: MouthBox,
}

/// An image of equal cells holding the nine mouth shapes of Rhubarb Lip Sync (A–H and X).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MouthAtlas {
    /// Path of the image (PNG, JPEG or WebP; alpha honoured) inside the bundle.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    pub src: String,
    /// Cells per row, >= 1; the image width must be a multiple of it; default 9.
    #[serde(default = "default_mouth_columns")]
    #[schemars(range(min = 1))]
    pub columns: u32,
    /// Rows of cells, >= 1; the image height must be a multiple of it; default 1.
    #[serde(default = "default_mouth_rows")]
    #[schemars(range(min = 1))]
    pub rows: u32,
    /// The shape in each cell, in reading order (left to right, then top to bottom): each of
    /// the letters `A`–`H` and `X` exactly once; cells past the ninth are unused; default
    /// `"ABCDEFGHX"`.
    #[serde(default = "default_mouth_order")]
    #[schemars(regex(pattern = crate::schema::MOUTH_ORDER_PATTERN))]
    pub order: String,
}

fn default_mouth_columns() -> u32 {
    9
}

fn default_mouth_rows() -> u32 {
    1
}

fn default_mouth_order() -> String {
    MOUTH_SHAPES.to_owned()
}

/// The nine mouth shapes in their canonical order.
pub const MOUTH_SHAPES: &str = "ABCDEFGHX";

/// The mouth box on a presenter's base, in the base file's own pixels (before the layer's
/// `size` and transform).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MouthBox {
    /// Centre of the box in base pixels `[x, y]`, constant or keyframed (to follow a moving
    /// head in a video base).
    pub position: Animated<[f64; 2]>,
    /// Size of the box in base pixels; a mouth cell is stretched to fill it.
    pub size: Size,
    /// Uniform scale of the box about its centre, > 0; default 1.
    #[serde(default = "Animated::one")]
    #[schemars(transform = crate::schema::animated_positive)]
    pub scale: Animated<f64>,
    /// Clockwise rotation of the box about its centre in degrees; default 0.
    #[serde(default = "Animated::zero")]
    pub rotation: Animated<f64>,
    /// Soft elliptical edge, 0..=0.5: the mouth fades out over the outer `2 × feather` of the
    /// radius of the ellipse inscribed in the box (0.5 fades all the way from the centre); 0
    /// draws the whole rectangular cell without a mask; default 0.2.
    #[serde(default = "default_feather")]
    #[schemars(range(min = 0, max = 0.5))]
    pub feather: f64,
    /// Cross-fade between consecutive mouth shapes in seconds, 0..=0.2; default 0.06.
    #[serde(default = "default_crossfade")]
    #[schemars(range(min = 0, max = 0.2))]
    pub crossfade: f64,
}

fn default_feather() -> f64 {
    0.2
}

fn default_crossfade() -> f64 {
    0.06
}

/// A size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Width in pixels, > 0.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub width: f64,
    /// Height in pixels, > 0.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub height: f64,
}

/// Placement of a layer: its anchor point goes to `position`, then it is scaled and rotated about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Where the anchor lands on the canvas, pixels `[x, y]`; default `[0, 0]`.
    #[serde(default = "Animated::origin")]
    pub position: Animated<[f64; 2]>,
    /// Anchor point as a fraction of the layer's size, `[0, 0]` top-left to `[1, 1]` bottom-right; default top-left.
    #[serde(default)]
    pub anchor: [f64; 2],
    /// Uniform scale factor, > 0; default 1.
    #[serde(default = "Animated::one")]
    #[schemars(transform = crate::schema::animated_positive)]
    pub scale: Animated<f64>,
    /// Clockwise rotation in degrees; default 0.
    #[serde(default = "Animated::zero")]
    pub rotation: Animated<f64>,
}

impl Default for Transform {
    fn default() -> Self {
        Self {
            position: Animated::origin(),
            anchor: [0.0, 0.0],
            scale: Animated::one(),
            rotation: Animated::zero(),
        }
    }
}

/// A value that is either constant or keyframed.
///
/// In JSON, a list of objects (or an empty list) is keyframes; anything else is the constant.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Animated_{T}")]
pub enum Animated<T> {
    /// The same value for the whole life of the layer.
    Constant(T),
    /// Keyframes in increasing time; before the first and after the last the value holds.
    #[schemars(extend("minItems" = 1))]
    Keyframes(Vec<Keyframe<T>>),
}

// Written by hand rather than derived as untagged, so that a wrong value reports what was
// expected instead of "data did not match any variant".
impl<'de, T: DeserializeOwned> Deserialize<'de> for Animated<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let keyframes = match &value {
            serde_json::Value::Array(items) => items.first().is_none_or(|v| v.is_object()),
            _ => false,
        };
        if keyframes {
            serde_path_to_error::deserialize::<_, Vec<Keyframe<T>>>(value)
                .map(Animated::Keyframes)
                .map_err(|e| D::Error::custom(format_args!("keyframe {}: {}", e.path(), e.inner())))
        } else {
            T::deserialize(value).map(Animated::Constant).map_err(|e| {
                D::Error::custom(format_args!(
                    "{e}, or a list of keyframes `[{{\"t\": 0, \"value\": ...}}]`"
                ))
            })
        }
    }
}

impl Animated<f64> {
    /// The constant 1.
    pub fn one() -> Self {
        Animated::Constant(1.0)
    }
    /// The constant 0.
    pub fn zero() -> Self {
        Animated::Constant(0.0)
    }
}

impl Animated<[f64; 2]> {
    /// The constant `[0, 0]`.
    pub fn origin() -> Self {
        Animated::Constant([0.0, 0.0])
    }
}

/// One keyframe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Keyframe_{T}")]
pub struct Keyframe<T> {
    /// Time in seconds from the start of the video.
    pub t: f64,
    /// Value at `t`.
    pub value: T,
    /// Easing of the segment from this keyframe to the next; default linear.
    #[serde(default)]
    pub easing: Easing,
}

/// Easing curve between two keyframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Easing {
    /// Constant speed.
    #[default]
    Linear,
    /// Slow start (cubic).
    EaseIn,
    /// Slow end (cubic).
    EaseOut,
    /// Slow start and end (cubic).
    EaseInOut,
    /// Jump to the next value at the next keyframe.
    Hold,
}

/// Audio of the template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    /// Background music, looped to the length of the video.
    #[serde(default)]
    pub music: Option<MusicSpec>,
    /// The voice slot: a per-recipient voice track placed at `start`.
    #[serde(default)]
    pub voice: Option<VoiceSpec>,
    /// Integrated loudness of the final mix in LUFS, -40..=-5; default -16.
    #[serde(default = "default_loudness")]
    #[schemars(range(min = -40, max = -5))]
    pub loudness_lufs: f64,
}

// By hand, so that a manifest without `audio` gets the same -16 LUFS as one with `"audio": {}`.
impl Default for AudioSpec {
    fn default() -> Self {
        Self {
            music: None,
            voice: None,
            loudness_lufs: default_loudness(),
        }
    }
}

fn default_loudness() -> f64 {
    -16.0
}

/// Background music.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MusicSpec {
    /// Path of the audio file inside the bundle.
    #[schemars(regex(pattern = crate::schema::MEDIA_PATTERN))]
    pub src: String,
    /// Gain applied to the music in dB before mixing; default 0.
    #[serde(default)]
    pub gain_db: f64,
    /// How far the music drops while the voice speaks, in dB (positive); default 12.
    #[serde(default = "default_duck")]
    #[schemars(range(min = 0))]
    pub duck_db: f64,
    /// Fade-out at the end of the video in seconds; default 1.
    #[serde(default = "default_fade")]
    #[schemars(range(min = 0, max = crate::MAX_DURATION))]
    pub fade_out: f64,
}

fn default_duck() -> f64 {
    12.0
}

fn default_fade() -> f64 {
    1.0
}

/// The voice slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::schema::tts_needs_script)]
pub struct VoiceSpec {
    /// Seconds at which the voice starts.
    #[schemars(range(min = 0), extend("exclusiveMaximum" = crate::MAX_DURATION))]
    pub start: f64,
    /// Longest voice accepted, in seconds; longer voices are rejected.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_duration: f64,
    /// Gain applied to the voice in dB before mixing; default 0.
    #[serde(default)]
    pub gain_db: f64,
    /// Voice file used when a request brings none, by language code (`"*"` for any), inside the bundle.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = {"pattern": crate::schema::LANGUAGE_KEY_PATTERN},
        "additionalProperties" = {"type": "string", "pattern": crate::schema::MEDIA_PATTERN}
    ))]
    pub default: BTreeMap<String, String>,
    /// The words the voice says, by language code (`"*"` for any); may contain `{{token}}`.
    /// Presenter layers align their mouths to it, and `tts` speaks it.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = {"pattern": crate::schema::LANGUAGE_KEY_PATTERN},
        "additionalProperties" = {"type": "string", "pattern": crate::schema::SCRIPT_PATTERN}
    ))]
    pub script: BTreeMap<String, String>,
    /// Speak `script` with the built-in voice when neither the request nor `default` gives a
    /// voice file for the language.
    #[serde(default)]
    pub tts: Option<TtsSpec>,
}

/// The built-in text-to-speech voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TtsSpec {
    /// The speech engine.
    pub provider: TtsProvider,
    /// Voice variant of the provider (eSpeak NG: `f3`, `m3`, `klatt4`...), 1 to 32 characters
    /// of letters, digits, `-`, `_` and `+`; default: the provider's own.
    #[serde(default)]
    #[schemars(regex(pattern = crate::schema::TTS_VARIANT_PATTERN))]
    pub variant: Option<String>,
    /// Speaking rate in words per minute, 80..=450; default: the provider's (eSpeak NG: 175).
    #[serde(default)]
    #[schemars(range(min = 80, max = 450))]
    pub rate: Option<u32>,
    /// Pitch, 0..=99; default: the provider's (eSpeak NG: 50).
    #[serde(default)]
    #[schemars(range(min = 0, max = 99))]
    pub pitch: Option<u32>,
}

/// A text-to-speech engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TtsProvider {
    /// eSpeak NG, run as the separate `reelfarm-espeak` helper.
    Espeak,
}
