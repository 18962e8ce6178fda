// Values the whole subgroup needs, loaded once per subgroup instead of once per lane (the
// subgroup variants conv2d_subgroup.wgsl and conv2d_wgrad_subgroup.wgsl). lavapipe loads even a
// workgroup-uniform value lane by lane (a bounds-checked scalar load per lane and component), so
// a tile of 16 shared values cost 16 loads per lane; here lane l of each group of SG loads value
// h*SG + l % SG (`share_index`) and `share` hands each one to every lane (a register shuffle there).
// The includer enables subgroups. Call both in uniform control flow (all lanes active).

// Values one broadcast group shares: 8, or 4 where the adapter's subgroups can be that small
// (SwiftShader); the host sets it to min(8, the device's smallest subgroup).
override SG: u32 = 8u;

// The value this lane loads for group h of a row of n values: h*SG + lane % SG, clamped to n - 1
// (the lanes past a short last group load a value nobody takes).
fn share_index(h: u32, sgl: u32, n: u32) -> u32 {
  return min(h * SG + sgl % SG, n - 1u);
}

// (*w)[h*SG + k] = lane k's v, for the k of group h below n (n a multiple of 4).
fn share(v: f32, w: ptr<function, array<f32, 16>>, h: u32, n: u32) {
  let base = h * SG;
  (*w)[base] = subgroupBroadcast(v, 0u);
  (*w)[base + 1u] = subgroupBroadcast(v, 1u);
  (*w)[base + 2u] = subgroupBroadcast(v, 2u);
  (*w)[base + 3u] = subgroupBroadcast(v, 3u);
  if (SG > 4u && base + 4u < n) {
    (*w)[base + 4u] = subgroupBroadcast(v, 4u);
    (*w)[base + 5u] = subgroupBroadcast(v, 5u);
    (*w)[base + 6u] = subgroupBroadcast(v, 6u);
    (*w)[base + 7u] = subgroupBroadcast(v, 7u);
  }
}
