// Direct convolution, forward and dgrad (lib/conv_direct.wgsl), on adapters with subgroups: the
// register tiles' weights are loaded once per subgroup and broadcast. lavapipe loads every value
// lane by lane, even one the whole workgroup shares, so a tile of 16 weights cost 16 loads per
// lane; here each lane loads one of SG weights and subgroupBroadcast hands it to the others (a
// register shuffle there). On 1x16x256x256 16->16 3x3 it ran about 1.5x faster than conv2d.wgsl.
enable subgroups;
#include "lib/conv_direct.wgsl"

// Weights shared per broadcast: 8, or 4 where the adapter's subgroups can be that small (SwiftShader).
override SG: u32 = 8u;

// As conv2d.wgsl's tileWeights: lane l of each group of SG loads channel h*SG + l % SG, and every
// lane takes each of them from its lane. Call in uniform control flow (all lanes active).
fn tileWeights(w0: u32, sgl: u32) -> array<f32, TILE_M> {
  var w: array<f32, TILE_M>;
  let l = sgl % SG;
  for (var h = 0u; h < (TM + SG - 1u) / SG; h++) {
    let i = min(h * SG + l, TM - 1u);
    let v = Wv[w0 + i / 4u][i % 4u];
    let base = h * SG;
    w[base] = subgroupBroadcast(v, 0u);
    w[base + 1u] = subgroupBroadcast(v, 1u);
    w[base + 2u] = subgroupBroadcast(v, 2u);
    w[base + 3u] = subgroupBroadcast(v, 3u);
    if (SG > 4u && base + 4u < TM) {
      w[base + 4u] = subgroupBroadcast(v, 4u);
      w[base + 5u] = subgroupBroadcast(v, 5u);
      w[base + 6u] = subgroupBroadcast(v, 6u);
      w[base + 7u] = subgroupBroadcast(v, 7u);
    }
  }
  return w;
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) sgl: u32) {
  convRegisters(wg, lid.x, sgl);
}
