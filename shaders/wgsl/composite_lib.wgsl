// Compositing shared by the RGBA and YUV entry points: every layer of one frame, bottom first,
// in premultiplied alpha, with bilinear sampling clamped to each layer's own texel rectangle.
//
// Each tile of the canvas has a 64-bit mask of the layers whose bounding box touches it, and a
// pixel visits only those layers. The code is branch-free inside a layer: SIMD-across-lanes
// compilers (lavapipe's) execute both sides of a branch, but leave a loop as soon as no lane
// has work.

@group(0) @binding(0) var<uniform> frame: FrameUniforms;
@group(0) @binding(1) var<storage, read> layers: array<Layer>;
@group(0) @binding(2) var<storage, read> texels: array<u32>;
@group(0) @binding(3) var<storage, read> tiles: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> out_words: array<u32>;

fn sample_layer(index: u32, p: vec2<f32>) -> vec4<f32> {
    let row0 = layers[index].row0;
    let row1 = layers[index].row1;
    let rect = layers[index].rect;
    let u = row0.x * p.x + row0.y * p.y + row0.z;
    let v = row1.x * p.x + row1.y * p.y + row1.z;
    // Outside the layer's rectangle the sample is transparent.
    let inside = u >= 0.0 && v >= 0.0 && u < f32(rect.z) && v < f32(rect.w);
    let fu = u - 0.5;
    let fv = v - 0.5;
    let x0 = floor(fu);
    let y0 = floor(fv);
    let ax = fu - x0;
    let ay = fv - y0;
    // Neighbouring texels, clamped to the layer's own rectangle.
    let max_x = i32(rect.z) - 1;
    let max_y = i32(rect.w) - 1;
    let cx0 = u32(clamp(i32(x0), 0, max_x));
    let cx1 = u32(clamp(i32(x0) + 1, 0, max_x));
    let row_a = rect.x + u32(clamp(i32(y0), 0, max_y)) * rect.y;
    let row_b = rect.x + u32(clamp(i32(y0) + 1, 0, max_y)) * rect.y;
    let c00 = unpack4x8unorm(texels[row_a + cx0]);
    let c10 = unpack4x8unorm(texels[row_a + cx1]);
    let c01 = unpack4x8unorm(texels[row_b + cx0]);
    let c11 = unpack4x8unorm(texels[row_b + cx1]);
    let top = c00 + (c10 - c00) * ax;
    let bottom = c01 + (c11 - c01) * ax;
    return (top + (bottom - top) * ay) * select(0.0, row0.w, inside);
}

// The layer mask of the tile holding pixel (x, y).
fn tile_mask(x: u32, y: u32) -> vec2<u32> {
    return tiles[(y / TILE_HEIGHT) * frame.tiles_x + x / TILE_WIDTH];
}

fn blend(acc: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return c + acc * (1.0 - c.a);
}

// The composited colours of the 2x2 quad whose top-left pixel is (x, y), visiting the layers in
// `mask`, each quantized to 8 bits per channel exactly as it would be stored (so every output
// format starts from the same values): (x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1).
// One loop serves four pixels: loop overhead, not arithmetic, dominates on software Vulkan.
fn composite_quad(x: u32, y: u32, mask: vec2<u32>) -> vec4<u32> {
    let p = vec2<f32>(f32(x) + 0.5, f32(y) + 0.5);
    var a = frame.background;
    var b = frame.background;
    var c = frame.background;
    var d = frame.background;
    var low = mask.x;
    var high = mask.y;
    loop {
        var i = 0u;
        if low != 0u {
            i = firstTrailingBit(low);
            low &= low - 1u;
        } else if high != 0u {
            i = 32u + firstTrailingBit(high);
            high &= high - 1u;
        } else {
            break;
        }
        a = blend(a, sample_layer(i, p));
        b = blend(b, sample_layer(i, p + vec2<f32>(1.0, 0.0)));
        c = blend(c, sample_layer(i, p + vec2<f32>(0.0, 1.0)));
        d = blend(d, sample_layer(i, p + vec2<f32>(1.0, 1.0)));
    }
    return vec4<u32>(pack4x8unorm(a), pack4x8unorm(b), pack4x8unorm(c), pack4x8unorm(d));
}
