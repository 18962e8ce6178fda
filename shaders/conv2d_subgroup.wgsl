// Direct convolution, forward and dgrad (lib/conv_direct.wgsl), on adapters with subgroups: the
// register tiles' weights are loaded once per subgroup and broadcast (lib/subgroup_share.wgsl).
// On lavapipe 1.3-2x faster than conv2d.wgsl (experiments/subgroup-weights.md).
enable subgroups;
#include "lib/conv_direct.wgsl"
#include "lib/subgroup_share.wgsl"

// As conv2d.wgsl's tileWeights, each weight loaded by one lane of SG.
fn tileWeights(w0: u32, sgl: u32) -> array<f32, TILE_M> {
  var w: array<f32, TILE_M>;
  for (var h = 0u; h < (TM + SG - 1u) / SG; h++) {
    let i = share_index(h, sgl, TM);
    share(packed(4u * w0 + i), &w, h, TM);
  }
  return w;
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) sgl: u32) {
  convRegisters(wg, lid.x, sgl);
}
