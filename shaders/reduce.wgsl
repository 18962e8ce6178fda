// Sum reductions over any set of axes of a rank-4 tensor. One workgroup reduces one output
// element (or one chunk of it, when the reduced extent is split across workgroups and a second
// pass adds the partial sums); the host pads shapes to rank 4 and passes kept/reduced axes apart.

override WG: u32 = 64u;
override SERIAL: bool = false; // lib/sum_wg.wgsl's tree sum: this family has no serial plan

struct Params {
  n_out: u32, n_red: u32, chunk: u32, n_chunks: u32,
  k1: u32, k2: u32, k3: u32,              // kept sizes (axis 0 implied), row-major
  ks0: u32, ks1: u32, ks2: u32, ks3: u32, // kept strides in the input
  r1: u32, r2: u32, r3: u32,              // reduced sizes (axis 0 implied)
  rs0: u32, rs1: u32, rs2: u32, rs3: u32, // reduced strides in the input
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

#include "lib/sum_wg.wgsl"

fn offset4(i: u32, s1: u32, s2: u32, s3: u32, t0: u32, t1: u32, t2: u32, t3: u32) -> u32 {
  let c3 = i % s3;
  let q2 = i / s3;
  let c2 = q2 % s2;
  let q1 = q2 / s2;
  let c1 = q1 % s1;
  let c0 = q1 / s1;
  return c0 * t0 + c1 * t1 + c2 * t2 + c3 * t3;
}

@compute @workgroup_size(WG)
fn sum(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.n_out * p.n_chunks) { return; }
  let o = g / p.n_chunks;
  let c = g % p.n_chunks;
  let base = offset4(o, p.k1, p.k2, p.k3, p.ks0, p.ks1, p.ks2, p.ks3);
  let start = c * p.chunk;
  let end = min(p.n_red, start + p.chunk);
  var acc = 0.0;
  for (var r = start + lid.x; r < end; r += WG) {
    acc += x[base + offset4(r, p.r1, p.r2, p.r3, p.rs0, p.rs1, p.rs2, p.rs3)];
  }
  let t = sum_wg(acc, lid.x);
  if (lid.x == 0u) { out[g] = t * p.scale; }
}
