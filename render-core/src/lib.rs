//! render-core: the synchronous render library.
//!
//! Turns a template bundle plus one recipient's tokens into frames and an MP4.
//!
//! - [`Renderer`] renders a [`RenderRequest`] to an MP4 ([`Renderer::render`]) or one frame
//!   ([`Renderer::still`]); any time range `[t0, t1)` of a video can be rendered on its own.
//! - [`media`]: FFmpeg video decoding, image loading, H.264/AAC/MP4 encoding.
//! - [`text`]: shaping (bidi, fallback across the bundled Noto fonts) and rasterization.
//! - [`audio`]: decoding, resampling with rubato, mixing with ducking, loudness.
//! - [`gpu`]: the wgpu compute compositor; `cpu`: its reference implementation for tests and
//!   benchmarks, behind the `cpu-reference` feature so it stays out of the product.
//! - [`check`]: deep checks of a bundle (media decode, text fit and spoken length with
//!   generated worst-case token values) run before a template is pushed.
//! - [`atlas`]: the atlas storage ([`atlas::Texels`]) that scenes build and the compositor reads.
//! - [`scene`]: a resolved timeline turned into atlases and per-frame GPU layers.
//! - [`segments`]: smart render's segment plan and keys, the segment cache and the encoder
//!   pool ([`Renderer::render_smart`]).
//!
//! Everything here is synchronous; async callers use a blocking thread.

pub mod atlas;
pub mod audio;
pub mod check;
#[cfg(feature = "cpu-reference")]
pub mod cpu;
mod error;
pub mod gpu;
pub mod media;
mod render;
pub mod scene;
pub mod segments;
pub mod text;

pub use error::RenderError;
pub use render::{
    segment_name, Preset, RenderReport, RenderRequest, Renderer, SegmentReport, SmartRender,
    StageTimings, StreamOutput, ENCODER_THREADS, PLAYLIST, SEGMENT_ENCODER_THREADS,
};
