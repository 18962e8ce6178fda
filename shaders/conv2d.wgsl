// Direct convolution, forward and dgrad (lib/conv_direct.wgsl), for every adapter: the register
// tiles read their weights as vec4s at addresses shared by the whole workgroup.
#include "lib/conv_direct.wgsl"

// Output channels co0..co0+TM-1 of one (channel, tap) row of the packed weights, at vec4 index w0.
fn tileWeights(w0: u32, sgl: u32) -> array<f32, TILE_M> {
  var w: array<f32, TILE_M>;
  for (var i4 = 0u; i4 < TM / 4u; i4++) {
    let v = Wv[w0 + i4];
    w[4u * i4] = v.x;
    w[4u * i4 + 1u] = v.y;
    w[4u * i4 + 2u] = v.z;
    w[4u * i4 + 3u] = v.w;
  }
  return w;
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  if (SMEM) { convTiled(wg, lid); } else { convRegisters(wg, lid.x, 0u); }
}
