//! template: the template bundle format, pure data.
//!
//! A bundle is a folder with `template.json` ([`Manifest`]) and its media. This crate parses and
//! validates it, sanitizes and resolves recipient tokens, and resolves the timeline: where each
//! layer is and how opaque it is at any time. No GPU, no FFmpeg, no async.
//!
//! # Contents
//!
//! - **Manifest** ([`Manifest`] and the types under it): the serde types of `template.json`.
//!   Times in seconds, positions and sizes in output pixels, colours `#RRGGBB[AA]`. Layers are
//!   video, image, text, solid and presenter ([`PresenterLayer`]: a still or video base with a
//!   mouth box and a nine-cell mouth atlas, lip-synced to the voice slot, whose `script` and
//!   `tts` ([`VoiceSpec`]) say what it says and whether the built-in voice speaks it).
//! - **Loading and validation**: [`Bundle::load`] reads a bundle folder; [`Manifest::from_json`]
//!   parses (errors carry line, column and JSON path); [`Manifest::validate`] checks every rule
//!   and reports every broken one in one [`TemplateError::Invalid`] listing [`Problem`]s.
//! - **Colours**: [`Color::rgba`].
//! - **Tokens**: [`sanitize`] makes untrusted recipient text safe (NFC, no control or bidi
//!   override characters, collapsed whitespace); [`resolve_tokens`] checks a request's values
//!   against the template's token schema and applies fallbacks; failures are [`TokenError`]s.
//! - **Timeline**: [`resolve`] turns a manifest, a language and resolved tokens into a
//!   [`Timeline`] of [`ResolvedLayer`]s; [`ResolvedLayer::state_at`] gives a layer's [`Affine`]
//!   placement and opacity at any time; [`Timeline::voice_script`] is the voice's script with
//!   tokens filled in; [`Timeline::frame_range`] maps a time range to frames;
//!   [`Timeline::dependent_ranges`] tells which time ranges depend on the recipient.
//! - **Schema**: [`json_schema`], kept in `template/template.schema.json`.
//! - **Archives**: [`pack_dir`] packs a bundle folder into a deterministic tar for upload;
//!   [`inspect`] checks an untrusted archive (plain or gzip tar) against [`Limits`], entry paths
//!   and kinds and its manifest; [`unpack`] checks and writes it to a new folder atomically.
//!   Failures are [`ArchiveError`]s.
//!
//! **Invariant:** everything here is a pure function of its inputs (file reads aside in
//! [`Bundle::load`] and [`pack_dir`], and the folder [`unpack`] writes); nothing panics on any
//! input.

mod archive;
mod bundle;
mod color;
mod error;
mod imagesize;
mod manifest;
mod preset;
mod samples;
mod schema;
mod timeline;
mod tokens;
mod validate;

pub use archive::{inspect, pack_dir, unpack, ArchiveError, ArchiveInfo, Limits};
pub use bundle::{Bundle, MANIFEST_FILE};
pub use error::{ColorError, Problem, Problems, TemplateError, TokenError};
pub use manifest::*;
pub use preset::Preset;
pub use samples::{recipients, tokens_from_json, Recipient, SampleError, RECIPIENTS_FILE};
pub use schema::{json_schema, json_schema_pretty};
pub use timeline::{resolve, Affine, LayerState, Lerp, ResolvedContent, ResolvedLayer, Timeline};
pub use tokens::{placeholders, resolve_tokens, sanitize, template_language};
pub use validate::{
    gpu_layers_of, is_still_path, MAX_DURATION, MAX_LAYERS_AT_ONCE, STILL_EXTENSIONS,
};
