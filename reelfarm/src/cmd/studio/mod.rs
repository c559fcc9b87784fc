//! `reelfarm studio DIR`: a template studio in the browser. A local HTTP server (axum) serves
//! one page (HTML, JS and CSS embedded in the binary) and a small JSON API over a template
//! folder on disk:
//!
//! - frames of any time, language and sample recipient, rendered by the real renderer at 720p
//!   on a blocking thread and scaled down (`/api/frame`), cached until the folder changes;
//! - the layer boxes of that instant from the resolved timeline (`/api/layers`);
//! - the contact sheet's rows and times (`/api/grid`; its cells are frames);
//! - the problems of the folder (`/api/state`), and a version that moves when a file in the
//!   folder changes (`/api/version`; the folder is polled every half second);
//! - preview MP4 renders in the background with their progress (`/api/preview`), written to a
//!   folder outside the template.
//!
//! A broken template keeps the studio running: its problems are listed, and frame requests
//! answer with a JSON error the page shows.

pub mod grid;
mod problems;
mod server;

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};

use crate::cli::StudioArgs;

/// `reelfarm studio`.
pub fn run(args: StudioArgs) -> Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("{}: no such template folder", args.dir.display()))?;
    if !dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    let out = match &args.out {
        Some(out) => out.clone(),
        None => std::env::temp_dir().join(format!("reelfarm-studio-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("--out {}", out.display()))?;
    if out.starts_with(&dir) {
        bail!(
            "--out {}: inside the template folder; previews are written elsewhere so that they \
             never become part of the template",
            out.display()
        );
    }
    if !is_loopback(&args.listen) {
        eprintln!(
            "warning: --listen {}: the studio is reachable from other machines and has no \
             authentication",
            args.listen
        );
    }
    farm::runtime()?.block_on(server::serve(dir, out, args.listen, !args.no_deep))
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
