// Weight gradients of conv2d (lib/conv_wgrad.wgsl) on adapters with subgroups: wgrad_nhwc's dy
// values are loaded once per subgroup and broadcast (lib/subgroup_share.wgsl); on lavapipe 2-2.3x
// faster than conv2d_wgrad.wgsl (experiments/subgroup-weights.md).
enable subgroups;
#include "lib/conv_wgrad.wgsl"
#include "lib/subgroup_share.wgsl"

// As conv2d_wgrad.wgsl's dyValues, each value loaded by one lane of SG.
fn dyValues(d0: u32, sgl: u32) -> array<f32, 16> {
  var d: array<f32, 16>;
  for (var h = 0u; h < (TU + SG - 1u) / SG; h++) {
    let i = share_index(h, sgl, TU);
    share(DYT[d0 + i / 4u][i % 4u], &d, h, TU);
  }
  return d;
}

@compute @workgroup_size(WG_X)
fn wgrad_nhwc(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) sgl: u32) {
  wgradNhwc(wg, lid.x, sgl);
}
