// Entry point writing the composited frame as packed RGBA8, one word per pixel (stills, tests).
// One-dimensional workgroups, one 2x2 quad per invocation (width and height even).

@compute @workgroup_size(64, 1, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let quads_x = frame.width / 2u;
    if gid.x >= quads_x * (frame.height / 2u) {
        return;
    }
    let x = (gid.x % quads_x) * 2u;
    let y = (gid.x / quads_x) * 2u;
    let quad = composite_quad(x, y, tile_mask(x, y));
    let top = y * frame.width + x;
    out_words[top] = quad.x;
    out_words[top + 1u] = quad.y;
    out_words[top + frame.width] = quad.z;
    out_words[top + frame.width + 1u] = quad.w;
}
