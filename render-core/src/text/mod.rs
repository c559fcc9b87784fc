//! Text shaping and rasterization over the bundled Noto fonts.
//!
//! A [`TextEngine`] shapes text with cosmic-text (HarfRust: bidi, Indic reordering and
//! conjuncts, Arabic joining), wraps it at word boundaries, shrinks it until its real glyph ink
//! fits the box, and rasterizes it with swash into a premultiplied RGBA8 image of exactly the
//! box size.
//!
//! Fonts are compiled into the binary (Noto Sans plus the nine Noto Sans families for Arabic and
//! the Indic scripts, Regular and Bold) and the font database holds nothing else besides the
//! brand fonts a template ships ([`TextEngine::load_font`]), so the same inputs give the same
//! bytes on every machine. Characters outside the primary family (a brand font or the Noto
//! family of the language) fall back to the bundled family of their script.
//!
//! Recipient text never appears in warnings or errors: they name lengths, sizes and code points.

mod fonts;
mod raster;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use cosmic_text::skrifa::{self, instance::LocationRef, instance::Size, MetadataProvider as _};
use cosmic_text::{
    fontdb, Attrs, Buffer, CacheKeyFlags, Family, FontSystem, LayoutGlyph, Metrics, Shaping,
    SwashCache, Weight, Wrap,
};

use sha2::{Digest as _, Sha256};

pub use template::{Align, VerticalAlign};

use self::fonts::BundledFont;
use self::raster::Canvas;

/// Smallest font size the fit search may reach, in pixels.
pub const MIN_FONT_SIZE: f32 = 4.0;
/// Largest accepted font size, in pixels.
pub const MAX_FONT_SIZE: f32 = 1024.0;
/// Largest accepted box side, in pixels.
pub const MAX_BOX_SIDE: u32 = 8192;
/// Largest accepted text, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Accepted line heights, as multiples of the font size.
pub const LINE_HEIGHT_RANGE: std::ops::RangeInclusive<f32> = 0.5..=5.0;
/// Largest accepted shadow offset along either axis, in pixels.
pub const MAX_SHADOW_OFFSET: f32 = 512.0;
/// Largest accepted outline width, in pixels.
pub const MAX_OUTLINE_WIDTH: f32 = 128.0;
/// Brand fonts an engine keeps loaded; loading one more starts again from the bundled fonts.
pub const MAX_LOADED_FONTS: usize = 32;
/// Prefix of the family names brand fonts are registered under.
const BRAND_FAMILY_PREFIX: &str = "reelfarm-brand-";

/// Transparent margin kept between the ink and each edge of the box, in pixels.
const PADDING: f32 = 2.0;
/// Font sizes the fit search tries are multiples of this, in pixels.
const SIZE_STEP: f32 = 0.5;
/// Rasterized glyph images kept between calls before the cache is emptied.
const MAX_CACHED_IMAGES: usize = 8192;

/// How a text is drawn into its box.
#[derive(Debug, Clone, PartialEq)]
pub struct TextStyle {
    /// Preferred font size in pixels, `4..=1024`; the text is shrunk from here until it fits.
    pub font_size: f32,
    /// Size below which shrinking adds a warning, in pixels, `0..=font_size`. The text still
    /// shrinks down to 4 px before the call fails.
    pub min_font_size: f32,
    /// Bold faces instead of Regular (bundled fonts only: a brand font is drawn as its file is).
    pub bold: bool,
    /// Text colour, straight (not premultiplied) RGBA.
    pub color: [u8; 4],
    /// Horizontal alignment; `Start` and `End` follow each paragraph's direction.
    pub align: Align,
    /// Distance between baselines as a multiple of the font size, `0.5..=5`.
    pub line_height: f32,
    /// Hard drop shadow: straight RGBA colour and `[x, y]` offset in pixels (each within
    /// ±512), drawn under the text.
    pub shadow: Option<([u8; 4], [f32; 2])>,
    /// BCP 47 language tag (the primary subtag is used, e.g. `"ta"`). It picks the primary font
    /// family, which supplies spaces, digits and punctuation; an unknown or empty tag picks the
    /// family of the text's first letter.
    pub lang: String,
    /// A brand font's family as returned by [`TextEngine::load_font`], used instead of the
    /// language's family; characters it lacks fall back to the bundled families.
    pub font_family: Option<String>,
    /// Where the lines sit vertically in the box.
    pub vertical_align: VerticalAlign,
    /// Outline around the glyphs: straight RGBA colour and width in pixels, `(0, 128]`, drawn
    /// under the text and over its shadow.
    pub outline: Option<([u8; 4], f32)>,
}

impl Default for TextStyle {
    fn default() -> Self {
        Self {
            font_size: 48.0,
            min_font_size: 16.0,
            bold: false,
            color: [255, 255, 255, 255],
            align: Align::Center,
            line_height: 1.2,
            shadow: None,
            lang: String::new(),
            font_family: None,
            vertical_align: VerticalAlign::Middle,
            outline: None,
        }
    }
}

/// A rasterized text box.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterText {
    /// Box width in pixels.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// Premultiplied RGBA8, row-major, `width * height * 4` bytes; transparent where there is
    /// no ink.
    pub pixels: Vec<u8>,
    /// The font size actually used, in pixels.
    pub font_size: f32,
    /// Number of laid-out lines (0 for empty or blank text).
    pub lines: usize,
    /// Degradations to report on the job result: shrinking below `min_font_size`, characters
    /// no bundled font has. They never contain the text itself.
    pub warnings: Vec<String>,
    /// The rows holding ink (any pixel with alpha), first and one past the last; `None` for a
    /// transparent box.
    pub ink_rows: Option<(u32, u32)>,
}

/// One shaped glyph, as returned by [`TextEngine::shape_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedGlyph {
    /// Glyph id in `font_file`.
    pub glyph_id: u16,
    /// Byte offset in the text of the first character of the glyph's cluster.
    pub cluster: usize,
    /// File name under `assets/fonts/` of the font the glyph comes from.
    pub font_file: &'static str,
}

/// One shaped glyph with its advance, as returned by [`TextEngine::shape_styled`].
#[derive(Debug, Clone, PartialEq)]
pub struct PositionedGlyph {
    /// Glyph id in its font.
    pub glyph_id: u16,
    /// Byte offset in the text of the first character of the glyph's cluster.
    pub cluster: usize,
    /// Horizontal advance in pixels at the requested font size.
    pub advance: f32,
    /// Family the glyph's font is registered under: a bundled Noto family (`"Noto Sans
    /// Tamil"`), or the name [`TextEngine::load_font`] returned for a brand font.
    pub family: String,
}

/// Why a text could not be rasterized.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A box side is zero or too large.
    #[error("text box {width}x{height} px out of range: each side must be 1..={MAX_BOX_SIDE} px")]
    BoxSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// A style value is not finite or out of its range.
    #[error("{field} {value} out of range {range}")]
    Style {
        /// Name of the [`TextStyle`] field.
        field: &'static str,
        /// The offending value.
        value: f32,
        /// The accepted range.
        range: String,
    },
    /// The text is longer than [`MAX_TEXT_BYTES`].
    #[error("text of {bytes} bytes too long: at most {MAX_TEXT_BYTES} bytes")]
    TextTooLong {
        /// Length of the text in bytes.
        bytes: usize,
    },
    /// Even at [`MIN_FONT_SIZE`] the text does not fit the box.
    #[error(
        "text of {chars} characters does not fit a {width}x{height} px box even at \
         {MIN_FONT_SIZE} px: it needs at least {needed_width}x{needed_height} px"
    )]
    DoesNotFit {
        /// Length of the text in characters.
        chars: usize,
        /// Box width.
        width: u32,
        /// Box height.
        height: u32,
        /// Width the text needs at 4 px, padding included.
        needed_width: u32,
        /// Height the text needs at 4 px, padding included.
        needed_height: u32,
    },
    /// The font database is empty, so nothing can be shaped.
    #[error("no bundled font loaded: the font set is empty")]
    NoFonts,
    /// A brand font could not be loaded, or a style names a family that is not loaded.
    #[error("brand font: {0}")]
    Font(String),
}

/// Shapes and rasterizes text with the bundled fonts.
///
/// Creating one parses the font tables (milliseconds); keep one per thread and reuse it. Glyph
/// images and outline bounds are cached between calls.
#[derive(Debug)]
pub struct TextEngine {
    font_system: FontSystem,
    swash_cache: SwashCache,
    faces: Vec<(fontdb::ID, &'static BundledFont)>,
    /// Loaded brand fonts: SHA-256 of the file and the family it is registered under.
    brands: Vec<([u8; 32], String)>,
    /// Ink bounds per glyph in em units `[x_min, y_min, x_max, y_max]` (y up); `None` for
    /// glyphs without outline.
    bounds: HashMap<(fontdb::ID, u16), Option<[f32; 4]>>,
}

impl Default for TextEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// A pixel rectangle, `x0..x1` by `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Rect {
    fn union(self, other: Self) -> Self {
        Self {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }
}

/// Where a laid-out block goes in the box at one font size.
#[derive(Debug, Clone, Copy)]
struct Placement {
    size: f32,
    lines: usize,
    /// Pen origin added to every run: x of the layout's left edge, y of the first line's top.
    origin: (f32, f32),
}

/// The outcome of trying one font size.
enum Trial {
    Fits(Placement),
    /// Does not fit; the ink and advance extent needs this many pixels, padding included.
    TooBig {
        width: f32,
        height: f32,
    },
}

impl TextEngine {
    /// An engine over the bundled fonts only.
    pub fn new() -> Self {
        let (font_system, faces) = fonts::font_system();
        Self {
            font_system,
            swash_cache: SwashCache::new(),
            faces,
            brands: Vec::new(),
            bounds: HashMap::new(),
        }
    }

    /// Registers a brand font (a TrueType or OpenType file holding one face) and returns the
    /// family name to put in [`TextStyle::font_family`]. The family is named after the file's
    /// SHA-256, so a file loaded again returns the same name without parsing it twice, and a
    /// brand font can never stand in for a bundled family of the same name. Past
    /// [`MAX_LOADED_FONTS`] brand fonts the engine drops them all and starts again.
    ///
    /// # Errors
    /// [`TextError::Font`] when the bytes are not a single font face with outlines.
    pub fn load_font(&mut self, bytes: &[u8]) -> Result<String, TextError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some((_, family)) = self.brands.iter().find(|(d, _)| *d == digest) {
            return Ok(family.clone());
        }
        let font = skrifa::FontRef::new(bytes)
            .map_err(|e| TextError::Font(format!("not a TrueType or OpenType font: {e}")))?;
        if font.charmap().mappings().next().is_none() {
            return Err(TextError::Font("the font maps no character".to_owned()));
        }
        if self.brands.len() >= MAX_LOADED_FONTS {
            *self = Self::new();
        }
        let family = format!(
            "{BRAND_FAMILY_PREFIX}{}",
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let db = self.font_system.db_mut();
        let ids = db.load_font_source(fontdb::Source::Binary(Arc::new(bytes.to_vec())));
        let [id] = ids.as_slice() else {
            for id in ids {
                db.remove_face(id);
            }
            return Err(TextError::Font(
                "the file must hold exactly one font face".to_owned(),
            ));
        };
        let Some(mut info) = db.face(*id).cloned() else {
            return Err(TextError::Font("the font could not be parsed".to_owned()));
        };
        db.remove_face(*id);
        info.families = vec![(family.clone(), fontdb::Language::English_UnitedStates)];
        // A brand font is one file used as it is, whatever weight and style it declares (a
        // bold italic display face included): it is registered as the family's only, regular
        // face, and text in it is always requested at that weight and style, so the match is
        // exact and nothing is synthesized.
        info.weight = fontdb::Weight::NORMAL;
        info.style = fontdb::Style::Normal;
        info.stretch = fontdb::Stretch::Normal;
        db.push_face_info(info);
        self.brands.push((digest, family.clone()));
        Ok(family)
    }

    /// Shapes, fits and rasterizes `text` into a `width` x `height` box.
    ///
    /// The text is wrapped at word boundaries, lines are `line_height * font_size` apart, the
    /// block is centred vertically and aligned horizontally per `style.align`. The font size is
    /// the largest multiple of 0.5 px not above `style.font_size` at which the advances and the
    /// ink of every glyph (shadow included) stay inside the box with a 2 px margin. Below
    /// `style.min_font_size` a warning is added; below 4 px the call fails.
    ///
    /// # Errors
    /// [`TextError::BoxSize`] for a zero or oversized box, [`TextError::Style`] for a
    /// non-finite or out-of-range style value, [`TextError::TextTooLong`],
    /// [`TextError::DoesNotFit`] when 4 px is still too big, [`TextError::NoFonts`].
    pub fn rasterize(
        &mut self,
        text: &str,
        width: u32,
        height: u32,
        style: &TextStyle,
    ) -> Result<RasterText, TextError> {
        validate_box(width, height)?;
        validate_style(style)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(TextError::TextTooLong { bytes: text.len() });
        }
        if self.faces.is_empty() {
            return Err(TextError::NoFonts);
        }
        self.check_family(style)?;
        let mut out = RasterText {
            width,
            height,
            pixels: Vec::new(),
            font_size: style.font_size,
            lines: 0,
            warnings: Vec::new(),
            ink_rows: None,
        };
        if text.chars().all(char::is_whitespace) {
            out.pixels = Canvas::new(width, height).pixels;
            return Ok(out);
        }

        let layout_width = (width as f32 - 2.0 * PADDING).max(1.0);
        let mut buffer = self.buffer(text, style.font_size, style, Some(layout_width));
        let placement = self.fit(&mut buffer, text, width, height, style)?;

        if placement.size < style.min_font_size {
            out.warnings.push(format!(
                "text shrunk to {} px, below min_font_size {} px, to fit {} characters in a \
                 {width}x{height} px box",
                placement.size,
                style.min_font_size,
                text.chars().count()
            ));
        }
        if let Some(warning) = missing_glyph_warning(&buffer) {
            out.warnings.push(warning);
        }

        let mut canvas = Canvas::new(width, height);
        if let Some((color, [dx, dy])) = style.shadow {
            let origin = (placement.origin.0 + dx, placement.origin.1 + dy);
            self.draw(&buffer, &mut canvas, origin, color);
        }
        if let Some((color, width)) = style.outline {
            // The glyphs' coverage, grown by the outline width, filled with the outline colour.
            let mut mask = Canvas::new(canvas.width, canvas.height);
            self.draw(&buffer, &mut mask, placement.origin, [255, 255, 255, 255]);
            let grown = raster::dilate_alpha(&mask, width);
            canvas.fill_coverage(&grown, color);
        }
        self.draw(&buffer, &mut canvas, placement.origin, style.color);
        if self.swash_cache.image_cache.len() > MAX_CACHED_IMAGES {
            self.swash_cache.image_cache.clear();
        }

        out.ink_rows = canvas.ink_rows();
        out.pixels = canvas.pixels;
        out.font_size = placement.size;
        out.lines = placement.lines;
        Ok(out)
    }

    /// Fails when the style names a brand family this engine has not loaded (cosmic-text would
    /// silently draw a bundled family instead).
    fn check_family(&self, style: &TextStyle) -> Result<(), TextError> {
        match &style.font_family {
            Some(family) if !self.brands.iter().any(|(_, f)| f == family) => Err(TextError::Font(
                format!("family `{family}` is not loaded; load the font file first"),
            )),
            _ => Ok(()),
        }
    }

    /// Shapes `text` in `style` (font size, weight, language, brand family) as one unwrapped
    /// line per paragraph and returns its glyphs in visual order (left to right) with their
    /// advances and families. Meant for checking shaping against a reference shaper.
    ///
    /// # Errors
    /// As [`TextEngine::rasterize`] for the style, [`TextError::TextTooLong`],
    /// [`TextError::NoFonts`].
    pub fn shape_styled(
        &mut self,
        text: &str,
        style: &TextStyle,
    ) -> Result<Vec<PositionedGlyph>, TextError> {
        validate_style(style)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(TextError::TextTooLong { bytes: text.len() });
        }
        if self.faces.is_empty() {
            return Err(TextError::NoFonts);
        }
        self.check_family(style)?;
        let glyphs = self.unwrapped_glyphs(text, style);
        let db = self.font_system.db();
        Ok(glyphs
            .into_iter()
            .map(|glyph| PositionedGlyph {
                glyph_id: glyph.glyph_id,
                cluster: glyph.start,
                advance: glyph.w,
                family: db
                    .face(glyph.font_id)
                    .and_then(|face| face.families.first())
                    .map(|(name, _)| name.clone())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Shapes `text` as one unwrapped line per paragraph and returns its glyphs in visual order
    /// (left to right), each with its cluster and font. The primary family follows `lang` as in
    /// [`TextStyle::lang`]. Meant for checking shaping against a reference shaper.
    ///
    /// # Errors
    /// [`TextError::Style`] for a font size outside `4..=1024`, [`TextError::TextTooLong`],
    /// [`TextError::NoFonts`].
    pub fn shape_line(
        &mut self,
        text: &str,
        font_size: f32,
        bold: bool,
        lang: &str,
    ) -> Result<Vec<ShapedGlyph>, TextError> {
        check_range("font_size", font_size, MIN_FONT_SIZE, MAX_FONT_SIZE)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(TextError::TextTooLong { bytes: text.len() });
        }
        if self.faces.is_empty() {
            return Err(TextError::NoFonts);
        }
        let style = TextStyle {
            font_size,
            min_font_size: font_size,
            bold,
            align: Align::Start,
            lang: lang.to_owned(),
            ..TextStyle::default()
        };
        let glyphs = self.unwrapped_glyphs(text, &style);
        Ok(glyphs
            .into_iter()
            .map(|glyph| ShapedGlyph {
                glyph_id: glyph.glyph_id,
                cluster: glyph.start,
                font_file: self
                    .faces
                    .iter()
                    .find(|(id, _)| *id == glyph.font_id)
                    .map_or("", |(_, font)| font.file),
            })
            .collect())
    }

    /// The glyphs of `text` shaped in `style` as one unwrapped line per paragraph, in visual
    /// order (left to right).
    fn unwrapped_glyphs(&mut self, text: &str, style: &TextStyle) -> Vec<LayoutGlyph> {
        let mut buffer = self.buffer(text, style.font_size, style, None);
        buffer.set_wrap(Wrap::None);
        buffer.shape_until_scroll(&mut self.font_system, false);
        let mut glyphs = Vec::new();
        for run in buffer.layout_runs() {
            let start = glyphs.len();
            glyphs.extend(run.glyphs.iter().cloned());
            // Right-to-left lines are laid out from the right edge; flip them to visual order.
            if run.rtl {
                glyphs[start..].reverse();
            }
        }
        glyphs
    }

    /// A shaped buffer holding `text` at `font_size`, wrapped at `width` if given.
    fn buffer(
        &mut self,
        text: &str,
        font_size: f32,
        style: &TextStyle,
        width: Option<f32>,
    ) -> Buffer {
        let family = match &style.font_family {
            Some(brand) => brand.as_str(),
            None => fonts::primary_family(&style.lang, text),
        };
        // `bold` picks the bundled Bold faces; a brand font is drawn as its file is.
        let bold = style.bold && style.font_family.is_none();
        let attrs = Attrs::new()
            .family(Family::Name(family))
            .weight(if bold { Weight::BOLD } else { Weight::NORMAL })
            // Unhinted outlines: true shapes at any size and ink that matches the outline bounds.
            .cache_key_flags(CacheKeyFlags::DISABLE_HINTING);
        let align = match style.align {
            // cosmic-text's default is the start of each paragraph's direction.
            Align::Start => None,
            Align::Center => Some(cosmic_text::Align::Center),
            Align::End => Some(cosmic_text::Align::End),
        };
        let mut buffer = Buffer::new_empty(Metrics::new(font_size, font_size * style.line_height));
        buffer.set_wrap(Wrap::Word);
        buffer.set_size(width, None);
        buffer.set_text(text, &attrs, Shaping::Advanced, align);
        buffer.shape_until_scroll(&mut self.font_system, false);
        buffer
    }

    /// Finds the largest font size on the 0.5 px grid (or `style.font_size` itself) at which
    /// the text fits, preferring sizes at or above `style.min_font_size`.
    fn fit(
        &mut self,
        buffer: &mut Buffer,
        text: &str,
        width: u32,
        height: u32,
        style: &TextStyle,
    ) -> Result<Placement, TextError> {
        let box_size = (width as f32, height as f32);
        if let Trial::Fits(p) = self.try_size(buffer, style.font_size, box_size, style) {
            return Ok(p);
        }
        // Grid steps strictly below font_size: k * SIZE_STEP for k in floor_k..=top_k.
        let floor_k = (MIN_FONT_SIZE / SIZE_STEP) as u32;
        let top_k = ((style.font_size / SIZE_STEP).ceil() as u32).saturating_sub(1);
        let min_k = ((style.min_font_size / SIZE_STEP).ceil() as u32).max(floor_k);

        if min_k <= top_k {
            if let Trial::Fits(p) = self.try_size(buffer, min_k as f32 * SIZE_STEP, box_size, style)
            {
                return Ok(self.search(buffer, p, min_k, top_k, box_size, style));
            }
        }
        match self.try_size(buffer, MIN_FONT_SIZE, box_size, style) {
            Trial::Fits(p) => {
                let hi = min_k.saturating_sub(1).min(top_k);
                Ok(self.search(buffer, p, floor_k, hi, box_size, style))
            }
            Trial::TooBig {
                width: needed_w,
                height: needed_h,
            } => Err(TextError::DoesNotFit {
                chars: text.chars().count(),
                width,
                height,
                needed_width: needed_w.ceil() as u32,
                needed_height: needed_h.ceil() as u32,
            }),
        }
    }

    /// Binary search for the largest `k` in `lo..=hi` whose size fits, given that `lo` fits
    /// with placement `best`.
    fn search(
        &mut self,
        buffer: &mut Buffer,
        mut best: Placement,
        mut lo: u32,
        mut hi: u32,
        box_size: (f32, f32),
        style: &TextStyle,
    ) -> Placement {
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match self.try_size(buffer, mid as f32 * SIZE_STEP, box_size, style) {
                Trial::Fits(p) => {
                    best = p;
                    lo = mid;
                }
                Trial::TooBig { .. } => hi = mid - 1,
            }
        }
        // Leave the buffer laid out at the chosen size for drawing.
        if buffer.metrics().font_size != best.size {
            self.relayout(buffer, best.size, style);
        }
        best
    }

    fn relayout(&mut self, buffer: &mut Buffer, size: f32, style: &TextStyle) {
        buffer.set_metrics(Metrics::new(size, size * style.line_height));
        buffer.shape_until_scroll(&mut self.font_system, false);
    }

    /// Lays the text out at `size` and checks that advances and ink fit the box.
    fn try_size(
        &mut self,
        buffer: &mut Buffer,
        size: f32,
        (box_w, box_h): (f32, f32),
        style: &TextStyle,
    ) -> Trial {
        self.relayout(buffer, size, style);
        let layout_w = box_w - 2.0 * PADDING;

        let mut lines = 0;
        let mut block_h = 0.0;
        for run in buffer.layout_runs() {
            lines += 1;
            block_h += run.line_height;
        }
        // Integer so that later integer nudges keep every glyph's sub-pixel phase.
        let top = match style.vertical_align {
            VerticalAlign::Top => PADDING,
            VerticalAlign::Middle => ((box_h - block_h) / 2.0).floor(),
            VerticalAlign::Bottom => (box_h - PADDING - block_h).floor(),
        };
        let origin = (PADDING, top);

        // Advance extent of non-blank glyphs, relative to the layout box.
        let mut advances: Option<(f32, f32)> = None;
        let mut ink: Option<Rect> = None;
        let shadow = style.shadow.map(|(_, offset)| offset);
        // The outline grows the ink by its width on every side.
        let grow = style.outline.map_or(0.0, |(_, w)| w.ceil());
        for run in buffer.layout_runs() {
            for glyph in run.glyphs {
                let blank = run
                    .text
                    .get(glyph.start..glyph.end)
                    .is_some_and(|s| s.chars().all(char::is_whitespace));
                if blank {
                    continue;
                }
                let (a0, a1) = (
                    glyph.x.min(glyph.x + glyph.w),
                    glyph.x.max(glyph.x + glyph.w),
                );
                advances = Some(advances.map_or((a0, a1), |(l, r)| (l.min(a0), r.max(a1))));
                let pen = (origin.0, origin.1 + run.line_y);
                for offset in std::iter::once([0.0, 0.0]).chain(shadow) {
                    let pen = (pen.0 + offset[0], pen.1 + offset[1]);
                    if let Some(r) = self.ink_rect(glyph, pen) {
                        let r = Rect {
                            x0: r.x0 - grow,
                            y0: r.y0 - grow,
                            x1: r.x1 + grow,
                            y1: r.y1 + grow,
                        };
                        ink = Some(ink.map_or(r, |i| i.union(r)));
                    }
                }
            }
        }
        let (adv_l, adv_r) = advances.unwrap_or((0.0, 0.0));
        let Some(ink) = ink else {
            // No ink at all (only blank or outline-less glyphs): fits if the advances do.
            return if adv_l >= -0.01 && adv_r <= layout_w + 0.01 {
                Trial::Fits(Placement {
                    size,
                    lines,
                    origin,
                })
            } else {
                Trial::TooBig {
                    width: adv_r - adv_l + 2.0 * PADDING,
                    height: block_h,
                }
            };
        };

        let advances_fit = adv_l >= -0.01 && adv_r <= layout_w + 0.01;
        let ink_w = ink.x1 - ink.x0;
        let ink_h = ink.y1 - ink.y0;
        let needed = Trial::TooBig {
            width: (adv_r - adv_l).max(ink_w) + 2.0 * PADDING,
            height: ink_h + 2.0 * PADDING,
        };
        if !advances_fit {
            return needed;
        }
        // Shift by whole pixels to bring ink that pokes out on one side back in.
        let nudge = |lo: f32, hi: f32, limit: f32| -> Option<f32> {
            let shift = if lo < PADDING {
                (PADDING - lo).ceil()
            } else if hi > limit - PADDING {
                -(hi - (limit - PADDING)).ceil()
            } else {
                0.0
            };
            (lo + shift >= PADDING && hi + shift <= limit - PADDING).then_some(shift)
        };
        match (nudge(ink.x0, ink.x1, box_w), nudge(ink.y0, ink.y1, box_h)) {
            (Some(dx), Some(dy)) => Trial::Fits(Placement {
                size,
                lines,
                origin: (origin.0 + dx, origin.1 + dy),
            }),
            _ => needed,
        }
    }

    /// Pixel rectangle covered by `glyph` drawn with its line's pen at `pen`, one pixel wider
    /// on each side than the outline bounds (anti-aliasing and sub-pixel placement).
    fn ink_rect(&mut self, glyph: &LayoutGlyph, pen: (f32, f32)) -> Option<Rect> {
        let physical = glyph.physical(pen, 1.0);
        let [x_min, y_min, x_max, y_max] = self.glyph_bounds(glyph)?;
        let size = glyph.font_size;
        let ox = physical.x as f32 + physical.cache_key.x_bin.as_float();
        let oy = physical.y as f32 + physical.cache_key.y_bin.as_float();
        Some(Rect {
            x0: (ox + x_min * size).floor() - 1.0,
            y0: (oy - y_max * size).floor() - 1.0,
            x1: (ox + x_max * size).ceil() + 1.0,
            y1: (oy - y_min * size).ceil() + 1.0,
        })
    }

    /// Outline bounds of a glyph in em units, cached.
    fn glyph_bounds(&mut self, glyph: &LayoutGlyph) -> Option<[f32; 4]> {
        let key = (glyph.font_id, glyph.glyph_id);
        if let Some(bounds) = self.bounds.get(&key) {
            return *bounds;
        }
        let index = self
            .font_system
            .db()
            .face(glyph.font_id)
            .map_or(0, |face| face.index);
        let bounds = self
            .font_system
            .get_font(glyph.font_id, glyph.font_weight)
            .and_then(|font| {
                let font_ref = skrifa::FontRef::from_index(font.data(), index).ok()?;
                let metrics = font_ref.glyph_metrics(Size::new(1.0), LocationRef::default());
                let b = metrics.bounds(skrifa::GlyphId::new(u32::from(glyph.glyph_id)))?;
                (b.x_max > b.x_min && b.y_max > b.y_min)
                    .then_some([b.x_min, b.y_min, b.x_max, b.y_max])
            });
        self.bounds.insert(key, bounds);
        bounds
    }

    /// Draws every glyph of the laid-out buffer in `color`, pen origin at `origin`.
    fn draw(&mut self, buffer: &Buffer, canvas: &mut Canvas, origin: (f32, f32), color: [u8; 4]) {
        for run in buffer.layout_runs() {
            for glyph in run.glyphs {
                let physical = glyph.physical((origin.0, origin.1 + run.line_y), 1.0);
                let image = self
                    .swash_cache
                    .get_image(&mut self.font_system, physical.cache_key);
                if let Some(image) = image {
                    let x = i64::from(physical.x) + i64::from(image.placement.left);
                    let y = i64::from(physical.y) - i64::from(image.placement.top);
                    canvas.draw_glyph(image, x, y, color);
                }
            }
        }
    }
}

/// A warning naming the code points drawn as .notdef because no bundled font has them.
fn missing_glyph_warning(buffer: &Buffer) -> Option<String> {
    let mut missing = BTreeSet::new();
    for run in buffer.layout_runs() {
        for glyph in run.glyphs.iter().filter(|g| g.glyph_id == 0) {
            let Some(cluster) = run.text.get(glyph.start..glyph.end) else {
                continue;
            };
            let visible = cluster.chars().filter(|c| !c.is_whitespace());
            let uncovered: Vec<char> = visible
                .clone()
                .filter(|&c| !fonts::any_font_covers(c))
                .collect();
            // A cluster can come out as .notdef although each of its characters exists in
            // some font (a mark on a base of another script); then name the whole cluster.
            if uncovered.is_empty() {
                missing.extend(visible);
            } else {
                missing.extend(uncovered);
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let mut list = String::new();
    for (i, c) in missing.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(list, "{sep}U+{:04X}", u32::from(*c));
    }
    Some(format!(
        "no bundled font has a glyph for {list}; drew .notdef boxes instead"
    ))
}

fn validate_box(width: u32, height: u32) -> Result<(), TextError> {
    let ok = |side: u32| (1..=MAX_BOX_SIDE).contains(&side);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(TextError::BoxSize { width, height })
    }
}

fn check_range(field: &'static str, value: f32, min: f32, max: f32) -> Result<(), TextError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(TextError::Style {
            field,
            value,
            range: format!("{min}..={max}"),
        })
    }
}

fn validate_style(style: &TextStyle) -> Result<(), TextError> {
    check_range("font_size", style.font_size, MIN_FONT_SIZE, MAX_FONT_SIZE)?;
    check_range("min_font_size", style.min_font_size, 0.0, style.font_size)?;
    check_range(
        "line_height",
        style.line_height,
        *LINE_HEIGHT_RANGE.start(),
        *LINE_HEIGHT_RANGE.end(),
    )?;
    if let Some((_, [x, y])) = style.shadow {
        check_range("shadow offset x", x, -MAX_SHADOW_OFFSET, MAX_SHADOW_OFFSET)?;
        check_range("shadow offset y", y, -MAX_SHADOW_OFFSET, MAX_SHADOW_OFFSET)?;
    }
    if let Some((_, width)) = style.outline {
        if !(width > 0.0 && width <= MAX_OUTLINE_WIDTH) {
            return Err(TextError::Style {
                field: "outline width",
                value: width,
                range: format!("(0, {MAX_OUTLINE_WIDTH}]"),
            });
        }
    }
    Ok(())
}
