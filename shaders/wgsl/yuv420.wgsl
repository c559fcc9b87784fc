// Converts the composited RGBA8 frame to planar YUV 4:2:0 (BT.709, limited range), so that
// readback carries 1.5 bytes per pixel. Each invocation converts one 8x2 block: four u32 words
// of luma (two per row), one word of U and one of V (chroma is the mean of each 2x2 quad).
// Requires width % 8 == 0 and height % 2 == 0.

@group(0) @binding(0) var<uniform> frame: FrameUniforms;
@group(0) @binding(1) var<storage, read> in_rgba: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_yuv: array<u32>;

fn luma(c: vec3<f32>) -> f32 {
    return 16.0 + 219.0 * dot(c, vec3<f32>(0.2126, 0.7152, 0.0722));
}

fn to_byte(x: f32) -> u32 {
    return u32(clamp(floor(x + 0.5), 0.0, 255.0));
}

@compute @workgroup_size(8, 8, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let blocks_x = frame.width / 8u;
    let blocks_y = frame.height / 2u;
    if gid.x >= blocks_x || gid.y >= blocks_y {
        return;
    }
    let x0 = gid.x * 8u;
    let y0 = gid.y * 2u;
    var u_word = 0u;
    var v_word = 0u;
    for (var row = 0u; row < 2u; row++) {
        let base = (y0 + row) * frame.width + x0;
        var words = vec2<u32>(0u, 0u);
        for (var i = 0u; i < 8u; i++) {
            let c = unpack4x8unorm(in_rgba[base + i]).rgb;
            let y = to_byte(luma(c));
            words[i / 4u] |= y << (8u * (i % 4u));
        }
        let yw = (y0 + row) * (frame.width / 4u) + x0 / 4u;
        out_yuv[yw] = words.x;
        out_yuv[yw + 1u] = words.y;
    }
    for (var q = 0u; q < 4u; q++) {
        let b = y0 * frame.width + x0 + 2u * q;
        let c = (unpack4x8unorm(in_rgba[b]).rgb + unpack4x8unorm(in_rgba[b + 1u]).rgb
            + unpack4x8unorm(in_rgba[b + frame.width]).rgb
            + unpack4x8unorm(in_rgba[b + frame.width + 1u]).rgb) * 0.25;
        let u = to_byte(128.0 + 224.0 * dot(c, vec3<f32>(-0.1146, -0.3854, 0.5)));
        let v = to_byte(128.0 + 224.0 * dot(c, vec3<f32>(0.5, -0.4542, -0.0458)));
        u_word |= u << (8u * q);
        v_word |= v << (8u * q);
    }
    let luma_words = frame.width * frame.height / 4u;
    let chroma_words = frame.width * frame.height / 16u;
    let cw = gid.y * (frame.width / 8u) + gid.x;
    out_yuv[luma_words + cw] = u_word;
    out_yuv[luma_words + chroma_words + cw] = v_word;
}
