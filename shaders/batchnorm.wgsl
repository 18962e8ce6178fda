// BatchNorm2d over NCHW, optionally fused with the PReLU that follows it: training statistics,
// normalisation with the in-place running-stat update, and the backward passes.
//
// Grid: workgroup (split, channel), the channel folded over y and z. Split s of channel c covers
// elements [s*chunk, min((s+1)*chunk, N*P)) of that channel in (n, p) order, so a workgroup walks
// a few contiguous plane segments and never divides per element. With one split per channel a
// single dispatch computes the statistics and then normalises (or, backward, reduces and then
// writes dx); with more, a partial pass runs first and every workgroup of the second pass merges
// its channel's partials itself, so there is never a separate "finalise" dispatch.
//
// Precision: sums run over (x - K) with K the channel's first value, each invocation shifts again
// by its own first value, and (count, mean, M2) partials combine with Chan's formula; so values
// like 1e6 + N(0,1) keep their variance, and the mean is kept as K + d rather than one f32.
//
// Saved stats, per channel (stride 6): K, d = mean - K, 1/sqrt(var + eps), gamma, beta, slope;
// forward partials (count, mean - K, M2) follow at 6*C + 3*(c*splits + s).

override WG: u32 = 256u;
override ACT: u32 = 0u;        // 1: PReLU after the affine
override TRAIN: bool = true;   // false: eval mode (running statistics, no update)
override SERIAL: bool = false; // one invocation merges partials: two barriers instead of log2(WG)

struct Params {
  n: u32, c: u32, p: u32,
  chunk: u32, splits: u32,
  shared_slope: u32,
  momentum: f32, eps: f32,
  width: u32, // power of two >= splits: how many lanes the partial merges need
}

@group(0) @binding(0) var<uniform> u: Params;

// forward (fwd_single, fwd_apply)
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> slope: array<f32>;
@group(0) @binding(5) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rvar: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> st: array<f32>;
// forward statistics pass (stats_partial): x, then
@group(0) @binding(2) var<storage, read_write> st_out: array<f32>;
// backward (bwd_single, bwd_apply; bwd_partial writes bpart_out): x, then
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> bst: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> bpart_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dslope: array<f32>;
@group(0) @binding(8) var<storage, read> bpart: array<f32>;

var<workgroup> wv: array<vec3f, WG>;

#include "lib/grid.wgsl"
#include "lib/segments.wgsl"

fn range_end(s: u32) -> u32 {
  return min(s * u.chunk + u.chunk, u.n * u.p);
}

// Chan et al.: merge (count, mean, M2) of two disjoint sets.
fn chan(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

fn combine(a: vec3f, b: vec3f, stats: bool) -> vec3f {
  if (stats) { return chan(a, b); }
  return a + b;
}

// Merge of lanes [0, width) (Chan triples when `stats`, else plain sums), width a power of two
// <= WG; call in uniform control flow.
fn reduce_wg(v: vec3f, lid: u32, stats: bool, width: u32) -> vec3f {
  wv[lid] = v;
  workgroupBarrier();
  if (SERIAL) {
    if (lid == 0u) {
      var acc = wv[0];
      for (var i = 1u; i < width; i++) { acc = combine(acc, wv[i], stats); }
      wv[0] = acc;
    }
    workgroupBarrier();
  } else {
    for (var s = width / 2u; s > 0u; s >>= 1u) {
      if (lid < s) { wv[lid] = combine(wv[lid], wv[lid + s], stats); }
      workgroupBarrier();
    }
  }
  return wv[0];
}

// (count, mean - K, M2) of this invocation's share of [j0, j1) of channel c.
fn local_stats(c: u32, K: f32, j0: u32, j1: u32, lid: u32) -> vec3f {
  var cnt = 0.0;
  var k = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var n = j0 / u.p; ; n++) {
    let seg = segment(n, c, j0, j1, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid; j < seg.hi; j += WG) {
      let v = x[seg.base + j] - K;
      k = select(k, v, cnt == 0.0);
      let t = v - k;
      s1 += t;
      s2 += t * t;
      cnt += 1.0;
    }
  }
  if (cnt == 0.0) { return vec3f(0.0); }
  return vec3f(cnt, k + s1 / cnt, max(s2 - s1 * s1 / cnt, 0.0));
}

fn slope_of(c: u32) -> u32 {
  return select(c, 0u, u.shared_slope == 1u);
}

// y over [j0, j1) of channel c; the first split also saves the stats and updates running ones.
fn normalize(c: u32, K: f32, d: f32, inv: f32, tot: vec3f, j0: u32, j1: u32, lid: u32, first: bool) {
  let g = gamma[c];
  let b = beta[c];
  let a = slope[slope_of(c)];
  if (first && lid == 0u) {
    let o = 6u * c;
    st[o] = K;
    st[o + 1u] = d;
    st[o + 2u] = inv;
    st[o + 3u] = g;
    st[o + 4u] = b;
    st[o + 5u] = a;
    if (TRAIN) {
      let m = u.momentum;
      rmean[c] = (1.0 - m) * rmean[c] + m * (K + d);
      rvar[c] = (1.0 - m) * rvar[c] + m * (tot.z / (tot.x - 1.0));
    }
  }
  let scale = g * inv;
  for (var n = j0 / u.p; ; n++) {
    let seg = segment(n, c, j0, j1, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid; j < seg.hi; j += WG) {
      var z = ((x[seg.base + j] - K) - d) * scale + b;
      if (ACT == 1u) { z = select(a * z, z, z > 0.0); }
      y[seg.base + j] = z;
    }
  }
}

fn inv_std(v: f32) -> f32 {
  return 1.0 / sqrt(v + u.eps);
}

// Training, one workgroup per channel: statistics, then normalisation (one dispatch).
@compute @workgroup_size(WG)
fn fwd_single(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let K = x[c * u.p];
  let m = u.n * u.p;
  let tot = reduce_wg(local_stats(c, K, 0u, m, lid.x), lid.x, true, WG);
  normalize(c, K, tot.y, inv_std(tot.z / tot.x), tot, 0u, m, lid.x, true);
}

// Training, split: one (count, mean - K, M2) partial per workgroup.
@compute @workgroup_size(WG)
fn stats_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let K = x[c * u.p];
  let s = wid.x;
  let tot = reduce_wg(local_stats(c, K, s * u.chunk, range_end(s), lid.x), lid.x, true, WG);
  let o = 6u * u.c + 3u * (c * u.splits + s);
  if (lid.x == 0u) { for (var i = 0u; i < 3u; i++) { st_out[o + i] = tot[i]; } }
}

// Training after stats_partial (merges the channel's partials first), or eval mode.
@compute @workgroup_size(WG)
fn fwd_apply(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let s = wid.x;
  var K: f32;
  var d = 0.0;
  var inv: f32;
  var tot = vec3f(0.0);
  if (TRAIN) {
    K = x[c * u.p];
    var v = vec3f(0.0);
    if (lid.x < u.splits) {
      let o = 6u * u.c + 3u * (c * u.splits + lid.x);
      v = vec3f(st[o], st[o + 1u], st[o + 2u]);
    }
    tot = reduce_wg(v, lid.x, true, u.width);
    d = tot.y;
    inv = inv_std(tot.z / tot.x);
  } else {
    K = rmean[c];
    inv = inv_std(rvar[c]);
  }
  normalize(c, K, d, inv, tot, s * u.chunk, range_end(s), lid.x, s == 0u);
}

// ---- backward ----------------------------------------------------------------------------------

struct Coef { K: f32, d: f32, inv: f32, g: f32, b: f32, a: f32 }

fn coef(c: u32) -> Coef {
  let o = 6u * c;
  return Coef(bst[o], bst[o + 1u], bst[o + 2u], bst[o + 3u], bst[o + 4u], bst[o + 5u]);
}

// Upstream gradient through the PReLU (dz) and the PReLU slope term, from recomputed z.
fn grad_z(k: Coef, xv: f32, g: f32) -> vec3f {
  let c0 = (xv - k.K) - k.d;
  let xh = c0 * k.inv;
  var dz = g;
  var q = 0.0;
  if (ACT == 1u) {
    let z = c0 * (k.g * k.inv) + k.b;
    let neg = z <= 0.0;
    q = select(0.0, g * z, neg);
    dz = select(g, g * k.a, neg);
  }
  return vec3f(dz, xh, q);
}

// (sum dz, sum dz*xhat, sum of the slope term) over this invocation's share of [j0, j1).
fn local_grads(c: u32, k: Coef, j0: u32, j1: u32, lid: u32) -> vec3f {
  var acc = vec3f(0.0);
  for (var n = j0 / u.p; ; n++) {
    let seg = segment(n, c, j0, j1, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid; j < seg.hi; j += WG) {
      let r = grad_z(k, x[seg.base + j], dy[seg.base + j]);
      acc += vec3f(r.x, r.x * r.y, r.z);
    }
  }
  return acc;
}

fn apply_grads(c: u32, k: Coef, tot: vec3f, j0: u32, j1: u32, lid: u32, first: bool) {
  if (first && lid == 0u) {
    dgamma[c] = tot.y;
    dbeta[c] = tot.x;
    dslope[c] = tot.z;
  }
  let m = f32(u.n * u.p);
  let scale = k.g * k.inv;
  let ma = tot.x / m;
  let mb = tot.y / m;
  for (var n = j0 / u.p; ; n++) {
    let seg = segment(n, c, j0, j1, u.c, u.p);
    if (seg.lo >= seg.hi) { break; }
    for (var j = seg.lo + lid; j < seg.hi; j += WG) {
      let r = grad_z(k, x[seg.base + j], dy[seg.base + j]);
      // Training: dx = gamma*invstd * (dz - mean(dz) - xhat * mean(dz*xhat)).
      if (TRAIN) { dx[seg.base + j] = scale * (r.x - ma - r.y * mb); } else { dx[seg.base + j] = scale * r.x; }
    }
  }
}

@compute @workgroup_size(WG)
fn bwd_single(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let k = coef(c);
  let m = u.n * u.p;
  let tot = reduce_wg(local_grads(c, k, 0u, m, lid.x), lid.x, false, WG);
  apply_grads(c, k, tot, 0u, m, lid.x, true);
}

@compute @workgroup_size(WG)
fn bwd_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let s = wid.x;
  let tot = reduce_wg(local_grads(c, coef(c), s * u.chunk, range_end(s), lid.x), lid.x, false, WG);
  let o = 3u * (c * u.splits + s);
  if (lid.x == 0u) { for (var i = 0u; i < 3u; i++) { bpart_out[o + i] = tot[i]; } }
}

@compute @workgroup_size(WG)
fn bwd_apply(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = folded_yz(wid, nwg);
  if (c >= u.c) { return; }
  let s = wid.x;
  var v = vec3f(0.0);
  if (lid.x < u.splits) {
    let o = 3u * (c * u.splits + lid.x);
    v = vec3f(bpart[o], bpart[o + 1u], bpart[o + 2u]);
  }
  let tot = reduce_wg(v, lid.x, false, u.width);
  apply_grads(c, coef(c), tot, s * u.chunk, range_end(s), lid.x, s == 0u);
}
