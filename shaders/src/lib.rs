//! shaders: the WGSL compute shaders of the compositor and their `#[repr(C)]` mirrors.
//!
//! Sources live in `wgsl/`: `common.wgsl` (shared structs) and `composite_lib.wgsl` (bindings
//! and the per-pixel compositing) are prepended to each entry point's file. `build.rs` parses
//! and validates each with naga, so a broken shader fails the build, not a render. Entry points
//! are named `cs_main`.

use bytemuck::{Pod, Zeroable};

/// Composites all layers of a frame into packed RGBA8 (one `u32` per pixel).
pub const RGBA_WGSL: &str = concat!(
    include_str!("../wgsl/common.wgsl"),
    include_str!("../wgsl/composite_lib.wgsl"),
    include_str!("../wgsl/rgba.wgsl")
);

/// Composites all layers of a frame straight into planar YUV 4:2:0, BT.709 limited range.
pub const YUV420_WGSL: &str = concat!(
    include_str!("../wgsl/common.wgsl"),
    include_str!("../wgsl/composite_lib.wgsl"),
    include_str!("../wgsl/yuv420.wgsl")
);

/// Tile width of the per-tile layer masks, in pixels (`TILE_WIDTH` in `common.wgsl`).
pub const TILE_WIDTH: u32 = 64;
/// Tile height of the per-tile layer masks, in pixels (`TILE_HEIGHT` in `common.wgsl`).
pub const TILE_HEIGHT: u32 = 2;

/// Invocations per workgroup of both entry points; each invocation handles one 8x2 block.
pub const WORKGROUP_SIZE: u32 = 64;

/// Per-frame constants, `FrameUniforms` in `common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct FrameUniforms {
    /// Canvas width in pixels (a multiple of 8).
    pub width: u32,
    /// Canvas height in pixels (a multiple of 2).
    pub height: u32,
    /// Number of valid entries in the layer buffer.
    pub layer_count: u32,
    /// Tiles per row of the tile masks ([`TILE_WIDTH`] pixels wide).
    pub tiles_x: u32,
    /// Canvas colour under all layers, premultiplied RGBA in 0..1.
    pub background: [f32; 4],
}

/// Atlas a layer samples from. Both hold packed premultiplied RGBA8, one `u32` per texel; the
/// compositor uploads them into one buffer and offsets video layers' `rect[0]`.
pub mod source {
    /// The static atlas: text, images and shapes, uploaded once per job.
    pub const ATLAS: u32 = 0;
    /// The video atlas: decoded video frames, uploaded every frame.
    pub const VIDEO: u32 = 1;
}

/// One layer of a frame, `Layer` in `common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct GpuLayer {
    /// First row of the canvas → texel affine map; `w` is the layer's opacity (0..1).
    pub row0: [f32; 4],
    /// Second row of the canvas → texel affine map; `w` unused.
    pub row1: [f32; 4],
    /// The layer's texels in its source buffer: first texel index, row stride in texels,
    /// width, height.
    pub rect: [u32; 4],
    /// Canvas pixels the layer may touch: x0, y0, x1, y1 (exclusive).
    pub bbox: [i32; 4],
    /// [`source::ATLAS`] or [`source::VIDEO`].
    pub source: u32,
    /// Soft elliptical edge in `0..=0.5`: the layer fades out over the outer `2 × feather` of
    /// the radius of the ellipse inscribed in its texel rectangle (presenter mouths); `0`
    /// disables the mask, leaving the layer exactly as without it.
    pub feather: f32,
    /// Explicit padding to a multiple of 16 bytes.
    pub _pad: [u32; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn struct_size(source: &str, name: &str) -> u32 {
        let module = naga::front::wgsl::parse_str(source).expect("shader parses");
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout computes");
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some(name))
            .expect("struct present");
        layouter[handle].size
    }

    #[test]
    fn mirrors_match_wgsl_sizes() {
        assert_eq!(
            struct_size(RGBA_WGSL, "FrameUniforms") as usize,
            std::mem::size_of::<FrameUniforms>()
        );
        assert_eq!(
            struct_size(RGBA_WGSL, "Layer") as usize,
            std::mem::size_of::<GpuLayer>()
        );
    }

    /// Byte offset of each member of a WGSL struct, by name.
    fn struct_offsets(source: &str, name: &str) -> Vec<(String, u32)> {
        let module = naga::front::wgsl::parse_str(source).expect("shader parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some(name))
            .expect("struct present");
        match &ty.inner {
            naga::TypeInner::Struct { members, .. } => members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                .collect(),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    #[test]
    fn layer_fields_sit_where_the_mirror_puts_them() {
        let offsets = struct_offsets(RGBA_WGSL, "Layer");
        let at = |field: &str| {
            offsets
                .iter()
                .find(|(n, _)| n == field)
                .map(|(_, o)| *o as usize)
                .expect("member present")
        };
        assert_eq!(at("row0"), std::mem::offset_of!(GpuLayer, row0));
        assert_eq!(at("row1"), std::mem::offset_of!(GpuLayer, row1));
        assert_eq!(at("rect"), std::mem::offset_of!(GpuLayer, rect));
        assert_eq!(at("bbox"), std::mem::offset_of!(GpuLayer, bbox));
        assert_eq!(at("source"), std::mem::offset_of!(GpuLayer, source));
        assert_eq!(at("feather"), std::mem::offset_of!(GpuLayer, feather));
    }

    #[test]
    fn tile_size_matches_wgsl() {
        let wgsl = include_str!("../wgsl/common.wgsl");
        assert!(wgsl.contains(&format!("const TILE_WIDTH: u32 = {TILE_WIDTH}u;")));
        assert!(wgsl.contains(&format!("const TILE_HEIGHT: u32 = {TILE_HEIGHT}u;")));
        for entry in [RGBA_WGSL, YUV420_WGSL] {
            assert!(entry.contains(&format!("@workgroup_size({WORKGROUP_SIZE}, 1, 1)")));
        }
    }

    #[test]
    fn entry_points_are_cs_main() {
        for src in [RGBA_WGSL, YUV420_WGSL] {
            let module = naga::front::wgsl::parse_str(src).expect("shader parses");
            let names: Vec<_> = module
                .entry_points
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            assert_eq!(names, ["cs_main"]);
        }
    }
}
