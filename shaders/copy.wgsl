// Strided block copy: dst[d_off + o * d_stride + i] = src[s_off + o * s_stride + i] for
// o < outer, i < len. Concat and split along an axis are one such copy per piece.

override WG: u32 = 256u;

struct Params { outer: u32, len: u32, s_off: u32, s_stride: u32, d_off: u32, d_stride: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

#include "lib/grid.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = flat_index(wid, lid, nwg);
  if (t >= p.outer * p.len) { return; }
  let o = t / p.len;
  let i = t % p.len;
  dst[p.d_off + o * p.d_stride + i] = src[p.s_off + o * p.s_stride + i];
}
