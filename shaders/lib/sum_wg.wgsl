// Workgroup sum of one f32 per invocation (se.wgsl, prelu.wgsl, reduce.wgsl). The including shader
// declares `override WG: u32` (a power of two) and `override SERIAL: bool`: one invocation adds
// the lanes (two barriers, cheap where a barrier is a coroutine switch, as on lavapipe) instead of
// a log2(WG)-step tree.

var<workgroup> wsum: array<f32, WG>;

// Sum of `v` over the workgroup, valid in invocation 0; call in uniform control flow.
fn sum_wg(v: f32, lid: u32) -> f32 {
  wsum[lid] = v;
  workgroupBarrier();
  if (SERIAL) {
    if (lid == 0u) {
      var t = 0.0;
      for (var i = 0u; i < WG; i++) { t += wsum[i]; }
      wsum[0] = t;
    }
  } else {
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) { wsum[lid] += wsum[lid + s]; }
      workgroupBarrier();
    }
  }
  return wsum[0];
}
