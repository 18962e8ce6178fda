// Weight and bias gradients of conv2d (lib/conv_wgrad.wgsl), for every adapter: wgrad_nhwc reads
// its dy values as vec4s at addresses shared by the whole workgroup.
#include "lib/conv_wgrad.wgsl"

// Output channels co0..co0+TU-1 of one dy pixel (NHWC copy), at vec4 index d0.
fn dyValues(d0: u32, sgl: u32) -> array<f32, 16> {
  var d: array<f32, 16>;
  for (var u4 = 0u; u4 < TU / 4u; u4++) {
    let v = DYT[d0 + u4];
    d[4u * u4] = v.x;
    d[4u * u4 + 1u] = v.y;
    d[4u * u4 + 2u] = v.z;
    d[4u * u4 + 3u] = v.w;
  }
  return d;
}

@compute @workgroup_size(WG_X)
fn wgrad_nhwc(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  wgradNhwc(wg, lid.x, 0u);
}
