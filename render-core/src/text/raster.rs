//! Premultiplied RGBA8 canvas and glyph compositing (source-over).

use cosmic_text::{SwashContent, SwashImage};

/// `a * b / 255`, rounded to nearest, exact for all `a, b` in `0..=255`.
#[inline]
pub(crate) fn mul_255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    (t + (t >> 8)) >> 8
}

/// A premultiplied RGBA8 image, row-major, four bytes per pixel.
#[derive(Debug)]
pub(crate) struct Canvas {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) pixels: Vec<u8>,
}

impl Canvas {
    /// A transparent canvas.
    pub(crate) fn new(width: u32, height: u32) -> Self {
        let len = width as usize * height as usize * 4;
        Self {
            width,
            height,
            pixels: vec![0; len],
        }
    }

    /// Composites a premultiplied source pixel over the pixel at byte offset `i`.
    #[inline]
    fn over_at(&mut self, i: usize, src: [u32; 4]) {
        if src[3] == 0 {
            return;
        }
        let Some(dst) = self.pixels.get_mut(i..i + 4) else {
            return;
        };
        let inv = 255 - src[3];
        for (d, s) in dst.iter_mut().zip(src) {
            // s <= src alpha and d <= 255, so the sum stays within 0..=255.
            *d = (s + mul_255(u32::from(*d), inv)).min(255) as u8;
        }
    }

    /// Composites a premultiplied source pixel over the pixel at `(x, y)`; pixels outside the
    /// canvas are ignored.
    #[cfg(test)]
    fn over(&mut self, x: i64, y: i64, src: [u32; 4]) {
        if x >= 0 && y >= 0 && x < i64::from(self.width) && y < i64::from(self.height) {
            let i = (y as usize * self.width as usize + x as usize) * 4;
            self.over_at(i, src);
        }
    }

    /// Calls `f(byte offset in the canvas, column in the image, row in the image)` for every
    /// pixel of a `w` x `h` image placed with its top-left at `(x, y)` that lands on the canvas.
    fn for_each_visible(
        &mut self,
        x: i64,
        y: i64,
        w: usize,
        h: usize,
        mut f: impl FnMut(&mut Self, usize, usize, usize),
    ) {
        let (cw, ch) = (i64::from(self.width), i64::from(self.height));
        let col0 = (-x).clamp(0, w as i64) as usize;
        let col1 = (cw - x).clamp(0, w as i64) as usize;
        let row0 = (-y).clamp(0, h as i64) as usize;
        let row1 = (ch - y).clamp(0, h as i64) as usize;
        for row in row0..row1 {
            // Visible rows and columns have canvas coordinates in 0..height and 0..width.
            let line = ((y + row as i64) as usize) * self.width as usize;
            for col in col0..col1 {
                let i = (line + (x + col as i64) as usize) * 4;
                f(self, i, col, row);
            }
        }
    }

    /// Draws a glyph image whose top-left pixel lands at `(x, y)` in canvas coordinates.
    ///
    /// Alpha masks are filled with `color` (straight RGBA) scaled by coverage. Colour glyphs
    /// are taken as premultiplied RGBA (what swash produces for colour outlines; channels are
    /// clamped to alpha so the result stays valid) and scaled by `color`'s alpha.
    pub(crate) fn draw_glyph(&mut self, image: &SwashImage, x: i64, y: i64, color: [u8; 4]) {
        let w = image.placement.width as usize;
        let h = image.placement.height as usize;
        let data = &image.data[..];
        let [r, g, b, a] = color.map(u32::from);
        match image.content {
            SwashContent::Mask => {
                if data.len() < w * h {
                    return;
                }
                self.for_each_visible(x, y, w, h, |canvas, i, col, row| {
                    let coverage = u32::from(data[row * w + col]);
                    if coverage != 0 {
                        let alpha = mul_255(coverage, a);
                        let src = [
                            mul_255(r, alpha),
                            mul_255(g, alpha),
                            mul_255(b, alpha),
                            alpha,
                        ];
                        canvas.over_at(i, src);
                    }
                });
            }
            SwashContent::Color => {
                if data.len() < w * h * 4 {
                    return;
                }
                self.for_each_visible(x, y, w, h, |canvas, i, col, row| {
                    let px = &data[(row * w + col) * 4..][..4];
                    let alpha = mul_255(u32::from(px[3]), a);
                    let channel = |c: u8| mul_255(u32::from(c).min(u32::from(px[3])), a);
                    canvas.over_at(i, [channel(px[0]), channel(px[1]), channel(px[2]), alpha]);
                });
            }
            SwashContent::SubpixelMask => {
                // Never requested (the renderer asks swash for `Format::Alpha`); use the first
                // sub-pixel channel as coverage should one appear.
                if data.len() < w * h * 4 {
                    return;
                }
                self.for_each_visible(x, y, w, h, |canvas, i, col, row| {
                    let alpha = mul_255(u32::from(data[(row * w + col) * 4]), a);
                    let src = [
                        mul_255(r, alpha),
                        mul_255(g, alpha),
                        mul_255(b, alpha),
                        alpha,
                    ];
                    canvas.over_at(i, src);
                });
            }
        }
    }
}

impl Canvas {
    /// Composites `color` (straight RGBA) scaled by a per-pixel coverage (`width * height`
    /// bytes, row-major) over the canvas.
    pub(crate) fn fill_coverage(&mut self, coverage: &[u8], color: [u8; 4]) {
        let [r, g, b, a] = color.map(u32::from);
        for (i, &c) in coverage.iter().enumerate() {
            if c != 0 {
                let alpha = mul_255(u32::from(c), a);
                let src = [
                    mul_255(r, alpha),
                    mul_255(g, alpha),
                    mul_255(b, alpha),
                    alpha,
                ];
                self.over_at(i * 4, src);
            }
        }
    }

    /// The rows holding any pixel with alpha: the first and one past the last.
    pub(crate) fn ink_rows(&self) -> Option<(u32, u32)> {
        let row_bytes = self.width as usize * 4;
        if row_bytes == 0 {
            return None;
        }
        let inked = |row: &[u8]| row.chunks_exact(4).any(|p| p[3] != 0);
        let mut rows = self.pixels.chunks_exact(row_bytes);
        let first = rows.position(inked)?;
        let last = self.pixels.chunks_exact(row_bytes).rposition(inked)?;
        Some((first as u32, last as u32 + 1))
    }
}

/// The canvas's alpha grown by `radius` pixels: each output pixel is the largest alpha within
/// a disc of that radius around it (a morphological dilation), so anti-aliased glyph edges
/// stay soft. Row by row, each row of the disc is a sliding maximum computed in constant time
/// per pixel (van Herk / Gil-Werman), so the cost is `width * height * (2 * radius + 1)`.
pub(crate) fn dilate_alpha(canvas: &Canvas, radius: f32) -> Vec<u8> {
    let (w, h) = (canvas.width as usize, canvas.height as usize);
    let alpha: Vec<u8> = canvas.pixels.chunks_exact(4).map(|p| p[3]).collect();
    let mut out = alpha.clone();
    if w == 0 || h == 0 || radius <= 0.0 {
        return out;
    }
    let reach = radius.ceil() as usize;
    let r2 = radius * radius;
    // Sliding maxima of one source row for one half-width, reused between calls.
    let mut padded = Vec::new();
    let mut prefix = Vec::new();
    let mut suffix = Vec::new();
    for dy in 0..=reach {
        let rest = r2 - (dy * dy) as f32;
        if rest < 0.0 {
            break;
        }
        let half = rest.sqrt().floor() as usize;
        let window = 2 * half + 1;
        for src_y in 0..h {
            // Sliding max over [x - half, x + half] of row src_y, zero outside the canvas.
            padded.clear();
            padded.resize(half, 0u8);
            padded.extend_from_slice(&alpha[src_y * w..(src_y + 1) * w]);
            padded.resize(w + 2 * half, 0);
            let n = padded.len();
            prefix.clear();
            prefix.resize(n, 0u8);
            suffix.clear();
            suffix.resize(n, 0u8);
            for i in 0..n {
                prefix[i] = if i % window == 0 {
                    padded[i]
                } else {
                    prefix[i - 1].max(padded[i])
                };
            }
            for i in (0..n).rev() {
                suffix[i] = if i % window == window - 1 || i == n - 1 {
                    padded[i]
                } else {
                    suffix[i + 1].max(padded[i])
                };
            }
            // The row's maxima reach the rows dy above and below it.
            let below = Some(src_y + dy).filter(|&y| dy > 0 && y < h);
            for target in [src_y.checked_sub(dy), below].into_iter().flatten() {
                let row = &mut out[target * w..(target + 1) * w];
                for (x, o) in row.iter_mut().enumerate() {
                    // Window [x, x + window - 1] in padded coordinates.
                    let m = suffix[x].max(prefix[x + window - 1]);
                    if m > *o {
                        *o = m;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_255_is_exact_rounding() {
        for a in 0..=255u32 {
            for b in 0..=255u32 {
                let exact = (f64::from(a) * f64::from(b) / 255.0).round() as u32;
                assert_eq!(mul_255(a, b), exact, "{a} * {b}");
            }
        }
    }

    #[test]
    fn over_keeps_premultiplied_invariant() {
        let mut canvas = Canvas::new(1, 1);
        let colors: [[u8; 4]; 4] = [
            [255, 10, 200, 255],
            [0, 255, 0, 77],
            [255, 255, 255, 1],
            [9, 8, 7, 200],
        ];
        for (i, c) in colors.iter().enumerate() {
            let alpha = mul_255(u32::from(c[3]), (i as u32 * 97) % 256);
            let src = [
                mul_255(u32::from(c[0]), alpha),
                mul_255(u32::from(c[1]), alpha),
                mul_255(u32::from(c[2]), alpha),
                alpha,
            ];
            canvas.over(0, 0, src);
            let p = &canvas.pixels;
            assert!(p[0] <= p[3] && p[1] <= p[3] && p[2] <= p[3], "{p:?}");
        }
        // Opaque white over anything gives opaque white.
        canvas.over(0, 0, [255, 255, 255, 255]);
        assert_eq!(canvas.pixels, vec![255, 255, 255, 255]);
    }

    #[test]
    fn glyph_partly_off_canvas_is_clipped() {
        let mut image = SwashImage::new();
        image.content = SwashContent::Mask;
        image.placement.width = 3;
        image.placement.height = 2;
        image.data = vec![255; 6];
        let mut canvas = Canvas::new(4, 3);
        canvas.draw_glyph(&image, -1, 2, [255, 0, 0, 255]);
        canvas.draw_glyph(&image, 3, -1, [0, 0, 255, 128]);
        canvas.draw_glyph(&image, 10, 10, [0, 255, 0, 255]);
        let px = |x: usize, y: usize| &canvas.pixels[(y * 4 + x) * 4..][..4];
        assert_eq!(px(0, 2), [255, 0, 0, 255]);
        assert_eq!(px(1, 2), [255, 0, 0, 255]);
        assert_eq!(px(2, 2), [0, 0, 0, 0]);
        assert_eq!(px(3, 0), [0, 0, 128, 128]);
        assert_eq!(px(3, 1), [0, 0, 0, 0]);
        let lit = canvas.pixels.chunks_exact(4).filter(|p| p[3] > 0).count();
        assert_eq!(lit, 3);
    }

    #[test]
    fn dilation_grows_a_dot_into_a_disc() {
        let mut canvas = Canvas::new(11, 11);
        canvas.pixels[(5 * 11 + 5) * 4 + 3] = 200;
        let grown = dilate_alpha(&canvas, 3.0);
        for y in 0..11i32 {
            for x in 0..11i32 {
                let inside = (x - 5) * (x - 5) + (y - 5) * (y - 5) <= 9;
                let expected = if inside { 200 } else { 0 };
                assert_eq!(grown[(y * 11 + x) as usize], expected, "({x}, {y})");
            }
        }
        // A dot at the corner grows only inside the canvas.
        let mut corner = Canvas::new(4, 3);
        corner.pixels[3] = 255;
        let grown = dilate_alpha(&corner, 1.0);
        assert_eq!(grown, vec![255, 255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn ink_rows_and_coverage_fill() {
        let mut canvas = Canvas::new(3, 4);
        assert_eq!(canvas.ink_rows(), None);
        let mut coverage = vec![0u8; 12];
        coverage[4] = 255;
        coverage[9] = 128;
        canvas.fill_coverage(&coverage, [255, 0, 0, 255]);
        assert_eq!(canvas.ink_rows(), Some((1, 4)));
        assert_eq!(&canvas.pixels[16..20], &[255, 0, 0, 255]);
        assert_eq!(&canvas.pixels[36..40], &[128, 0, 0, 128]);
    }
}
