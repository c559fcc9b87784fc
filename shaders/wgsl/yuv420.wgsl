// Entry point compositing straight into planar YUV 4:2:0 (BT.709, limited range), so readback
// carries 1.5 bytes per pixel and no RGBA frame is ever stored. Each invocation handles one 8x2
// block, one 2x2 quad at a time: four words of luma (two per row), one word of U and one of V
// (chroma is the mean of each quad). Requires width % 8 == 0 and height % 2 == 0.
//
// Shaped for software Vulkan as much as for GPUs: one-dimensional workgroups, several pixels per
// invocation, and no private arrays (which a SIMD-across-invocations compiler turns into
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

@compute @workgroup_size(64, 1, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let blocks_x = frame.width / 8u;
    let block = gid.x;
    if block >= blocks_x * (frame.height / 2u) {
        return;
    }
    let bx = block % blocks_x;
    let by = block / blocks_x;
    let x0 = bx * 8u;
    let y0 = by * 2u;
    var top0 = 0u;
    var top1 = 0u;
    var bottom0 = 0u;
    var bottom1 = 0u;
    var u_word = 0u;
    var v_word = 0u;
    let mask = tile_mask(x0, y0);
    for (var q = 0u; q < 4u; q++) {
        let x = x0 + 2u * q;
        let quad = composite_quad(x, y0, mask);
        let a = quad.x;
        let b = quad.y;
        let c = quad.z;
        let d = quad.w;
        let shift = 16u * (q % 2u);
        let top = (luma(a) | (luma(b) << 8u)) << shift;
        let bottom = (luma(c) | (luma(d) << 8u)) << shift;
        if q < 2u {
            top0 |= top;
            bottom0 |= bottom;
        } else {
            top1 |= top;
            bottom1 |= bottom;
        }
        let m = (rgb(a) + rgb(b) + rgb(c) + rgb(d)) * 0.25;
        u_word |= to_byte(128.0 + 224.0 * dot(m, vec3<f32>(-0.1146, -0.3854, 0.5))) << (8u * q);
        v_word |= to_byte(128.0 + 224.0 * dot(m, vec3<f32>(0.5, -0.4542, -0.0458))) << (8u * q);
    }
    let row_words = frame.width / 4u;
    let y_top = y0 * row_words + x0 / 4u;
    out_words[y_top] = top0;
    out_words[y_top + 1u] = top1;
    out_words[y_top + row_words] = bottom0;
    out_words[y_top + row_words + 1u] = bottom1;
    let luma_words = frame.width * frame.height / 4u;
    let chroma_words = frame.width * frame.height / 16u;
    out_words[luma_words + block] = u_word;
    out_words[luma_words + chroma_words + block] = v_word;
}
