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
    // Elliptical feather mask from the position inside the rectangle: d is 0 at the centre and
    // 1 on the inscribed ellipse. A feather of 0 selects exactly 1 (and so leaves the opacity
    // bit-identical), without a branch.
    let feather = layers[index].feather;
    let d = length(vec2<f32>(u / f32(rect.z) - 0.5, v / f32(rect.w) - 0.5) * 2.0);
    let mask = select(1.0, 1.0 - smoothstep(1.0 - 2.0 * feather, 1.0, d), feather > 0.0);
    return (top + (bottom - top) * ay) * select(0.0, row0.w * mask, inside);
}

// The layer mask of the tile holding pixel (x, y).
fn tile_mask(x: u32, y: u32) -> vec2<u32> {
    return tiles[(y / TILE_HEIGHT) * frame.tiles_x + x / TILE_WIDTH];
}

fn blend(acc: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return c + acc * (1.0 - c.a);
}

// Four pixels in flight: (x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1).
struct Quad {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

fn background_quad() -> Quad {
    return Quad(frame.background, frame.background, frame.background, frame.background);
}

// Blends layer `i` over the quad whose top-left pixel centre is `p`.
fn blend_quad(q: Quad, i: u32, p: vec2<f32>) -> Quad {
    return Quad(
        blend(q.a, sample_layer(i, p)),
        blend(q.b, sample_layer(i, p + vec2<f32>(1.0, 0.0))),
        blend(q.c, sample_layer(i, p + vec2<f32>(0.0, 1.0))),
        blend(q.d, sample_layer(i, p + vec2<f32>(1.0, 1.0))),
    );
}

// Each pixel quantized to 8 bits per channel exactly as it would be stored, so every output
// format starts from the same values.
fn pack_quad(q: Quad) -> vec4<u32> {
    return vec4<u32>(pack4x8unorm(q.a), pack4x8unorm(q.b), pack4x8unorm(q.c), pack4x8unorm(q.d));
}

// Pops the lowest layer index from a 64-bit mask held in two words; 64 when it is empty.
fn next_layer(low: ptr<function, u32>, high: ptr<function, u32>) -> u32 {
    if *low != 0u {
        let i = firstTrailingBit(*low);
        *low &= *low - 1u;
        return i;
    }
    if *high != 0u {
        let i = 32u + firstTrailingBit(*high);
        *high &= *high - 1u;
        return i;
    }
    return 64u;
}

// The composited colours of the 8x2 block whose top-left pixel is (x0, y0), as four packed
// quads left to right (see `pack_quad`). One loop over the tile's layers serves all sixteen
// pixels: loop overhead, not arithmetic, dominates on software Vulkan. Blocks never straddle
// a tile (TILE_WIDTH is a multiple of 8, TILE_HEIGHT is 2).
struct Block {
    q0: vec4<u32>,
    q1: vec4<u32>,
    q2: vec4<u32>,
    q3: vec4<u32>,
}

fn composite_block(x0: u32, y0: u32) -> Block {
    let mask = tile_mask(x0, y0);
    let p = vec2<f32>(f32(x0) + 0.5, f32(y0) + 0.5);
    var q0 = background_quad();
    var q1 = background_quad();
    var q2 = background_quad();
    var q3 = background_quad();
    var low = mask.x;
    var high = mask.y;
    loop {
        let i = next_layer(&low, &high);
        if i >= 64u {
            break;
        }
        q0 = blend_quad(q0, i, p);
        q1 = blend_quad(q1, i, p + vec2<f32>(2.0, 0.0));
        q2 = blend_quad(q2, i, p + vec2<f32>(4.0, 0.0));
        q3 = blend_quad(q3, i, p + vec2<f32>(6.0, 0.0));
    }
    return Block(pack_quad(q0), pack_quad(q1), pack_quad(q2), pack_quad(q3));
}

// Top-left pixel (x, y) of 8x2 block number `block`, and in z 1 when the block is inside the
// canvas, 0 past its end.
fn block_origin(block: u32) -> vec3<u32> {
    let blocks_x = frame.width / 8u;
    let inside = select(0u, 1u, block < blocks_x * (frame.height / 2u));
    return vec3<u32>((block % blocks_x) * 8u, (block / blocks_x) * 2u, inside);
}
