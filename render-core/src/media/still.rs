//! Still images: PNG, JPEG and WebP in, PNG out, premultiplied RGBA8 in memory.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::MediaError;

/// Largest accepted image width or height, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Largest accepted decoded image size, in bytes (in the file's own pixel format).
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;

/// An 8-bit RGBA image with premultiplied alpha, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes: R, G, B premultiplied by A, then A.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// Number of bytes `pixels` must hold for `width` × `height`.
    pub fn byte_len(width: u32, height: u32) -> usize {
        width as usize * height as usize * 4
    }
}

/// Premultiplies one colour channel: `(c * a + 127) / 255`.
#[inline]
fn premultiply(c: u8, a: u8) -> u8 {
    // Max (255 * 255 + 127) / 255 = 255, so the result always fits.
    ((u16::from(c) * u16::from(a) + 127) / 255) as u8
}

/// Reverses [`premultiply`] to the nearest straight value: `(c * 255 + a / 2) / a`, clamped.
#[inline]
fn unpremultiply(c: u8, a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    let a = u32::from(a);
    ((u32::from(c) * 255 + a / 2) / a).min(255) as u8
}

/// Loads a PNG, JPEG or WebP file (format detected from content, not the extension) as
/// premultiplied RGBA8. Images without alpha come out opaque.
///
/// Refuses images wider or taller than [`MAX_IMAGE_SIDE`] or whose decoded size exceeds
/// [`MAX_IMAGE_BYTES`], before decoding any pixels.
pub fn load_image(path: &Path) -> Result<RgbaImage, MediaError> {
    let owned = || path.to_path_buf();
    let image_err = |source| MediaError::Image {
        path: owned(),
        source,
    };

    let reader = ImageReader::open(path).map_err(|source| io_error(path, source))?;
    let mut reader = reader
        .with_guessed_format()
        .map_err(|source| io_error(path, source))?;
    // Headers only: the pixel limits are checked below with a message naming the sizes.
    reader.limits(header_limits());
    let mut decoder = reader.into_decoder().map_err(image_err)?;

    let (width, height) = decoder.dimensions();
    let bytes = decoder.total_bytes();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || bytes > MAX_IMAGE_BYTES {
        return Err(MediaError::ImageTooLarge {
            path: owned(),
            width,
            height,
            bytes,
            max_side: MAX_IMAGE_SIDE,
            max_bytes: MAX_IMAGE_BYTES,
        });
    }
    if width == 0 || height == 0 {
        return Err(MediaError::ImageBuffer {
            path: owned(),
            width,
            height,
            actual: 0,
            expected: 0,
        });
    }
    decoder.set_limits(pixel_limits()).map_err(image_err)?;

    let decoded = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let has_alpha = decoded.color().has_alpha();
    let mut pixels = decoded.into_rgba8().into_raw();
    if has_alpha {
        for px in pixels.chunks_exact_mut(4) {
            let a = px[3];
            px[0] = premultiply(px[0], a);
            px[1] = premultiply(px[1], a);
            px[2] = premultiply(px[2], a);
        }
    }
    tracing::debug!(path = %path.display(), width, height, has_alpha, "loaded image");
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}

/// Writes `image` (premultiplied) as a straight-alpha 8-bit RGBA PNG, e.g. a poster still.
pub fn save_png(path: &Path, image: &RgbaImage) -> Result<(), MediaError> {
    let expected = RgbaImage::byte_len(image.width, image.height);
    if image.pixels.len() != expected || expected == 0 {
        return Err(MediaError::ImageBuffer {
            path: path.to_path_buf(),
            width: image.width,
            height: image.height,
            actual: image.pixels.len(),
            expected,
        });
    }
    let mut straight = image.pixels.clone();
    for px in straight.chunks_exact_mut(4) {
        let a = px[3];
        if a != 255 {
            px[0] = unpremultiply(px[0], a);
            px[1] = unpremultiply(px[1], a);
            px[2] = unpremultiply(px[2], a);
        }
    }
    image::save_buffer_with_format(
        path,
        &straight,
        image.width,
        image.height,
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )
    .map_err(|source| match source {
        image::ImageError::IoError(source) => io_error(path, source),
        source => MediaError::Image {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn io_error(path: &Path, source: std::io::Error) -> MediaError {
    let path: PathBuf = path.to_path_buf();
    if source.kind() == std::io::ErrorKind::NotFound {
        MediaError::NotFound { path }
    } else {
        MediaError::Io { path, source }
    }
}

/// Limits while reading headers: no dimension cap yet, so the size check can report the sizes.
fn header_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

/// Limits while decoding pixels: a backstop for decoders that allocate more than the output.
fn pixel_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_util::{ffmpeg, TempDir};

    fn write_rgba_png(path: &Path, w: u32, h: u32, px: &[u8]) {
        image::save_buffer_with_format(
            path,
            px,
            w,
            h,
            image::ExtendedColorType::Rgba8,
            image::ImageFormat::Png,
        )
        .expect("write png");
    }

    #[test]
    fn premultiply_rounds() {
        assert_eq!(premultiply(255, 128), 128);
        assert_eq!(premultiply(255, 255), 255);
        assert_eq!(premultiply(0, 200), 0);
        assert_eq!(premultiply(100, 0), 0);
        assert_eq!(premultiply(1, 127), 0);
        assert_eq!(premultiply(1, 128), 1);
        // Exhaustive: never exceeds alpha, and round trips within one step of the original
        // wherever alpha is high enough to carry the value.
        for a in 0..=255u8 {
            for c in 0..=255u8 {
                let p = premultiply(c, a);
                assert!(p <= a, "c={c} a={a} p={p}");
                if a == 255 {
                    assert_eq!(unpremultiply(p, a), c);
                }
            }
        }
    }

    #[test]
    fn png_alpha_is_premultiplied() {
        let dir = TempDir::new("png_alpha");
        let path = dir.path("a.png");
        // Half-transparent red, opaque green, fully transparent white, 50% grey at 25%.
        let px = [
            255, 0, 0, 128, 0, 255, 0, 255, 255, 255, 255, 0, 128, 128, 128, 64,
        ];
        write_rgba_png(&path, 2, 2, &px);
        let img = load_image(&path).expect("load png");
        assert_eq!((img.width, img.height), (2, 2));
        assert_eq!(&img.pixels[0..4], &[128, 0, 0, 128]);
        assert_eq!(&img.pixels[4..8], &[0, 255, 0, 255]);
        assert_eq!(&img.pixels[8..12], &[0, 0, 0, 0]);
        assert_eq!(&img.pixels[12..16], &[32, 32, 32, 64]);
    }

    #[test]
    fn save_png_round_trips_opaque_and_unpremultiplies() {
        let dir = TempDir::new("png_save");
        let path = dir.path("out.png");
        let img = RgbaImage {
            width: 2,
            height: 1,
            pixels: vec![10, 20, 30, 255, 64, 0, 0, 128],
        };
        save_png(&path, &img).expect("save");
        let raw = image::open(&path).expect("reopen").into_rgba8().into_raw();
        assert_eq!(&raw[0..4], &[10, 20, 30, 255]);
        // 64 premultiplied at alpha 128 is straight 128 (64*255/128 = 127.5 → 128).
        assert_eq!(&raw[4..8], &[128, 0, 0, 128]);
        assert_eq!(load_image(&path).expect("load").pixels, img.pixels);

        let bad = RgbaImage {
            width: 3,
            height: 3,
            pixels: vec![0; 5],
        };
        let err = save_png(&dir.path("bad.png"), &bad).expect_err("size mismatch");
        assert!(err.to_string().contains("expected 36"), "{err}");
    }

    #[test]
    fn jpeg_loads_opaque() {
        let dir = TempDir::new("jpeg");
        let path = dir.path("x.jpg");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=0x3366cc:s=64x48",
            "-frames:v",
            "1",
            path.to_str().expect("utf8"),
        ]);
        let img = load_image(&path).expect("load jpeg");
        assert_eq!((img.width, img.height), (64, 48));
        assert_eq!(img.pixels.len(), 64 * 48 * 4);
        let centre = &img.pixels[(24 * 64 + 32) * 4..][..4];
        assert_eq!(centre[3], 255);
        for (got, want) in centre.iter().zip([0x33u8, 0x66, 0xcc]) {
            assert!(got.abs_diff(want) <= 6, "centre {centre:?}");
        }
    }

    #[test]
    fn webp_lossless_with_alpha_loads_premultiplied() {
        let dir = TempDir::new("webp");
        let path = dir.path("x.webp");
        let px: Vec<u8> = [255u8, 0, 0, 128].repeat(16);
        let file = std::fs::File::create(&path).expect("create");
        image::codecs::webp::WebPEncoder::new_lossless(file)
            .encode(&px, 4, 4, image::ExtendedColorType::Rgba8)
            .expect("encode webp");
        let img = load_image(&path).expect("load webp");
        assert_eq!((img.width, img.height), (4, 4));
        assert!(img.pixels.chunks_exact(4).all(|p| p == [128, 0, 0, 128]));
    }

    #[test]
    fn webp_lossy_from_ffmpeg_loads() {
        let dir = TempDir::new("webp_lossy");
        let path = dir.path("y.webp");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=96x64",
            "-frames:v",
            "1",
            "-c:v",
            "libwebp",
            path.to_str().expect("utf8"),
        ]);
        let img = load_image(&path).expect("load lossy webp");
        assert_eq!((img.width, img.height), (96, 64));
        assert!(img.pixels.chunks_exact(4).all(|p| p[3] == 255));
    }

    #[test]
    fn corrupt_and_missing_files_are_errors() {
        let dir = TempDir::new("img_corrupt");
        let garbage = dir.path("garbage.png");
        std::fs::write(
            &garbage,
            b"\x89PNG\r\n\x1a\nthis is not really a png at all",
        )
        .expect("w");
        let err = load_image(&garbage).expect_err("corrupt png");
        assert!(err.to_string().contains("garbage.png"), "{err}");

        let random = dir.path("random.jpg");
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(&random, bytes).expect("w");
        assert!(load_image(&random).is_err());

        // A valid PNG cut in half.
        let full = dir.path("full.png");
        let px: Vec<u8> = (0..64 * 64 * 4).map(|i| (i * 7 % 251) as u8).collect();
        write_rgba_png(&full, 64, 64, &px);
        let data = std::fs::read(&full).expect("read");
        let cut = dir.path("cut.png");
        std::fs::write(&cut, &data[..data.len() / 2]).expect("w");
        assert!(load_image(&cut).is_err());

        let missing = dir.path("nope.png");
        assert!(matches!(
            load_image(&missing),
            Err(MediaError::NotFound { .. })
        ));
    }

    /// Patches a valid PNG's IHDR to declare `w` × `h`, with a correct CRC.
    fn png_declaring(w: u32, h: u32) -> Vec<u8> {
        let dir = TempDir::new("png_declare");
        let path = dir.path("small.png");
        write_rgba_png(&path, 1, 1, &[1, 2, 3, 4]);
        let mut data = std::fs::read(&path).expect("read");
        // Signature (8) + length (4) + "IHDR" (4), then width and height.
        assert_eq!(&data[12..16], b"IHDR");
        data[16..20].copy_from_slice(&w.to_be_bytes());
        data[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&data[12..29]);
        data[29..33].copy_from_slice(&crc.to_be_bytes());
        data
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn huge_declared_dimensions_are_refused() {
        let dir = TempDir::new("png_huge");
        let huge = dir.path("huge.png");
        std::fs::write(&huge, png_declaring(100_000, 100_000)).expect("w");
        let err = load_image(&huge).expect_err("huge");
        assert!(matches!(err, MediaError::ImageTooLarge { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("100000x100000") && msg.contains("huge.png"),
            "{msg}"
        );

        // Within the side limit but 16-bit RGBA: 8192 * 8192 * 8 bytes = 512 MiB.
        let mut deep = png_declaring(8192, 8192);
        deep[24] = 16; // bit depth
        let crc = crc32(&deep[12..29]);
        deep[29..33].copy_from_slice(&crc.to_be_bytes());
        let deep_path = dir.path("deep.png");
        std::fs::write(&deep_path, deep).expect("w");
        let err = load_image(&deep_path).expect_err("too many bytes");
        assert!(matches!(err, MediaError::ImageTooLarge { .. }), "{err}");

        // Just over the side limit in one direction.
        let wide = dir.path("wide.png");
        std::fs::write(&wide, png_declaring(8193, 1)).expect("w");
        assert!(matches!(
            load_image(&wide),
            Err(MediaError::ImageTooLarge { .. })
        ));
    }
}
