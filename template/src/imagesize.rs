//! Pixel size of a PNG, JPEG or WebP file from its header, without decoding it (this crate
//! links no image codec). Used to check that a mouth atlas divides into its cell grid.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Width and height of the image at `path`, or why they cannot be read.
pub(crate) fn image_size(path: &Path) -> Result<(u32, u32), String> {
    let file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut r = BufReader::new(file);
    let mut head = [0u8; 30];
    let n = read_up_to(&mut r, &mut head)?;
    let head = &head[..n];
    let not_image = || "is not a PNG, JPEG or WebP image".to_owned();
    let truncated = || "is a truncated image".to_owned();
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        if head.len() < 24 || &head[12..16] != b"IHDR" {
            return Err(truncated());
        }
        return Ok((be32(&head[16..20]), be32(&head[20..24])));
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        if head.len() < 30 {
            return Err(truncated());
        }
        return match &head[12..16] {
            b"VP8 " => Ok((
                u32::from(u16::from_le_bytes([head[26], head[27]]) & 0x3fff),
                u32::from(u16::from_le_bytes([head[28], head[29]]) & 0x3fff),
            )),
            b"VP8L" => {
                let bits = u32::from_le_bytes([head[21], head[22], head[23], head[24]]);
                Ok(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => Ok((le24(&head[24..27]) + 1, le24(&head[27..30]) + 1)),
            _ => Err(not_image()),
        };
    }
    if head.starts_with(&[0xff, 0xd8]) {
        return jpeg_size(&mut r);
    }
    Err(not_image())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    Ok(n)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le24(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

/// Walks the JPEG segments to the first start-of-frame marker.
fn jpeg_size<R: Read + Seek>(r: &mut R) -> Result<(u32, u32), String> {
    let truncated = || "is a truncated or damaged JPEG image".to_owned();
    r.seek(SeekFrom::Start(2))
        .map_err(|e| format!("cannot be read: {e}"))?;
    // A bound on the segments walked, so a damaged file cannot keep the loop going.
    for _ in 0..10_000 {
        let mut byte = [0u8; 1];
        // Skip to a marker: 0xFF, then any fill bytes 0xFF, then the marker code.
        loop {
            if read_up_to(r, &mut byte)? == 0 {
                return Err(truncated());
            }
            if byte[0] == 0xff {
                break;
            }
        }
        let mut marker = 0xffu8;
        while marker == 0xff {
            if read_up_to(r, &mut byte)? == 0 {
                return Err(truncated());
            }
            marker = byte[0];
        }
        // Markers without a length: TEM, RSTn, SOI, EOI, stuffed 0x00.
        if marker == 0x00 || marker == 0x01 || (0xd0..=0xd9).contains(&marker) {
            continue;
        }
        let mut len = [0u8; 2];
        if read_up_to(r, &mut len)? < 2 {
            return Err(truncated());
        }
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return Err(truncated());
        }
        let is_sof = (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if is_sof {
            let mut sof = [0u8; 5];
            if read_up_to(r, &mut sof)? < 5 {
                return Err(truncated());
            }
            let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
            let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            return Ok((width, height));
        }
        r.seek(SeekFrom::Current(i64::from(len) - 2))
            .map_err(|e| format!("cannot be read: {e}"))?;
    }
    Err(truncated())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("reelfarm-imagesize-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn png_header() {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&900u32.to_be_bytes());
        b.extend_from_slice(&100u32.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0]);
        let p = temp("a.png", &b);
        assert_eq!(image_size(&p), Ok((900, 100)));
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn jpeg_header_after_app_segment() {
        let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x06, 1, 2, 3, 4];
        b.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 8, 0x00, 0x40, 0x01, 0x20, 3]);
        b.extend_from_slice(&[0; 9]);
        let p = temp("a.jpg", &b);
        assert_eq!(image_size(&p), Ok((288, 64)));
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn webp_headers() {
        let mut lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
        let bits: u32 = (300 - 1) | ((40 - 1) << 14);
        lossless.extend_from_slice(&bits.to_le_bytes());
        lossless.extend_from_slice(&[0; 8]);
        let p = temp("l.webp", &lossless);
        assert_eq!(image_size(&p), Ok((300, 40)));
        let _ = std::fs::remove_file(p);

        let mut lossy = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\x9d\x01\x2a".to_vec();
        lossy.extend_from_slice(&81u16.to_le_bytes());
        lossy.extend_from_slice(&9u16.to_le_bytes());
        let p = temp("v.webp", &lossy);
        assert_eq!(image_size(&p), Ok((81, 9)));
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn other_files_are_refused() {
        let p = temp("x.txt", b"not really media");
        assert!(image_size(&p).is_err_and(|e| e.contains("not a PNG")));
        let _ = std::fs::remove_file(p);
        let p = temp("t.jpg", &[0xff, 0xd8, 0xff, 0xe0, 0x00]);
        assert!(image_size(&p).is_err_and(|e| e.contains("truncated")));
        let _ = std::fs::remove_file(p);
    }
}
