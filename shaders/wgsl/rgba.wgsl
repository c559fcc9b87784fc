// Entry point writing the composited frame as packed RGBA8, one word per pixel (stills, tests).
// One-dimensional workgroups, one 8x2 block per invocation (width % 8 == 0, height % 2 == 0).

fn store_quad(top: u32, q: vec4<u32>) {
    out_words[top] = q.x;
    out_words[top + 1u] = q.y;
    out_words[top + frame.width] = q.z;
    out_words[top + frame.width + 1u] = q.w;
}

@compute @workgroup_size(64, 1, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let origin = block_origin(gid.x);
    if origin.z == 0u {
        return;
    }
    let b = composite_block(origin.x, origin.y);
    let top = origin.y * frame.width + origin.x;
    store_quad(top, b.q0);
    store_quad(top + 2u, b.q1);
    store_quad(top + 4u, b.q2);
    store_quad(top + 6u, b.q3);
}
