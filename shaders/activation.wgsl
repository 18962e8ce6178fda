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

var<workgroup> wsum: array<f32, WG>;

fn seg_base(n: u32, c: u32) -> u32 {
  return n * (u.c - 1u) * u.p + c * u.p;
}

fn slope_at(c: u32) -> f32 {
  return slope[select(c, 0u, u.shared_slope == 1u)];
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.z * nwg.y + wid.y;
  if (c >= u.c) { return; }
  let a = slope_at(c);
  let j0 = wid.x * u.chunk;
  let j1 = min(j0 + u.chunk, u.n * u.p);
  for (var n = j0 / u.p; ; n++) {
    let lo = max(j0, n * u.p);
    let hi = min(j1, n * u.p + u.p);
    if (lo >= hi) { break; }
    let base = seg_base(n, c);
    for (var j = lo + lid.x; j < hi; j += WG) {
      let v = x[base + j];
      y[base + j] = select(a * v, v, v > 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.z * nwg.y + wid.y;
  if (c >= u.c) { return; }
  let a = slope_at(c);
  let j0 = wid.x * u.chunk;
  let j1 = min(j0 + u.chunk, u.n * u.p);
  var acc = 0.0;
  for (var n = j0 / u.p; ; n++) {
    let lo = max(j0, n * u.p);
    let hi = min(j1, n * u.p + u.p);
    if (lo >= hi) { break; }
    let base = seg_base(n, c);
    for (var j = lo + lid.x; j < hi; j += WG) {
      let v = x[base + j];
      let g = dy[base + j];
      let pos = v > 0.0;
      dx[base + j] = select(a * g, g, pos);
      acc += select(v * g, 0.0, pos);
    }
  }
  if (u.slope_grad == 0u) { return; }
  wsum[lid.x] = acc;
  workgroupBarrier();
  if (SERIAL) {
    if (lid.x == 0u) {
      var t = 0.0;
      for (var i = 0u; i < WG; i++) { t += wsum[i]; }
      wsum[0] = t;
    }
  } else {
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid.x < s) { wsum[lid.x] += wsum[lid.x + s]; }
      workgroupBarrier();
    }
  }
  if (lid.x == 0u) { part[c * u.splits + wid.x] = wsum[0]; }
}
