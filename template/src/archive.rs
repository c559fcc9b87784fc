//! Template bundles as tar archives: [`pack_dir`] turns a bundle folder into a deterministic tar
//! for upload, [`inspect`] checks an uploaded archive (plain or gzip-compressed tar) without
//! touching the disk, and [`unpack`] checks it and writes it to a folder on a worker.
//!
//! Archives are untrusted input. Every entry path must stay inside the bundle folder, only regular
//! files and folders are accepted, and [`Limits`] bound the archive size, the number of entries,
//! each file's size and the total unpacked size; a gzip stream is capped while it is inflated, so
//! a compression bomb is stopped after a bounded amount of work.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::bundle::MANIFEST_FILE;
use crate::error::TemplateError;
use crate::manifest::Manifest;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Bytes of tar data (headers, padding, long-name and PAX records) allowed per entry on top of
/// the files' own bytes when a stream is inflated.
const ENTRY_OVERHEAD: u64 = 8 * KIB;

/// Upper bounds on what an archive may hold; see [`inspect`] and [`unpack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the archive bytes as received (compressed, if gzip). Default 256 MiB.
    pub max_archive_bytes: u64,
    /// Entries in the archive, regular files and folders together. Default 1000.
    pub max_files: usize,
    /// Size of any one file. Default 256 MiB.
    pub max_file_bytes: u64,
    /// Sum of the sizes of all files. A gzip stream may inflate to this plus a few KiB of tar
    /// headers per entry before it is cut off. Default 1 GiB.
    pub max_unpacked_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: 256 * MIB,
            max_files: 1000,
            max_file_bytes: 256 * MIB,
            max_unpacked_bytes: GIB,
        }
    }
}

impl Limits {
    /// How many bytes of tar data an archive may inflate to under these limits.
    fn max_stream_bytes(&self) -> u64 {
        let entries = u64::try_from(self.max_files)
            .unwrap_or(u64::MAX)
            .saturating_add(4);
        self.max_unpacked_bytes
            .saturating_add(entries.saturating_mul(ENTRY_OVERHEAD))
    }
}

/// What [`inspect`] and [`unpack`] found in a valid archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveInfo {
    /// Lowercase hex SHA-256 of the archive bytes as given (compressed, if gzip).
    pub digest: String,
    /// The parsed, validated `template.json`.
    pub manifest: Manifest,
    /// The bytes of `template.json` as stored in the archive.
    pub manifest_json: Vec<u8>,
    /// Every regular file in the archive (`template.json` included) with its size in bytes,
    /// sorted by path. Paths are relative, `/`-separated, without `.` segments.
    pub files: Vec<(String, u64)>,
    /// Sum of the sizes in [`ArchiveInfo::files`].
    pub unpacked_bytes: u64,
}

/// Why a bundle could not be packed, or an archive could not be inspected or unpacked. Messages
/// name the offending entry and the limit it breaks.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The bytes are neither a tar archive nor a gzip-compressed one (or its first header is
    /// broken).
    #[error("not a tar archive (plain or gzip-compressed): {detail}")]
    NotTar {
        /// What the reader said.
        detail: String,
    },
    /// The archive started well but is broken or truncated further on.
    #[error("corrupt archive after entry `{after}`: {detail}")]
    Corrupt {
        /// The last entry read successfully.
        after: String,
        /// What is wrong.
        detail: String,
    },
    /// An entry's data ends before the size its header gives.
    #[error("archive entry `{path}` is truncated: {read} of its {size} bytes are there")]
    Truncated {
        /// The entry.
        path: String,
        /// Bytes present.
        read: u64,
        /// Bytes the header promises.
        size: u64,
    },
    /// The archive bytes are over [`Limits::max_archive_bytes`].
    #[error("archive is {}, over the {} limit", human(*size), human(*limit))]
    ArchiveTooLarge {
        /// Size of the archive.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The (gzip) stream inflates to more tar data than [`Limits::max_unpacked_bytes`] allows;
    /// reading stopped there.
    #[error(
        "archive inflates to more than {} of tar data, more than the {} unpacked-size limit allows",
        human(*stream_limit),
        human(*limit)
    )]
    InflatesTooLarge {
        /// Tar bytes read before stopping.
        stream_limit: u64,
        /// [`Limits::max_unpacked_bytes`].
        limit: u64,
    },
    /// More entries than [`Limits::max_files`].
    #[error("archive holds more than {limit} files (folders included)")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// A file over [`Limits::max_file_bytes`].
    #[error("entry `{path}` is {}, over the {} limit", human(*size), human(*limit))]
    FileTooLarge {
        /// The entry.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The files add up to more than [`Limits::max_unpacked_bytes`].
    #[error(
        "entry `{path}` ({}) takes the archive's files past the {} unpacked-size limit",
        human(*size),
        human(*limit)
    )]
    UnpackedTooLarge {
        /// The entry that crossed the limit.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry path with a `..` segment.
    #[error("archive entry `{path}` escapes the bundle folder")]
    Escapes {
        /// The entry path as stored.
        path: String,
    },
    /// An absolute entry path.
    #[error(
        "archive entry `{path}` is an absolute path; entries must be relative to the bundle folder"
    )]
    Absolute {
        /// The entry path as stored.
        path: String,
    },
    /// An entry path that cannot be used (backslash, NUL or control character, empty segment,
    /// not UTF-8).
    #[error("archive entry `{path}` has an unusable path: {reason}")]
    BadPath {
        /// The entry path as stored (control characters escaped).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A symbolic or hard link.
    #[error(
        "archive entry `{path}` is a {} (to `{target}`); only regular files and folders are allowed",
        if *hard { "hard link" } else { "symbolic link" }
    )]
    Link {
        /// The entry path.
        path: String,
        /// Where it points.
        target: String,
        /// Whether it is a hard link.
        hard: bool,
    },
    /// A device, fifo, sparse file or other entry that is not a regular file or folder.
    #[error("archive entry `{path}` is a {kind}; only regular files and folders are allowed")]
    Unsupported {
        /// The entry path.
        path: String,
        /// What kind of entry it is.
        kind: String,
    },
    /// The same path twice.
    #[error("archive holds `{path}` more than once")]
    Duplicate {
        /// The repeated path.
        path: String,
    },
    /// A path used both as a file and as a folder.
    #[error("archive entry `{path}` needs `{file}` to be a folder, but it is a file")]
    Conflict {
        /// The entry lying under `file`.
        path: String,
        /// The file used as a folder.
        file: String,
    },
    /// No regular file `template.json` at the archive root.
    #[error("archive has no {MANIFEST_FILE} at its root")]
    NoManifest,
    /// `template.json` names media files the archive lacks.
    #[error("{MANIFEST_FILE} names media files missing from the archive: {}", .0.join(", "))]
    MissingMedia(Vec<String>),
    /// `template.json` does not parse or breaks the format's rules (or, for [`pack_dir`], the
    /// bundle folder does not load).
    #[error(transparent)]
    Manifest(#[from] TemplateError),
    /// A media path named by the manifest cannot be stored as an archive entry.
    #[error("media path `{path}` cannot be stored in an archive: {reason}")]
    Unarchivable {
        /// The path as named in `template.json`.
        path: String,
        /// Why not.
        reason: String,
    },
    /// [`unpack`] was given a destination that already exists.
    #[error("cannot unpack into {}: it already exists", path.display())]
    DestinationExists {
        /// The destination folder.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

/// `256 MiB`, or `1.5 MiB (1572864 bytes)` where the size is not a whole number of units.
fn human(bytes: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (unit, name) in units {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                // Display only; precision loss is fine.
                #[allow(clippy::cast_precision_loss)]
                let value = bytes as f64 / unit as f64;
                format!("{value:.1} {name} ({bytes} bytes)")
            };
        }
    }
    if bytes == 1 {
        "1 byte".to_owned()
    } else {
        format!("{bytes} bytes")
    }
}

/// An entry path for messages: lossy UTF-8 with control characters escaped.
fn shown(raw: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(raw).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What is wrong with an entry path.
enum PathIssue {
    Absolute,
    Escapes,
    Bad(&'static str),
}

/// A checked entry path: relative, `/`-separated, no `.` or `..` or empty segments; empty for
/// the bundle folder itself. `dir_slash` tells whether it was written with a trailing `/`.
struct CleanPath {
    path: String,
    dir_slash: bool,
}

/// Checks and normalizes an entry path (`.` segments are dropped, so `./template.json` is
/// `template.json`).
fn clean_path(raw: &[u8]) -> Result<CleanPath, PathIssue> {
    let text = std::str::from_utf8(raw).map_err(|_| PathIssue::Bad("it is not UTF-8"))?;
    if text.is_empty() {
        return Err(PathIssue::Bad("it is empty"));
    }
    if text.contains('\0') {
        return Err(PathIssue::Bad("it holds a NUL byte"));
    }
    if text.chars().any(char::is_control) {
        return Err(PathIssue::Bad("it holds a control character"));
    }
    if text.contains('\\') {
        return Err(PathIssue::Bad(
            "it holds a backslash; separate folders with `/`",
        ));
    }
    if text.starts_with('/') {
        return Err(PathIssue::Absolute);
    }
    let bytes = text.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathIssue::Absolute);
    }
    let (body, dir_slash) = match text.strip_suffix('/') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let mut segments = Vec::new();
    for segment in body.split('/') {
        match segment {
            "" => return Err(PathIssue::Bad("it has an empty segment (`//`)")),
            "." => {}
            ".." => return Err(PathIssue::Escapes),
            other => segments.push(other),
        }
    }
    Ok(CleanPath {
        path: segments.join("/"),
        dir_slash,
    })
}

fn path_error(raw: &[u8], issue: PathIssue) -> ArchiveError {
    let path = shown(raw);
    match issue {
        PathIssue::Absolute => ArchiveError::Absolute { path },
        PathIssue::Escapes => ArchiveError::Escapes { path },
        PathIssue::Bad(reason) => ArchiveError::BadPath {
            path,
            reason: reason.to_owned(),
        },
    }
}

/// The archive entry name for a media path named by a manifest, if it can be one.
fn media_entry_name(src: &str) -> Result<String, String> {
    match clean_path(src.as_bytes()) {
        Ok(clean) if clean.dir_slash => Err("it ends in `/`".to_owned()),
        Ok(clean) if clean.path.is_empty() => Err("it names the bundle folder".to_owned()),
        Ok(clean) => Ok(clean.path),
        Err(PathIssue::Absolute) => Err("it is an absolute path".to_owned()),
        Err(PathIssue::Escapes) => Err("it escapes the bundle folder".to_owned()),
        Err(PathIssue::Bad(reason)) => Err(reason.to_owned()),
    }
}

/// Packs the bundle folder `dir` into an uncompressed tar, after loading and validating it as
/// [`Bundle::load`](crate::Bundle::load) does.
///
/// The archive holds `template.json` first, then exactly the files [`Manifest::media_files`]
/// names, sorted by path; nothing else in the folder is included. Entries carry mtime 0, uid and
/// gid 0 and mode 0644, so the same folder contents always give the same bytes. No limits are
/// applied here; the receiver's [`Limits`] decide whether the archive is accepted.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, ArchiveError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_json = fs::read(&manifest_path).map_err(|source| TemplateError::Read {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest = Manifest::from_json(&manifest_json)?;
    manifest.validate(Some(dir))?;

    let mut media = BTreeSet::new();
    for src in manifest.media_files() {
        let name = media_entry_name(src).map_err(|reason| ArchiveError::Unarchivable {
            path: src.to_owned(),
            reason,
        })?;
        if name != MANIFEST_FILE {
            media.insert(name);
        }
    }

    let mut builder = tar::Builder::new(Vec::new());
    append_file(&mut builder, MANIFEST_FILE, &manifest_json)?;
    for name in &media {
        let path = dir.join(name);
        let data = fs::read(&path).map_err(io_err(format!("cannot read {}", path.display())))?;
        append_file(&mut builder, name, &data)?;
    }
    builder
        .into_inner()
        .map_err(io_err("cannot finish the archive"))
}

fn append_file(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, name, data)
        .map_err(io_err(format!("cannot add `{name}` to the archive")))
}

/// Checks an archive (plain tar, or gzip-compressed tar) without writing anything: [`Limits`],
/// entry paths and kinds, and `template.json` at its root, which must parse and validate (media
/// existence aside) and whose media files must all be in the archive. Entries the manifest does
/// not name are allowed, and count against the limits.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<ArchiveInfo, ArchiveError> {
    scan(bytes, limits, None)
}

/// Checks an archive as [`inspect`] does and writes its files and folders under `dest`, which
/// must not exist yet; its parent folders are created.
///
/// The files are written to a temporary sibling folder that is renamed to `dest` once the whole
/// archive has been written and checked, so `dest` either appears complete or not at all; the
/// temporary folder is removed on failure.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<ArchiveInfo, ArchiveError> {
    let exists = || dest.symlink_metadata().is_ok();
    if exists() {
        return Err(ArchiveError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let name = dest.file_name().ok_or_else(|| ArchiveError::Io {
        context: format!("cannot unpack into {}", dest.display()),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            "it does not end in a folder name",
        ),
    })?;
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(io_err(format!("cannot create {}", parent.display())))?;
    let staging = Staging::create(parent, &name.to_string_lossy())?;

    let info = scan(bytes, limits, Some(&staging.path))?;

    if exists() {
        return Err(ArchiveError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    fs::rename(&staging.path, dest).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => {
            ArchiveError::DestinationExists {
                path: dest.to_path_buf(),
            }
        }
        _ => ArchiveError::Io {
            context: format!(
                "cannot rename {} to {}",
                staging.path.display(),
                dest.display()
            ),
            source,
        },
    })?;
    staging.keep();
    Ok(info)
}

/// A temporary folder next to the destination, removed when dropped unless kept.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    fn create(parent: &Path, name: &str) -> Result<Staging, ArchiveError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!(".{name}.unpacking-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Staging { path, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(ArchiveError::Io {
                        context: format!("cannot create {}", path.display()),
                        source,
                    })
                }
            }
        }
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A reader that fails once more than `left` bytes have come through, and says so in `tripped`.
struct Capped<R> {
    inner: R,
    left: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.left.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        let n64 = n as u64;
        if n64 > self.left {
            self.tripped.set(true);
            return Err(io::Error::other("archive inflates past the size limit"));
        }
        self.left -= n64;
        Ok(n)
    }
}

/// What a path is known to be while scanning.
enum Seen {
    File,
    Dir,
    /// A folder only implied by the entries under it; holds the first such entry.
    Implied(String),
}

/// Reads the whole archive, checking everything; with `out`, writes entries under that folder.
fn scan(bytes: &[u8], limits: &Limits, out: Option<&Path>) -> Result<ArchiveInfo, ArchiveError> {
    let size = bytes.len() as u64;
    if size > limits.max_archive_bytes {
        return Err(ArchiveError::ArchiveTooLarge {
            size,
            limit: limits.max_archive_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ArchiveError::NotTar {
            detail: "the input is empty".to_owned(),
        });
    }
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let tripped = Rc::new(Cell::new(false));
    let stream_limit = limits.max_stream_bytes();
    let capped = Capped {
        inner: stream,
        left: stream_limit,
        tripped: Rc::clone(&tripped),
    };
    let inflated = || ArchiveError::InflatesTooLarge {
        stream_limit,
        limit: limits.max_unpacked_bytes,
    };
    let mut last: Option<String> = None;
    let read_error = |last: &Option<String>, err: io::Error| -> ArchiveError {
        if tripped.get() {
            return inflated();
        }
        let detail = err.to_string();
        match last {
            None => ArchiveError::NotTar { detail },
            Some(after) => ArchiveError::Corrupt {
                after: after.clone(),
                detail,
            },
        }
    };

    let mut archive = tar::Archive::new(capped);
    let entries = archive.entries().map_err(|e| read_error(&last, e))?;
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    let mut count = 0usize;
    let mut unpacked = 0u64;
    let mut manifest_json: Option<Vec<u8>> = None;

    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(&last, e))?;
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // PAX global metadata (`git archive` writes one); its name is arbitrary.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let clean = clean_path(&raw).map_err(|issue| path_error(&raw, issue))?;
        let shown_path = shown(&raw);
        let is_dir = match kind {
            EntryType::Regular => false,
            EntryType::Directory => true,
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| shown(&t))
                    .unwrap_or_default();
                return Err(ArchiveError::Link {
                    path: shown_path,
                    target,
                    hard: kind == EntryType::Link,
                });
            }
            other => {
                return Err(ArchiveError::Unsupported {
                    path: shown_path,
                    kind: kind_name(other),
                })
            }
        };
        count += 1;
        if count > limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        if !is_dir && (clean.dir_slash || clean.path.is_empty()) {
            return Err(ArchiveError::BadPath {
                path: shown_path,
                reason: "a regular file needs a file name, not a folder path".to_owned(),
            });
        }
        if clean.path.is_empty() {
            // `./`: the bundle folder itself.
            last = Some(shown_path);
            continue;
        }
        record(&mut seen, &clean.path, is_dir)?;

        if is_dir {
            if let Some(out) = out {
                let dir = out.join(&clean.path);
                fs::create_dir_all(&dir)
                    .map_err(io_err(format!("cannot create {}", dir.display())))?;
            }
            last = Some(shown_path);
            continue;
        }

        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: clean.path,
                size,
                limit: limits.max_file_bytes,
            });
        }
        unpacked = match unpacked.checked_add(size) {
            Some(total) if total <= limits.max_unpacked_bytes => total,
            _ => {
                return Err(ArchiveError::UnpackedTooLarge {
                    path: clean.path,
                    size,
                    limit: limits.max_unpacked_bytes,
                })
            }
        };

        let is_manifest = clean.path == MANIFEST_FILE;
        let read = if is_manifest {
            let mut data = Vec::new();
            let n = entry
                .read_to_end(&mut data)
                .map_err(|e| read_error(&last, e))?;
            if let Some(out) = out {
                let path = out.join(&clean.path);
                let mut file = create_file(&path)?;
                copy(&mut data.as_slice(), &mut file, &path).map_err(|e| match e {
                    CopyError::Read(e) => read_error(&last, e),
                    CopyError::Write(e) => e,
                })?;
            }
            manifest_json = Some(data);
            n as u64
        } else if let Some(out) = out {
            let path = out.join(&clean.path);
            let mut file = create_file(&path)?;
            copy(&mut entry, &mut file, &path).map_err(|e| match e {
                CopyError::Read(e) => read_error(&last, e),
                CopyError::Write(e) => e,
            })?
        } else {
            io::copy(&mut entry, &mut io::sink()).map_err(|e| read_error(&last, e))?
        };
        if read != size {
            return Err(ArchiveError::Truncated {
                path: clean.path,
                read,
                size,
            });
        }
        files.insert(clean.path, size);
        last = Some(shown_path);
    }
    drop(archive);

    let manifest_json = manifest_json.ok_or(ArchiveError::NoManifest)?;
    let manifest = Manifest::from_json(&manifest_json)?;
    manifest.validate(None)?;
    let missing: Vec<String> = manifest
        .media_files()
        .into_iter()
        .filter(|src| match media_entry_name(src) {
            Ok(name) => !files.contains_key(&name),
            Err(_) => true,
        })
        .map(str::to_owned)
        .collect();
    if !missing.is_empty() {
        return Err(ArchiveError::MissingMedia(missing));
    }

    Ok(ArchiveInfo {
        digest: sha256_hex(bytes),
        manifest,
        manifest_json,
        files: files.into_iter().collect(),
        unpacked_bytes: unpacked,
    })
}

/// Notes `path` as a file or folder, rejecting duplicates and paths that use a file as a folder.
fn record(seen: &mut HashMap<String, Seen>, path: &str, is_dir: bool) -> Result<(), ArchiveError> {
    // Ancestors first: none may be a file.
    let mut end = 0;
    while let Some(slash) = path[end..].find('/') {
        let ancestor = &path[..end + slash];
        match seen.get(ancestor) {
            Some(Seen::File) => {
                return Err(ArchiveError::Conflict {
                    path: path.to_owned(),
                    file: ancestor.to_owned(),
                })
            }
            Some(_) => {}
            None => {
                seen.insert(ancestor.to_owned(), Seen::Implied(path.to_owned()));
            }
        }
        end += slash + 1;
    }
    match seen.get(path) {
        Some(Seen::File | Seen::Dir) => {
            return Err(ArchiveError::Duplicate {
                path: path.to_owned(),
            })
        }
        Some(Seen::Implied(child)) if !is_dir => {
            return Err(ArchiveError::Conflict {
                path: child.clone(),
                file: path.to_owned(),
            })
        }
        _ => {}
    }
    seen.insert(path.to_owned(), if is_dir { Seen::Dir } else { Seen::File });
    Ok(())
}

/// Creates a new file (and its parent folders) for an entry.
fn create_file(path: &Path) -> Result<fs::File, ArchiveError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(io_err(format!("cannot create {}", parent.display())))?;
    }
    fs::File::create_new(path).map_err(io_err(format!("cannot create {}", path.display())))
}

enum CopyError {
    Read(io::Error),
    Write(ArchiveError),
}

/// Copies an entry's data into a file, telling read errors (bad archive) from write errors.
fn copy(from: &mut impl Read, to: &mut fs::File, path: &Path) -> Result<u64, CopyError> {
    use std::io::Write as _;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(|source| {
            CopyError::Write(ArchiveError::Io {
                context: format!("cannot write {}", path.display()),
                source,
            })
        })?;
        total += n as u64;
    }
    to.sync_all().map_err(|source| {
        CopyError::Write(ArchiveError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        })
    })?;
    Ok(total)
}

fn kind_name(kind: EntryType) -> String {
    match kind {
        EntryType::Char => "character device".to_owned(),
        EntryType::Block => "block device".to_owned(),
        EntryType::Fifo => "fifo".to_owned(),
        EntryType::Continuous => "contiguous file".to_owned(),
        EntryType::GNUSparse => "sparse file".to_owned(),
        EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
            "stray extension header".to_owned()
        }
        other => format!("entry of type `{}`", shown(&[other.as_byte()])),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
