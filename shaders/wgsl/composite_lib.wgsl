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

// The composited colour of canvas pixel (x, y), visiting the layers in `mask`, quantized to 8
// bits per channel exactly as it would be stored, so every output format starts from the same
// values.
fn composite_pixel(x: u32, y: u32, mask: vec2<u32>) -> u32 {
    let p = vec2<f32>(f32(x) + 0.5, f32(y) + 0.5);
    var acc = frame.background;
    for (var word = 0u; word < 2u; word++) {
        var bits = mask[word];
        loop {
            if bits == 0u {
                break;
            }
            let i = word * 32u + firstTrailingBit(bits);
            bits &= bits - 1u;
            let c = sample_layer(i, p);
            acc = c + acc * (1.0 - c.a);
        }
    }
    return pack4x8unorm(acc);
}
