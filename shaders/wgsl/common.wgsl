// Types shared by every reelfarm compute shader. Each shader source is this file followed by
// the shader's own file; `shaders/build.rs` validates the concatenation with naga.

// Per-frame constants. Mirrors `shaders::FrameUniforms`.
struct FrameUniforms {
    width: u32,
    height: u32,
    layer_count: u32,
    // Tiles per row of the tile masks (TILE_WIDTH x TILE_HEIGHT pixels each).
    tiles_x: u32,
    // Canvas colour under all layers, premultiplied, 0..1.
    background: vec4<f32>,
}

// One layer as the compositor sees it. Mirrors `shaders::GpuLayer`.
struct Layer {
    // Rows of the 2x3 affine map from a canvas pixel centre to continuous texel coordinates
    // inside `rect` (texel centres at +0.5). `row0.w` is the layer opacity.
    row0: vec4<f32>,
    row1: vec4<f32>,
    // Where the layer's texels are in its source buffer: index of the first texel, row
    // stride in texels, width, height.
    rect: vec4<u32>,
    // Canvas pixels the layer may touch: x0, y0, x1, y1 (exclusive).
    bbox: vec4<i32>,
    // 0: static atlas (text, images, shapes); 1: video atlas (updated every frame). The
    // compositor lays both out in one storage buffer of packed premultiplied RGBA8, one u32 per
    // texel, and offsets `rect.x` of video layers, so shaders never branch on it.
    source: u32,
    // Soft elliptical edge, 0..0.5: the layer fades out over the outer `2 * feather` of the
    // radius of the ellipse inscribed in `rect` (presenter mouths). 0: no mask at all.
    feather: f32,
    _pad1: u32,
    _pad2: u32,
}

// Pixels per tile of the tile masks: one row of a tile is exactly what eight consecutive
// invocations of the YUV shader (8x2 blocks) cover, so SIMD lanes share one mask.
const TILE_WIDTH: u32 = 64u;
const TILE_HEIGHT: u32 = 2u;
