//! Bundle archives: deterministic packing, round trips, and hostile archives rejected.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use template::{inspect, pack_dir, unpack, ArchiveError, Bundle, Limits, TemplateError};

use crate::support::{assert_contains, full, minimal, set};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn demo_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/templates/order-delivered"
    ))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One hand-made tar entry; the name is written into the header as raw bytes, so anything goes.
struct Raw<'a> {
    name: &'a [u8],
    kind: u8,
    data: &'a [u8],
    link: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        kind: b'0',
        data,
        link: b"",
    }
}

fn dir(name: &str) -> Raw<'_> {
    Raw {
        name: name.as_bytes(),
        kind: b'5',
        data: b"",
        link: b"",
    }
}

/// A GNU header block for `name` (at most 100 bytes), `kind` and `size`.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().expect("gnu header");
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    header
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// A tar of `entries` with the end-of-archive blocks.
fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let h = header(e.name, e.kind, e.data.len() as u64, e.link);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn minimal_json() -> Vec<u8> {
    serde_json::to_vec_pretty(&minimal()).expect("serialize")
}

fn full_json() -> Vec<u8> {
    serde_json::to_vec_pretty(&full()).expect("serialize")
}

fn inspect_err(bytes: &[u8], limits: &Limits) -> ArchiveError {
    match inspect(bytes, limits) {
        Ok(info) => panic!("expected an error, got {:?}", info.files),
        Err(e) => e,
    }
}

/// Inspects a tar made of `template.json` (minimal) followed by `entries`; returns the message.
fn bad_entries(entries: Vec<Raw<'_>>) -> String {
    let json = minimal_json();
    let mut all = vec![file("template.json", &json)];
    all.extend(entries);
    inspect_err(&raw_tar(&all), &Limits::default()).to_string()
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

#[test]
fn demo_bundle_packs_deterministically() {
    let a = pack_dir(&demo_dir()).expect("pack demo");
    let b = pack_dir(&demo_dir()).expect("pack demo again");
    assert_eq!(a, b);

    // A copy written now (new mtimes, different folder, an extra unnamed file) packs the same.
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("copy");
    copy_tree(&demo_dir(), &copy);
    std::fs::write(copy.join("media/unused.txt"), b"not named").expect("write");
    assert_eq!(pack_dir(&copy).expect("pack copy"), a);

    // template.json first, then the media sorted, all with zeroed metadata.
    let mut archive = tar::Archive::new(a.as_slice());
    let mut names = Vec::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let h = entry.header();
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mtime().expect("mtime"), 0);
        assert_eq!(h.uid().expect("uid"), 0);
        assert_eq!(h.gid().expect("gid"), 0);
        assert_eq!(h.mode().expect("mode"), 0o644);
        names.push(String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8"));
    }
    assert_eq!(names[0], "template.json");
    let mut sorted = names[1..].to_vec();
    sorted.sort();
    assert_eq!(names[1..], sorted[..]);
    assert!(!names
        .iter()
        .any(|n| n.contains("README") || n.contains("unused")));
}

#[test]
fn demo_bundle_inspects_and_unpacks() {
    let bytes = pack_dir(&demo_dir()).expect("pack demo");
    let info = inspect(&bytes, &Limits::default()).expect("inspect demo");
    assert_eq!(info.digest, hex_sha256(&bytes));
    assert_eq!(info.digest.len(), 64);
    assert_eq!(info.manifest.name, "order-delivered");
    let original_json = std::fs::read(demo_dir().join("template.json")).expect("read");
    assert_eq!(info.manifest_json, original_json);

    let media: Vec<&str> = info.manifest.media_files().into_iter().collect();
    assert!(media.contains(&"media/background.mp4"));
    assert!(media.contains(&"media/mouths.png"));
    let names: Vec<&str> = info.files.iter().map(|(p, _)| p.as_str()).collect();
    let mut expected = media.clone();
    expected.push("template.json");
    expected.sort_unstable();
    assert_eq!(names, expected);
    for (path, size) in &info.files {
        let on_disk = std::fs::metadata(demo_dir().join(path)).expect("stat");
        assert_eq!(*size, on_disk.len(), "size of {path}");
    }
    let total: u64 = info.files.iter().map(|(_, s)| s).sum();
    assert_eq!(info.unpacked_bytes, total);

    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("deep/er/bundle");
    let unpacked = unpack(&bytes, &dest, &Limits::default()).expect("unpack demo");
    assert_eq!(unpacked, info);
    let bundle = Bundle::load(&dest).expect("unpacked bundle loads");
    assert_eq!(bundle.manifest, info.manifest);
    for (path, _) in &info.files {
        let original = std::fs::read(demo_dir().join(path)).expect("read original");
        let copy = std::fs::read(dest.join(path)).expect("read unpacked");
        assert!(original == copy, "{path} differs after unpacking");
    }
    assert!(!dest.join("README.md").exists());
    // Only the destination is left next to it: no temporary folder.
    assert_eq!(listing(dest.parent().expect("parent")), ["bundle"]);
}

#[test]
fn gzip_archives_inspect_and_unpack() {
    let tar = pack_dir(&demo_dir()).expect("pack demo");
    let plain = inspect(&tar, &Limits::default()).expect("inspect tar");
    let gz = gzip(&tar);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let info = inspect(&gz, &Limits::default()).expect("inspect gzip");
    assert_eq!(info.digest, hex_sha256(&gz));
    assert_ne!(info.digest, plain.digest);
    assert_eq!(info.files, plain.files);
    assert_eq!(info.manifest, plain.manifest);

    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("bundle");
    unpack(&gz, &dest, &Limits::default()).expect("unpack gzip");
    Bundle::load(&dest).expect("unpacked bundle loads");
}

#[test]
fn unnamed_entries_folders_dot_paths_and_pax_globals_are_allowed() {
    let json = minimal_json();
    let bytes = raw_tar(&[
        Raw {
            name: b"/tmp/GlobalHead.1.1",
            kind: b'g',
            data: b"23 comment=abcdef0123\n",
            link: b"",
        },
        dir("./"),
        file("./template.json", &json),
        dir("notes/"),
        file("notes/readme.txt", b"hello"),
        file("extra/deep/file.bin", b"12345678"),
    ]);
    let info = inspect(&bytes, &Limits::default()).expect("inspect");
    assert_eq!(
        info.files,
        [
            ("extra/deep/file.bin".to_owned(), 8),
            ("notes/readme.txt".to_owned(), 5),
            ("template.json".to_owned(), json.len() as u64),
        ]
    );
    assert_eq!(info.unpacked_bytes, 13 + json.len() as u64);

    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("b");
    unpack(&bytes, &dest, &Limits::default()).expect("unpack");
    assert_eq!(
        std::fs::read(dest.join("notes/readme.txt")).expect("read"),
        b"hello"
    );
    assert_eq!(
        std::fs::read(dest.join("extra/deep/file.bin")).expect("read"),
        b"12345678"
    );
    Bundle::load(&dest).expect("loads");
}

#[test]
fn escaping_and_absolute_paths_are_rejected() {
    let message = bad_entries(vec![file("../evil", b"x")]);
    assert_eq!(message, "archive entry `../evil` escapes the bundle folder");
    let message = bad_entries(vec![file("media/../../evil", b"x")]);
    assert_eq!(
        message,
        "archive entry `media/../../evil` escapes the bundle folder"
    );
    let message = bad_entries(vec![dir("../up/")]);
    assert_contains(&message, &["`../up/`", "escapes the bundle folder"]);

    let message = bad_entries(vec![file("/etc/x", b"x")]);
    assert_contains(&message, &["archive entry `/etc/x`", "absolute path"]);
    let message = bad_entries(vec![file("C:/x", b"x")]);
    assert_contains(&message, &["`C:/x`", "absolute path"]);

    // Even as the first entry, before any template.json.
    let err = inspect_err(&raw_tar(&[file("../evil", b"x")]), &Limits::default());
    assert!(matches!(err, ArchiveError::Escapes { ref path } if path == "../evil"));
}

#[test]
fn unusable_paths_are_rejected() {
    let message = bad_entries(vec![file("media\\evil.png", b"x")]);
    assert_contains(&message, &["`media\\evil.png`", "backslash"]);
    let message = bad_entries(vec![file("media//a.png", b"x")]);
    assert_contains(&message, &["`media//a.png`", "empty segment"]);
    let message = bad_entries(vec![file("a\x07b", b"x")]);
    assert_contains(&message, &["control character"]);
    let message = bad_entries(vec![Raw {
        name: b"bad\xff\xfe",
        kind: b'0',
        data: b"x",
        link: b"",
    }]);
    assert_contains(&message, &["not UTF-8"]);
    let message = bad_entries(vec![file("folder/", b"x")]);
    assert_contains(&message, &["`folder/`", "regular file needs a file name"]);

    // A NUL inside a GNU long name (the header name field cannot hold one).
    let long = b"media/a\0b.png";
    let message = bad_entries(vec![
        Raw {
            name: b"././@LongLink",
            kind: b'L',
            data: long,
            link: b"",
        },
        file("placeholder", b"x"),
    ]);
    assert_contains(&message, &["`media/a\\u{0}b.png`", "NUL"]);
}

#[test]
fn long_paths_through_gnu_long_names_work() {
    let json = minimal_json();
    let name = format!("{}/file.bin", "d".repeat(150));
    let bytes = raw_tar(&[
        file("template.json", &json),
        Raw {
            name: b"././@LongLink",
            kind: b'L',
            data: name.as_bytes(),
            link: b"",
        },
        file("placeholder", b"data"),
    ]);
    let info = inspect(&bytes, &Limits::default()).expect("inspect");
    assert!(info.files.contains(&(name, 4)), "{:?}", info.files);
}

#[test]
fn links_devices_and_fifos_are_rejected() {
    let symlink = Raw {
        name: b"media/logo.png",
        kind: b'2',
        data: b"",
        link: b"/etc/passwd",
    };
    let message = bad_entries(vec![symlink]);
    assert_eq!(
        message,
        "archive entry `media/logo.png` is a symbolic link (to `/etc/passwd`); only regular files and folders are allowed"
    );

    let hardlink = Raw {
        name: b"copy.json",
        kind: b'1',
        data: b"",
        link: b"template.json",
    };
    let message = bad_entries(vec![hardlink]);
    assert_contains(&message, &["`copy.json`", "hard link", "`template.json`"]);

    for (kind, what) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
        (b'7', "contiguous file"),
    ] {
        let message = bad_entries(vec![Raw {
            name: b"dev",
            kind,
            data: b"",
            link: b"",
        }]);
        assert_contains(&message, &["archive entry `dev` is a ", what]);
    }
    let message = bad_entries(vec![Raw {
        name: b"odd",
        kind: b'Z',
        data: b"",
        link: b"",
    }]);
    assert_contains(&message, &["`odd`", "only regular files and folders"]);
}

#[test]
fn duplicates_and_file_folder_clashes_are_rejected() {
    let message = bad_entries(vec![file("template.json", b"{}")]);
    assert_eq!(message, "archive holds `template.json` more than once");
    let message = bad_entries(vec![file("./template.json", b"{}")]);
    assert_eq!(message, "archive holds `template.json` more than once");
    let message = bad_entries(vec![file("a.png", b"1"), file("a.png", b"2")]);
    assert_eq!(message, "archive holds `a.png` more than once");
    let message = bad_entries(vec![dir("media/"), dir("media")]);
    assert_eq!(message, "archive holds `media` more than once");

    let message = bad_entries(vec![file("media", b"1"), file("media/a.png", b"2")]);
    assert_contains(&message, &["`media/a.png`", "`media`", "is a file"]);
    let message = bad_entries(vec![file("media/a.png", b"2"), file("media", b"1")]);
    assert_contains(&message, &["`media/a.png`", "`media`", "is a file"]);
    // A folder entry after files inside it is fine.
    let json = minimal_json();
    let ok = raw_tar(&[
        file("template.json", &json),
        file("media/a.png", b"2"),
        dir("media/"),
    ]);
    inspect(&ok, &Limits::default()).expect("folder after its files");
}

#[test]
fn limits_are_enforced() {
    let json = minimal_json();
    let three = raw_tar(&[
        file("template.json", &json),
        file("a", b"1"),
        file("b", b"2"),
    ]);
    let limits = Limits {
        max_files: 2,
        ..Limits::default()
    };
    let err = inspect_err(&three, &limits);
    assert_eq!(
        err.to_string(),
        "archive holds more than 2 files (folders included)"
    );
    inspect(
        &three,
        &Limits {
            max_files: 3,
            ..limits
        },
    )
    .expect("three files allowed");

    let big = vec![7u8; 2048];
    let bytes = raw_tar(&[file("template.json", &json), file("media/big.bin", &big)]);
    let limits = Limits {
        max_file_bytes: KIB,
        ..Limits::default()
    };
    let message = inspect_err(&bytes, &limits).to_string();
    assert_eq!(
        message,
        "entry `media/big.bin` is 2 KiB, over the 1 KiB limit"
    );

    let limits = Limits {
        max_unpacked_bytes: 2048 + json.len() as u64 - 1,
        ..Limits::default()
    };
    let message = inspect_err(&bytes, &limits).to_string();
    assert_contains(&message, &["`media/big.bin`", "unpacked-size limit"]);
    let limits = Limits {
        max_unpacked_bytes: 2048 + json.len() as u64,
        ..Limits::default()
    };
    inspect(&bytes, &limits).expect("exactly at the limit");

    let limits = Limits {
        max_archive_bytes: 1000,
        ..Limits::default()
    };
    let message = inspect_err(&bytes, &limits).to_string();
    assert_contains(&message, &["archive is ", "over the 1000 bytes limit"]);
}

#[test]
fn gzip_bombs_stop_early() {
    let limits = Limits {
        max_unpacked_bytes: MIB,
        ..Limits::default()
    };
    let zeros = vec![0u8; 50 * 1024 * 1024];

    // A file declaring 50 MB: refused from its header, before its data is inflated.
    let mut tar = Vec::new();
    let json = minimal_json();
    tar.extend_from_slice(header(b"template.json", b'0', json.len() as u64, b"").as_bytes());
    tar.extend_from_slice(&json);
    pad(&mut tar);
    tar.extend_from_slice(header(b"bomb.bin", b'0', zeros.len() as u64, b"").as_bytes());
    tar.extend_from_slice(&zeros);
    tar.extend_from_slice(&[0; 1024]);
    let gz = gzip(&tar);
    assert!(gz.len() < 200 * 1024, "bomb is {} bytes", gz.len());
    let message = inspect_err(&gz, &limits).to_string();
    assert_contains(&message, &["`bomb.bin`", "1 MiB"]);

    // A GNU long name the tar reader would buffer whole, inflating to 5 GB: the inflated
    // stream itself is cut off at the limit (plus header allowance).
    let declared = 100 * zeros.len() as u64;
    let mut first = Vec::new();
    first.extend_from_slice(header(b"././@LongLink", b'L', declared, b"").as_bytes());
    first.extend_from_slice(&zeros);
    let mut bomb = gzip(&first);
    let member = gzip(&zeros);
    for _ in 1..100 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 10 * 1024 * 1024);
    let start = std::time::Instant::now();
    let err = inspect_err(&bomb, &limits);
    let elapsed = start.elapsed();
    match &err {
        ArchiveError::InflatesTooLarge { limit, .. } => assert_eq!(*limit, MIB),
        other => panic!("expected InflatesTooLarge, got {other}"),
    }
    assert_contains(&err.to_string(), &["1 MiB unpacked-size limit"]);
    // Inflating 5 GB takes seconds; stopping at ~9 MB takes milliseconds.
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");

    // Plain zeros are an empty tar: read one block, then stop.
    let err = inspect_err(&gzip(&zeros), &limits);
    assert!(matches!(err, ArchiveError::NoManifest), "{err}");
}

#[test]
fn manifest_must_be_at_the_root() {
    let err = inspect_err(&raw_tar(&[file("logo.png", b"x")]), &Limits::default());
    assert_eq!(err.to_string(), "archive has no template.json at its root");
    let json = minimal_json();
    let nested = raw_tar(&[file("sub/template.json", &json)]);
    assert!(matches!(
        inspect_err(&nested, &Limits::default()),
        ArchiveError::NoManifest
    ));
    let as_dir = raw_tar(&[dir("template.json/")]);
    assert!(matches!(
        inspect_err(&as_dir, &Limits::default()),
        ArchiveError::NoManifest
    ));
    let empty = raw_tar(&[]);
    assert!(matches!(
        inspect_err(&empty, &Limits::default()),
        ArchiveError::NoManifest
    ));
}

#[test]
fn missing_media_are_all_listed() {
    // full() names media/bg.mp4, logo.png and music.mp3.
    let json = full_json();
    let bytes = raw_tar(&[file("template.json", &json), file("logo.png", b"png")]);
    let err = inspect_err(&bytes, &Limits::default());
    assert_eq!(
        err.to_string(),
        "template.json names media files missing from the archive: media/bg.mp4, music.mp3"
    );
    match err {
        ArchiveError::MissingMedia(missing) => assert_eq!(missing, ["media/bg.mp4", "music.mp3"]),
        other => panic!("expected MissingMedia, got {other}"),
    }

    // A folder of that name does not count.
    let bytes = raw_tar(&[
        file("template.json", &json),
        file("logo.png", b"png"),
        file("music.mp3", b"mp3"),
        dir("media/bg.mp4/"),
    ]);
    let err = inspect_err(&bytes, &Limits::default());
    assert!(matches!(err, ArchiveError::MissingMedia(ref m) if m == &["media/bg.mp4"]));

    let complete = raw_tar(&[
        file("template.json", &json),
        file("logo.png", b"png"),
        file("music.mp3", b"mp3"),
        file("media/bg.mp4", b"mp4"),
    ]);
    inspect(&complete, &Limits::default()).expect("all media present");
}

#[test]
fn invalid_manifests_surface_template_errors() {
    let bytes = raw_tar(&[file("template.json", b"{\n  \"name\": ")]);
    let err = inspect_err(&bytes, &Limits::default());
    match &err {
        ArchiveError::Manifest(TemplateError::Json { line, .. }) => assert_eq!(*line, 2),
        other => panic!("expected a JSON error, got {other}"),
    }
    assert_contains(&err.to_string(), &["template.json line 2"]);

    let mut doc = minimal();
    set(&mut doc, "/width", serde_json::json!(0));
    let json = serde_json::to_vec(&doc).expect("serialize");
    let err = inspect_err(
        &raw_tar(&[file("template.json", &json)]),
        &Limits::default(),
    );
    match &err {
        ArchiveError::Manifest(inner @ TemplateError::Invalid(problems)) => {
            assert!(problems.iter().any(|p| p.path == "width"), "{problems:?}");
            assert_eq!(err.to_string(), inner.to_string());
        }
        other => panic!("expected Invalid, got {other}"),
    }

    // A media path escaping the bundle is a manifest problem, not a missing file.
    let mut doc = full();
    set(&mut doc, "/layers/1/src", serde_json::json!("../logo.png"));
    let json = serde_json::to_vec(&doc).expect("serialize");
    let err = inspect_err(
        &raw_tar(&[file("template.json", &json)]),
        &Limits::default(),
    );
    assert!(
        matches!(err, ArchiveError::Manifest(TemplateError::Invalid(_))),
        "{err}"
    );
}

#[test]
fn garbage_is_not_a_tar_archive() {
    // Deterministic pseudo-random bytes (xorshift), not starting with the gzip magic.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = Vec::new();
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push((state >> 24) as u8);
    }
    noise[0] = b'Q';
    for len in [1, 100, 511, 512, 4096] {
        let err = inspect_err(&noise[..len], &Limits::default());
        assert!(matches!(err, ArchiveError::NotTar { .. }), "{len}: {err}");
        assert_contains(&err.to_string(), &["not a tar archive"]);
    }
    let err = inspect_err(b"", &Limits::default());
    assert!(matches!(err, ArchiveError::NotTar { .. }), "{err}");

    // Gzip magic followed by garbage.
    let mut fake_gz = vec![0x1f, 0x8b];
    fake_gz.extend_from_slice(&noise[..200]);
    let err = inspect_err(&fake_gz, &Limits::default());
    assert!(matches!(err, ArchiveError::NotTar { .. }), "{err}");
}

#[test]
fn damaged_archives_never_panic() {
    let json = full_json();
    let good = raw_tar(&[
        file("template.json", &json),
        file("logo.png", b"png"),
        file("music.mp3", b"mp3"),
        file("media/bg.mp4", b"mp4"),
    ]);
    inspect(&good, &Limits::default()).expect("good archive");

    // Truncated anywhere.
    for len in (0..good.len()).step_by(97) {
        let _ = inspect(&good[..len], &Limits::default());
    }
    let cut = &good[..512 + 100];
    let err = inspect_err(cut, &Limits::default());
    assert!(
        matches!(err, ArchiveError::Truncated { ref path, .. } if path == "template.json"),
        "{err}"
    );

    // Every byte of every header flipped, and some data bytes.
    for pos in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[pos] ^= 0xa5;
        let _ = inspect(&bad, &Limits::default());
    }
    // The gzip form damaged.
    let gz = gzip(&good);
    for pos in 0..gz.len() {
        let mut bad = gz.clone();
        bad[pos] ^= 0x5a;
        let _ = inspect(&bad, &Limits::default());
    }
    for len in 0..gz.len() {
        let _ = inspect(&gz[..len], &Limits::default());
    }
}

#[test]
fn unpack_never_overwrites() {
    let bytes = pack_dir(&demo_dir()).expect("pack demo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("existing");
    std::fs::create_dir(&dest).expect("create dest");
    std::fs::write(dest.join("keep.txt"), b"keep me").expect("write");

    let err = unpack(&bytes, &dest, &Limits::default()).expect_err("dest exists");
    assert!(matches!(err, ArchiveError::DestinationExists { ref path } if path == &dest));
    assert_contains(
        &err.to_string(),
        &[&dest.display().to_string(), "already exists"],
    );
    assert_eq!(listing(&dest), ["keep.txt"]);
    assert_eq!(
        std::fs::read(dest.join("keep.txt")).expect("read"),
        b"keep me"
    );
    assert_eq!(listing(tmp.path()), ["existing"]);

    // An empty folder is not replaced either, nor is a file.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("create");
    assert!(matches!(
        unpack(&bytes, &empty, &Limits::default()),
        Err(ArchiveError::DestinationExists { .. })
    ));
    assert_eq!(listing(&empty), Vec::<String>::new());
    let file_dest = tmp.path().join("file");
    std::fs::write(&file_dest, b"f").expect("write");
    assert!(matches!(
        unpack(&bytes, &file_dest, &Limits::default()),
        Err(ArchiveError::DestinationExists { .. })
    ));
}

#[test]
fn failed_unpack_leaves_nothing_behind() {
    let json = full_json();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("bundle");

    // Files are written before the missing media are known; all are removed.
    let missing = raw_tar(&[file("template.json", &json), file("logo.png", b"png")]);
    let err = unpack(&missing, &dest, &Limits::default()).expect_err("missing media");
    assert!(matches!(err, ArchiveError::MissingMedia(_)), "{err}");
    assert_eq!(listing(tmp.path()), Vec::<String>::new());

    let evil = raw_tar(&[file("template.json", &json), file("../evil", b"x")]);
    let err = unpack(&evil, &dest, &Limits::default()).expect_err("escape");
    assert!(matches!(err, ArchiveError::Escapes { .. }), "{err}");
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
    assert!(!tmp.path().parent().expect("parent").join("evil").exists());
}

#[test]
fn pack_dir_refuses_broken_bundles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = pack_dir(tmp.path()).expect_err("no template.json");
    assert!(
        matches!(err, ArchiveError::Manifest(TemplateError::Read { .. })),
        "{err}"
    );

    std::fs::write(tmp.path().join("template.json"), full_json()).expect("write");
    let err = pack_dir(tmp.path()).expect_err("media missing on disk");
    match &err {
        ArchiveError::Manifest(TemplateError::Invalid(problems)) => {
            assert!(
                problems.iter().any(|p| p.message.contains("not found")),
                "{problems:?}"
            )
        }
        other => panic!("expected Invalid, got {other}"),
    }

    for media in ["media/bg.mp4", "logo.png", "music.mp3"] {
        let path = tmp.path().join(media);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, media.as_bytes()).expect("write");
    }
    let bytes = pack_dir(tmp.path()).expect("complete bundle packs");
    let info = inspect(&bytes, &Limits::default()).expect("inspect");
    let names: Vec<&str> = info.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["logo.png", "media/bg.mp4", "music.mp3", "template.json"]
    );
    let mut data = Vec::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut entries = archive.entries().expect("entries");
    entries
        .next()
        .expect("first entry")
        .expect("entry")
        .read_to_end(&mut data)
        .expect("read");
    assert_eq!(data, full_json());
}
