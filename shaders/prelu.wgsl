// PReLU with one slope per channel (or one shared) over NCHW-like tensors, forward and backward.
// Same (split, channel) grid as batchnorm.wgsl: split s of channel c covers elements
// [s*chunk, (s+1)*chunk) of the channel in (n, p) order, walked as contiguous plane segments.
// The backward writes dx and one partial slope gradient per workgroup (the host sums them when a
// channel has several workgroups or the slope is shared).

override WG: u32 = 256u;
override SERIAL: bool = false;    // one invocation sums the workgroup: two barriers instead of log2(WG)

struct Params {
  n: u32, c: u32, p: u32,
  chunk: u32, splits: u32,
  shared_slope: u32,
  slope_grad: u32, // 0: dx only, no reduction (and no barriers)
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> slope: array<f32>;
// forward
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;

#include "lib/grid.wgsl"
#include "lib/segments.wgsl"
#include "lib/sum_wg.wgsl"

fn slope_at(c: u32) -> f32 {
  return slope[select(c, 0u, u.shared_slope == 1u)];
}

// This workgroup's range [x, y) of its channel's N*P elements (split wid.x).
fn split_range(wid: vec3u) -> vec2u {
  let j0 = wid.x * u.chunk;
  return vec2u(j0, min(j0 + u.chunk, u.n * u.p));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let a = slope_at(c);
  let r = split_range(wid);
  for (var n = r.x / u.p; ; n++) {
    let seg = segment(n, c, r.x, r.y, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid.x; j < seg.hi; j += WG) {
      let v = x[seg.base + j];
      y[seg.base + j] = select(a * v, v, v > 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let a = slope_at(c);
  let r = split_range(wid);
  var acc = 0.0;
  for (var n = r.x / u.p; ; n++) {
    let seg = segment(n, c, r.x, r.y, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid.x; j < seg.hi; j += WG) {
      let v = x[seg.base + j];
      let g = dy[seg.base + j];
      let pos = v > 0.0;
      dx[seg.base + j] = select(a * g, g, pos);
      acc += select(v * g, 0.0, pos);
    }
  }
  if (u.slope_grad == 0u) { return; }
  let t = sum_wg(acc, lid.x);
  if (lid.x == 0u) { part[c * u.splits + wid.x] = t; }
}
