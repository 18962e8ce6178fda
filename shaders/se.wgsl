// Squeeze-and-excitation over NCHW: y = x * sigmoid(W2 relu(W1 mean_hw(x))), forward and backward.
//
// Grid: workgroup (split, plane), plane = n*C + c folded over y and z; split s covers elements
// [s*chunk, (s+1)*chunk) of the plane. The tiny C -> hidden -> C MLP never gets a dispatch of its
// own: every workgroup of the apply passes recomputes what it needs for its own sample from the
// per-workgroup partial sums (hidden*C multiply-adds, nothing next to a plane), so the forward is
// pool + apply and the backward is sums + apply. Backward weight gradients come from the split-0
// workgroups of sample 0, which loop over the batch.
//
// Saved (forward, when asked): s = mean_hw(x) [N*C], z1 = W1 s [N*hidden], gate [N*C].
//
// Tiled inference pools over the whole image, not one tile: pool_rect adds each tile's sums over
// its core (the cores partition the image) into one buffer, and apply then reads that buffer
// (`parts` partials per plane, divided by the image's pixel `count`) instead of its own partials.

override WG: u32 = 256u;
override SERIAL: bool = false; // one invocation sums the workgroup: two barriers instead of log2(WG)

struct Params {
  n: u32, c: u32, p: u32, hidden: u32,
  chunk: u32, splits: u32,
  save: u32,  // forward: write the saved tensors
  wgrad: u32, // backward: compute dW1, dW2
  residual: u32, // forward apply: add `res` (the rain block's skip) in the same pass
  parts: u32, // forward apply: partial sums per plane in `part` (= splits when pool wrote them)
  count: u32, // forward apply: pixels those sums cover (= p, or the whole image's for a tile)
}

// pool_rect: sums over a rectangle of each plane (width `width`, p pixels), added into
// pool_out[plane * parts + split].
struct RectParams {
  planes: u32, p: u32, width: u32,
  rx: u32, ry: u32, rw: u32, rh: u32,
  chunk: u32, parts: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(0) var<uniform> r: RectParams;
// pool, apply (forward), sums (backward)
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> pool_out: array<f32>;
// apply (forward): x, then
@group(0) @binding(2) var<storage, read> w1: array<f32>;
@group(0) @binding(3) var<storage, read> w2: array<f32>;
@group(0) @binding(4) var<storage, read> part: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> saved: array<f32>;
@group(0) @binding(7) var<storage, read> res: array<f32>;
// sums (backward): x, then
@group(0) @binding(2) var<storage, read> sdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> sums_out: array<f32>;
// backward apply: dy, w1, w2, then
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> bsaved: array<f32>;
@group(0) @binding(5) var<storage, read> bpart: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw1: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw2: array<f32>;

#include "lib/grid.wgsl"
#include "lib/sum_wg.wgsl"

var<workgroup> wa: array<f32, WG>;
var<workgroup> wb: array<f32, WG>;

// The workgroup's plane = n*C + c, folded over y and z.
struct Site { plane: u32, n: u32, c: u32 }

fn site(wid: vec3u, nwg: vec3u) -> Site {
  let plane = folded_yz(wid, nwg);
  return Site(plane, plane / u.c, plane % u.c);
}

fn chunk_end(s: u32) -> u32 {
  return min(s * u.chunk + u.chunk, u.p);
}

// The hidden layer's matrix-vector products spread over the workgroup: invocation t holds the
// share (terms j = t/hd mod groups) of hidden unit t % hd; this adds the shares of unit t < hd
// (0 for other invocations). Call in uniform control flow.
fn hidden_total(share: f32, t: u32) -> f32 {
  wa[t] = share;
  workgroupBarrier();
  var z = 0.0;
  if (t < u.hidden) {
    for (var g = 0u; g < WG / u.hidden; g++) { z += wa[g * u.hidden + t]; }
  }
  return z;
}

// Forward pass 1: partial plane sums.
@compute @workgroup_size(WG)
fn pool(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = folded_yz(wid, nwg);
  if (plane >= u.n * u.c) { return; }
  var acc = 0.0;
  for (var j = wid.x * u.chunk + lid.x; j < chunk_end(wid.x); j += WG) { acc += x[plane * u.p + j]; }
  let t = sum_wg(acc, lid.x);
  if (lid.x == 0u) { pool_out[plane * u.splits + wid.x] = t; }
}

// Tiled forward pass 1: the rectangle's partial plane sums, added to what earlier tiles left.
// Each (plane, split) slot belongs to one workgroup, and dispatches run in order, so there is no race.
@compute @workgroup_size(WG)
fn pool_rect(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = folded_yz(wid, nwg);
  if (plane >= r.planes) { return; }
  let end = min(wid.x * r.chunk + r.chunk, r.rw * r.rh);
  let base = plane * r.p + r.ry * r.width + r.rx;
  var acc = 0.0;
  for (var j = wid.x * r.chunk + lid.x; j < end; j += WG) { acc += x[base + (j / r.rw) * r.width + j % r.rw]; }
  let t = sum_wg(acc, lid.x);
  if (lid.x == 0u) { pool_out[plane * r.parts + wid.x] += t; }
}

// Backward pass 1: partial plane sums of dy * x (the gate's gradient).
@compute @workgroup_size(WG)
fn sums(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = folded_yz(wid, nwg);
  if (plane >= u.n * u.c) { return; }
  let base = plane * u.p;
  var acc = 0.0;
  for (var j = wid.x * u.chunk + lid.x; j < chunk_end(wid.x); j += WG) { acc += x[base + j] * sdy[base + j]; }
  let t = sum_wg(acc, lid.x);
  if (lid.x == 0u) { sums_out[plane * u.splits + wid.x] = t; }
}

fn mean_of(m: u32, j: u32) -> f32 {
  let o = (m * u.c + j) * u.parts;
  var t = 0.0;
  for (var s = 0u; s < u.parts; s++) { t += part[o + s]; }
  return t / f32(u.count);
}

// Forward pass 2: the gate of this (n, c) from the pooled partials, then y = x * gate (+ res).
@compute @workgroup_size(WG)
fn apply(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let at = site(wid, nwg);
  if (at.plane >= u.n * u.c) { return; }
  let hd = u.hidden;
  let groups = WG / hd;
  let t = lid.x;
  // z1[k] = sum_j W1[k, j] s[j].
  var acc = 0.0;
  if (t < groups * hd) {
    for (var j = t / hd; j < u.c; j += groups) { acc += w1[(t % hd) * u.c + j] * mean_of(at.n, j); }
  }
  let z1 = hidden_total(acc, t);
  if (t < hd) {
    wb[t] = max(z1, 0.0) * w2[at.c * hd + t];
    if (u.save == 1u && at.c == 0u && wid.x == 0u) { saved[u.n * u.c + at.n * hd + t] = z1; }
  }
  workgroupBarrier();
  var z2 = 0.0;
  for (var k = 0u; k < hd; k++) { z2 += wb[k]; }
  let gate = 1.0 / (1.0 + exp(-z2));
  if (u.save == 1u && wid.x == 0u && t == 0u) {
    saved[at.plane] = mean_of(at.n, at.c);
    saved[u.n * (u.c + hd) + at.plane] = gate;
  }
  let base = at.plane * u.p;
  for (var j = wid.x * u.chunk + t; j < chunk_end(wid.x); j += WG) {
    var v = x[base + j] * gate;
    if (u.residual == 1u) { v += res[base + j]; }
    y[base + j] = v;
  }
}

// d loss / d z2 for sample m, channel j.
fn dz2_of(m: u32, j: u32) -> f32 {
  let o = (m * u.c + j) * u.splits;
  var t = 0.0;
  for (var s = 0u; s < u.splits; s++) { t += bpart[o + s]; }
  let g = bsaved[u.n * (u.c + u.hidden) + m * u.c + j];
  return g * (1.0 - g) * t;
}

// Backward pass 2: dz1 for this sample (all samples for the weight-gradient workgroups), then
// dx = dy * gate + (W1^T dz1)[c] / P over the chunk.
@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let at = site(wid, nwg);
  if (at.plane >= u.n * u.c) { return; }
  let hd = u.hidden;
  let groups = WG / hd;
  let t = lid.x;
  let designated = u.wgrad == 1u && wid.x == 0u && at.n == 0u;
  let m1 = select(at.n + 1u, u.n, designated);
  var acc1 = 0.0; // dW1[t, c]
  var acc2 = 0.0; // dW2[c, t]
  var ds = 0.0;
  for (var m = select(at.n, 0u, designated); m < m1; m++) {
    // dh[k] = sum_j W2[j, k] dz2[j].
    var acc = 0.0;
    if (t < groups * hd) {
      for (var j = t / hd; j < u.c; j += groups) { acc += w2[j * hd + t % hd] * dz2_of(m, j); }
    }
    let dh = hidden_total(acc, t);
    if (t < hd) {
      let z1 = bsaved[u.n * u.c + m * hd + t];
      let dz1 = select(0.0, dh, z1 > 0.0);
      wb[t] = dz1;
      if (designated) {
        acc1 += dz1 * bsaved[m * u.c + at.c];
        acc2 += dz2_of(m, at.c) * max(z1, 0.0);
      }
    }
    workgroupBarrier();
    if (m == at.n) {
      for (var k = 0u; k < hd; k++) { ds += w1[k * u.c + at.c] * wb[k]; }
    }
  }
  if (designated && t < hd) {
    dw1[t * u.c + at.c] = acc1;
    dw2[at.c * hd + t] = acc2;
  }
  let gate = bsaved[u.n * (u.c + hd) + at.plane];
  let dsp = ds / f32(u.p);
  let base = at.plane * u.p;
  for (var j = wid.x * u.chunk + t; j < chunk_end(wid.x); j += WG) { dx[base + j] = dy[base + j] * gate + dsp; }
}
