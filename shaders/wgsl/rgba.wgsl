// Entry point writing the composited frame as packed RGBA8, one word per pixel (stills, tests).
// One-dimensional workgroups, four pixels of a row per invocation (width % 8 == 0).

@compute @workgroup_size(64, 1, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let quads_x = frame.width / 4u;
    if gid.x >= quads_x * frame.height {
        return;
    }
    let x0 = (gid.x % quads_x) * 4u;
    let y = gid.x / quads_x;
    let base = y * frame.width + x0;
    let mask = tile_mask(x0, y);
    for (var i = 0u; i < 4u; i++) {
        out_words[base + i] = composite_pixel(x0 + i, y, mask);
    }
}
