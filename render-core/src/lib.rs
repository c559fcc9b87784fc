//! render-core: the synchronous render library.
//!
//! Turns a template bundle plus one recipient's tokens into frames and an MP4:
//! media IO through FFmpeg ([`media`]), shaped text ([`text`]), audio mixing ([`audio`]),
//! and the wgpu compute compositor ([`gpu`]) with its CPU reference ([`cpu`]).

pub mod audio;
pub mod media;
pub mod text;
