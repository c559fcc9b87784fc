//! template: the template bundle format, pure data.
//!
//! A bundle is a folder with `template.json` ([`Manifest`]) and its media. This crate parses and
//! validates it, sanitizes and resolves recipient tokens, and resolves the timeline: where each
//! layer is and how opaque it is at any time. No GPU, no FFmpeg, no async.

mod manifest;

pub use manifest::*;
