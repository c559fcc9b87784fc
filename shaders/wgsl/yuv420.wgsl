// Entry point compositing straight into planar YUV 4:2:0 (BT.709, limited range), so readback
// carries 1.5 bytes per pixel and no RGBA frame is ever stored. Each invocation handles one 8x2
// block (`composite_block`): four words of luma (two per row), one word of U and one of V
// (chroma is the mean of each 2x2 quad). Requires width % 8 == 0 and height % 2 == 0.
//
// Shaped for software Vulkan as much as for GPUs: one-dimensional workgroups, sixteen pixels
// per invocation, and no private arrays (which a SIMD-across-invocations compiler turns into
// gathers and scatters).

fn rgb(word: u32) -> vec3<f32> {
    return unpack4x8unorm(word).rgb;
}

fn to_byte(x: f32) -> u32 {
    return u32(clamp(floor(x + 0.5), 0.0, 255.0));
}

fn luma(word: u32) -> u32 {
    return to_byte(16.0 + 219.0 * dot(rgb(word), vec3<f32>(0.2126, 0.7152, 0.0722)));
}

// Luma of a quad as two 16-bit halves (top row, bottom row), and its U and V bytes.
fn quad_yuv(q: vec4<u32>) -> vec4<u32> {
    let top = luma(q.x) | (luma(q.y) << 8u);
    let bottom = luma(q.z) | (luma(q.w) << 8u);
    let m = (rgb(q.x) + rgb(q.y) + rgb(q.z) + rgb(q.w)) * 0.25;
    let u = to_byte(128.0 + 224.0 * dot(m, vec3<f32>(-0.1146, -0.3854, 0.5)));
    let v = to_byte(128.0 + 224.0 * dot(m, vec3<f32>(0.5, -0.4542, -0.0458)));
    return vec4<u32>(top, bottom, u, v);
}

@compute @workgroup_size(64, 1, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let block = gid.x;
    let origin = block_origin(block);
    if origin.z == 0u {
        return;
    }
    let x0 = origin.x;
    let y0 = origin.y;
    let b = composite_block(x0, y0);
    let c0 = quad_yuv(b.q0);
    let c1 = quad_yuv(b.q1);
    let c2 = quad_yuv(b.q2);
    let c3 = quad_yuv(b.q3);
    let row_words = frame.width / 4u;
    let y_top = y0 * row_words + x0 / 4u;
    out_words[y_top] = c0.x | (c1.x << 16u);
    out_words[y_top + 1u] = c2.x | (c3.x << 16u);
    out_words[y_top + row_words] = c0.y | (c1.y << 16u);
    out_words[y_top + row_words + 1u] = c2.y | (c3.y << 16u);
    let luma_words = frame.width * frame.height / 4u;
    let chroma_words = frame.width * frame.height / 16u;
    out_words[luma_words + block] = c0.z | (c1.z << 8u) | (c2.z << 16u) | (c3.z << 24u);
    out_words[luma_words + chroma_words + block] =
        c0.w | (c1.w << 8u) | (c2.w << 16u) | (c3.w << 24u);
}
