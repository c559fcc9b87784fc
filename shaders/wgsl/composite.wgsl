// Composites every layer of one frame, bottom first, in premultiplied alpha, with bilinear
// sampling clamped to each layer's own texel rectangle. Writes packed RGBA8 per pixel.

@group(0) @binding(0) var<uniform> frame: FrameUniforms;
@group(0) @binding(1) var<storage, read> layers: array<Layer>;
@group(0) @binding(2) var atlas: texture_2d<f32>;
@group(0) @binding(3) var video: texture_2d<f32>;
@group(0) @binding(4) var<storage, read_write> out_rgba: array<u32>;

fn fetch(source: u32, rect: vec4<u32>, ix: i32, iy: i32) -> vec4<f32> {
    let cx = u32(clamp(ix, 0, i32(rect.z) - 1)) + rect.x;
    let cy = u32(clamp(iy, 0, i32(rect.w) - 1)) + rect.y;
    if source == 0u {
        return textureLoad(atlas, vec2<u32>(cx, cy), 0);
    }
    return textureLoad(video, vec2<u32>(cx, cy), 0);
}

fn sample_layer(l: Layer, p: vec2<f32>) -> vec4<f32> {
    let u = l.row0.x * p.x + l.row0.y * p.y + l.row0.z;
    let v = l.row1.x * p.x + l.row1.y * p.y + l.row1.z;
    let w = f32(l.rect.z);
    let h = f32(l.rect.w);
    if u < 0.0 || v < 0.0 || u >= w || v >= h {
        return vec4<f32>(0.0);
    }
    let fu = u - 0.5;
    let fv = v - 0.5;
    let x0 = floor(fu);
    let y0 = floor(fv);
    let ax = fu - x0;
    let ay = fv - y0;
    let ix = i32(x0);
    let iy = i32(y0);
    let c00 = fetch(l.source, l.rect, ix, iy);
    let c10 = fetch(l.source, l.rect, ix + 1, iy);
    let c01 = fetch(l.source, l.rect, ix, iy + 1);
    let c11 = fetch(l.source, l.rect, ix + 1, iy + 1);
    let top = c00 + (c10 - c00) * ax;
    let bottom = c01 + (c11 - c01) * ax;
    return top + (bottom - top) * ay;
}

@compute @workgroup_size(16, 16, 1)
fn cs_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= frame.width || gid.y >= frame.height {
        return;
    }
    let px = i32(gid.x);
    let py = i32(gid.y);
    let p = vec2<f32>(f32(gid.x) + 0.5, f32(gid.y) + 0.5);
    var acc = frame.background;
    for (var i = 0u; i < frame.layer_count; i++) {
        let l = layers[i];
        if px < l.bbox.x || py < l.bbox.y || px >= l.bbox.z || py >= l.bbox.w {
            continue;
        }
        let c = sample_layer(l, p) * l.row0.w;
        acc = c + acc * (1.0 - c.a);
    }
    out_rgba[gid.y * frame.width + gid.x] = pack4x8unorm(acc);
}
