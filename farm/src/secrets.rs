//! Secrets of a farm's data folder: the worker join token, the download-link key and the
//! webhook key, each generated once into a private file; and URLs without their passwords,
//! for messages.

use std::path::Path;

use anyhow::{Context, Result};

/// A random secret of `bytes` random bytes, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    coordinator::auth::random_hex(bytes)
}

/// A secret kept in a private file, generated (with `prefix`) the first time; and whether it
/// was generated now.
pub fn secret_file(path: &Path, prefix: &str) -> Result<(String, bool)> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok((t, false));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let secret = format!("{prefix}{}", random_hex(32));
    write_private(path, &secret)?;
    Ok((secret, true))
}

/// Writes `text` to a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The worker join token of a data folder: read from (or generated into) `DATA/join-token`;
/// and whether it was generated now.
pub fn join_token(data: &Path) -> Result<(String, bool)> {
    secret_file(&data.join("join-token"), "rfj_")
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://rf:hunter2@db:5432/rf"),
            "postgres://rf:***@db:5432/rf"
        );
        assert_eq!(
            redact("sqlite:///data/reelfarm.db"),
            "sqlite:///data/reelfarm.db"
        );
    }

    #[test]
    fn secrets_are_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, fresh) = join_token(dir.path()).expect("generate");
        assert!(fresh && first.starts_with("rfj_"));
        let (again, fresh) = join_token(dir.path()).expect("read");
        assert!(!fresh);
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("join-token"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
