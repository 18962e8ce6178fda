// Direct convolution as an implicit GEMM, for the forward pass and the input gradient (dgrad): all
// of it but the entry `conv` and how its register tiles fetch weights (`tileWeights`), which the
// two includers define: conv2d.wgsl (every adapter) and conv2d_subgroup.wgsl (adapters with
// subgroups).
//
//   out[n, m, q] = act(bias[m] + sum_b sum_tap sum_c in[n, c, src_b(q, tap)] * Wp[b][c*KK + tap][m])
//
// or, with an affine epilogue (inference with BatchNorm folded in, entry `fold`), Bias holds
// [scale | shift | slope] per channel: out = act(acc * scale[m] + shift[m]), act 3 = PReLU; with
// `residual` the epilogue then adds a skip connection read from Res (a tensor of the output's shape).
//
// The forward pass reads x and writes y; dgrad reads dy and writes dx with the same code in
// "transposed" index mode (see `src`). Weights come pre-packed (entry `pack`) as
// Wp[branch][c*KK + tap][m], with m padded to CoP (a multiple of the channel tile), so a tile of
// output channels is contiguous. Up to four branches (same kernel size, own padding/dilation)
// accumulate into one output: multiDilationConv runs its three dilated convolutions in one pass.
//
// Three strategies: the entry `conv_rows` (vec4 rows, below), and in the entry `conv` two picked by
// the SMEM override (src/kernels/conv/config.ts chooses per adapter and shape, the tuner by timing):
//  * SMEM = false (software adapters): a 1-D workgroup of WG_X invocations; each invocation keeps
//    a TM x TN register tile (TM output channels of the workgroup's channel tile x TN pixels, its
//    lane's pixel plus every WG_X-th after it). Weight addresses depend only on the workgroup, but
//    lavapipe still loads them lane by lane (a bounds-checked scalar load per lane and component):
//    that is what conv2d_subgroup.wgsl saves. No workgroup memory and no barriers (a barrier is a
//    coroutine switch on lavapipe).
//  * SMEM = true (real GPUs): a WG_X x WG_Y workgroup stages BK-deep slices of the weight tile
//    (BM = WG_Y*TM channels) and of the im2col input tile (BN = WG_X*TN pixels) in workgroup
//    memory; each invocation accumulates a TM x TN register tile from them.

override WG_X: u32 = 64u;
override WG_Y: u32 = 1u;
override TM: u32 = 16u;      // output channels per invocation: a multiple of 4, at most 16
override TN: u32 = 16u;      // output pixels per invocation: at most 32, TM * TN <= 256
override BK: u32 = 16u;      // SMEM: reduction slice staged per step
override SMEM: bool = false;
override DIV: bool = false;  // dgrad with stride > 1: keep only taps that land on the stride grid
override POINTWISE: bool = false; // 1x1, stride 1, no padding: a plain GEMM over pixels (no tap indexing)
override SA: u32 = 1u;       // SMEM: workgroup floats for the weight slice (BK * WG_Y * TM)
override SB: u32 = 1u;       // SMEM: workgroup floats for the input slice (BK * WG_X * TN)

struct Params {
  Ci: u32, Hi: u32, Wi: u32, Co: u32,     // input operand channels/size, output channels
  Hq: u32, Wq: u32, KH: u32, KW: u32,     // output size, kernel size
  CoP: u32, NB: u32, xOff: u32, yOff: u32, // padded output channels, branches, window offsets
  sh: i32, sw: i32, divh: i32, divw: i32, // output-to-input step, and the transposed-mode stride
  ph: vec4<i32>, pw: vec4<i32>,           // per-branch offsets subtracted (negated pad in dgrad)
  dh: vec4<i32>, dw: vec4<i32>,           // per-branch tap steps (negated dilation in dgrad)
  alpha: f32,                             // leakyRelu slope
  act: u32,                               // epilogue: 0 none, 1 relu, 2 leakyRelu, 3 PReLU (affine only)
  hasBias: u32,
  affine: u32,                            // Bias is [scale | shift | slope] (3 x Co)
  residual: u32,                          // the epilogue adds Res[rOff + same index as Y] (a skip connection)
  rOff: u32,
  skipTap: u32,                           // branches after the first skip this tap (merged centre taps; see merge_centers)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read> Res: array<f32>;

var<workgroup> As: array<f32, SA>;
var<workgroup> Bs: array<f32, SB>;

const WG = 64u; // the 1-D entries' workgroup size (pack; lib/grid.wgsl)
#include "grid.wgsl"

const TILE_M = 16u; // register tile capacity: TM <= 16, TN <= 32
const TILE_N = 32u;
#include "gemm_tile.wgsl"

// Input coordinate along one axis for output coordinate q*step: raw = q*step - pad + k*dil,
// then (dgrad with stride > 1: DIV, div = stride) raw must be a multiple of div. Returns -1 when
// outside the input. Without DIV there is no integer division (lavapipe emulates it per lane).
fn src(raw: i32, div: i32, size: u32) -> i32 {
  var c = raw;
  if (DIV) {
    c = raw / div;
    if (c * div != raw) { return -1; }
  }
  return select(-1, c, raw >= 0 && c < i32(size));
}

// The epilogue's per-channel terms of channel m: scale, shift (the bias without the affine form)
// and the PReLU slope. Without the affine form scale = 1, shift = bias.
fn channelTerms(m: u32) -> vec3<f32> {
  if (p.affine != 0u) { return vec3(Bias[m], Bias[p.Co + m], Bias[2u * p.Co + m]); }
  return vec3(1.0, select(0.0, Bias[m], p.hasBias != 0u), p.alpha);
}

// One output value through the epilogue: act(acc * scale + shift), then the residual; `at` is its
// index in Y.
fn finish(acc: f32, t: vec3<f32>, at: u32) -> f32 {
  var v = acc * t.x + t.y;
  if (p.act == 1u) { v = max(v, 0.0); }
  if (p.act >= 2u) { v = select(v * t.z, v, v > 0.0); } // 2 leakyRelu (alpha), 3 PReLU (affine slopes)
  if (p.residual != 0u) { v += Res[p.rOff + at - p.yOff]; }
  return v;
}

// Output pixels q0 + j*WG_X (j < TN) of channels co0 + i (i < TM) of image n from the tile.
// The per-channel terms are loaded once per channel, not per pixel (lavapipe checks every load);
// pixels stay the outer loop (channel-outer stores ran 1.5x slower on lavapipe).
fn store(acc: ptr<function, Tile>, n: u32, q0: u32, co0: u32) {
  let HWq = p.Hq * p.Wq;
  let yb = p.yOff + n * p.Co * HWq;
  var terms: array<vec3<f32>, TILE_M>;
  for (var i = 0u; i < TM; i++) { terms[i] = channelTerms(min(co0 + i, p.Co - 1u)); }
  for (var j = 0u; j < TN; j++) {
    let q = q0 + j * WG_X;
    if (q >= HWq) { break; }
    for (var i = 0u; i < TM; i++) {
      let m = co0 + i;
      if (m >= p.Co) { break; }
      let at = yb + m * HWq + q;
      Y[at] = finish((*acc)[i][j], terms[i], at);
    }
  }
}

// Whether branch b's tap (ky, kx) was folded into branch 0's (merged centre taps, merge_centers).
fn mergedAway(b: u32, ky: u32, kx: u32) -> bool {
  return b > 0u && ky * p.KW + kx == p.skipTap;
}

// `sgl` is the invocation's subgroup lane where the includer shares weights across a subgroup
// (conv2d_subgroup.wgsl), else 0; `tileWeights` is the includer's.
fn convRegisters(wg: vec3u, lane: u32, sgl: u32) {
  let HWq = p.Hq * p.Wq;
  let HWi = p.Hi * p.Wi;
  let KK = p.KH * p.KW;
  // Workgroup x runs over channel tiles, so the tiles sharing one pixel tile run back to back.
  let co0 = wg.x * TM;
  let n = wg.z;
  let q0 = wg.y * WG_X * TN + lane;
  var qy: array<i32, 32>;
  var qx: array<i32, 32>;
  for (var j = 0u; j < TN; j++) {
    let q = min(q0 + j * WG_X, HWq - 1u);
    qy[j] = i32(q / p.Wq) * p.sh;
    qx[j] = i32(q % p.Wq) * p.sw;
  }
  var acc: Tile;
  let xb = p.xOff + n * p.Ci * HWi;
  for (var b = 0u; b < p.NB; b++) {
    let wb = b * p.Ci * KK * p.CoP + co0;
    for (var ky = 0u; ky < p.KH; ky++) {
      for (var kx = 0u; kx < p.KW; kx++) {
        if (mergedAway(b, ky, kx)) { continue; }
        var off: array<u32, 32>;
        var ok: array<bool, 32>;
        for (var j = 0u; j < TN; j++) {
          if (POINTWISE) {
            off[j] = xb + min(q0 + j * WG_X, HWq - 1u);
          } else {
            let iy = src(qy[j] - p.ph[b] + i32(ky) * p.dh[b], p.divh, p.Hi);
            let ix = src(qx[j] - p.pw[b] + i32(kx) * p.dw[b], p.divw, p.Wi);
            ok[j] = iy >= 0 && ix >= 0;
            off[j] = xb + select(0u, u32(iy) * p.Wi + u32(ix), ok[j]);
          }
        }
        let tap = ky * p.KW + kx;
        for (var c = 0u; c < p.Ci; c++) {
          var xv: array<f32, 32>;
          for (var j = 0u; j < TN; j++) {
            if (POINTWISE) { xv[j] = X[off[j] + c * HWi]; } else { xv[j] = select(0.0, X[off[j] + c * HWi], ok[j]); }
          }
          let w = tileWeights((wb + (c * KK + tap) * p.CoP) / 4u, sgl);
          for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) { acc[i][j] = fma(w[i], xv[j], acc[i][j]); }
          }
        }
      }
    }
  }
  store(&acc, n, q0, co0);
}

// ---- vec4 rows (algo 'vec4') -------------------------------------------------------------------
// Stride-1 passes. Each invocation owns TN (4 or 8) neighbouring pixels of one output row for TM
// (4, 8 or 16) output channels, as TM/4 Rows of named vec4 accumulators (vec4_rows.wgsl: an
// array indexed inside the loops would live in memory on SwiftShader, where the register-tile
// kernel above ran about 5x slower than this one). The lanes of a workgroup share their channels,
// so weight loads are uniform, as in convRegisters.
#include "vec4_rows.wgsl"

// Four input pixels of channel plane `base` at offsets `o`, zero where `ok` is 0.
fn gather4(base: u32, o: vec4<u32>, ok: vec4<f32>) -> vec4<f32> {
  return vec4(X[base + o.x], X[base + o.y], X[base + o.z], X[base + o.w]) * ok;
}

// Offsets within a channel plane of four pixels on input row iy at columns ix (0 outside), and
// their 0/1 mask.
fn rowOffsets(iy: i32, ix: vec4<i32>) -> array<vec4<u32>, 2> {
  let ok = (ix >= vec4(0)) & (ix < vec4(i32(p.Wi))) & vec4(iy >= 0 && iy < i32(p.Hi));
  return array(select(vec4(0u), vec4<u32>(iy * i32(p.Wi) + ix), ok), select(vec4(0u), vec4(1u), ok));
}

// Channels m0..m0+3 of pixels x0..x0+TN-1 on output row y from one accumulator row.
fn storeRow(a: Row, n: u32, y: u32, x0: u32, m0: u32) {
  let HWq = p.Hq * p.Wq;
  let px = rowColumns(a);
  for (var k = 0u; k < 4u; k++) {
    let m = m0 + k;
    if (m >= p.Co) { return; }
    let t = channelTerms(m);
    for (var j = 0u; j < TN; j++) {
      if (x0 + j >= p.Wq) { break; }
      let at = p.yOff + (n * p.Co + m) * HWq + y * p.Wq + x0 + j;
      Y[at] = finish(px[j][k], t, at);
    }
  }
}

@compute @workgroup_size(WG_X)
fn conv_rows(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let perRow = (p.Wq + TN - 1u) / TN;
  let r = wg.y * WG_X + lid.x;
  if (r >= p.Hq * perRow) { return; } // no barriers below
  let y = r / perRow;
  let x0 = (r % perRow) * TN;
  let co0 = wg.x * TM;
  let n = wg.z;
  let HWi = p.Hi * p.Wi;
  let KK = p.KH * p.KW;
  let xb = p.xOff + n * p.Ci * HWi;
  let cq = p.CoP / 4u;
  var a0: Row;
  var a1: Row;
  var a2: Row;
  var a3: Row;
  for (var b = 0u; b < p.NB; b++) {
    let wb = (b * p.Ci * KK * p.CoP + co0) / 4u;
    for (var ky = 0u; ky < p.KH; ky++) {
      let iy = i32(y) - p.ph[b] + i32(ky) * p.dh[b];
      for (var kx = 0u; kx < p.KW; kx++) {
        if (mergedAway(b, ky, kx)) { continue; }
        let ix = vec4(i32(x0)) - p.pw[b] + i32(kx) * p.dw[b] + vec4(0, 1, 2, 3);
        let lo = rowOffsets(iy, ix);
        let hi = rowOffsets(iy, ix + 4);
        let okLo = vec4<f32>(lo[1]);
        let okHi = vec4<f32>(hi[1]);
        let tap = ky * p.KW + kx;
        for (var c = 0u; c < p.Ci; c++) {
          let base = xb + c * HWi;
          let xl = gather4(base, lo[0], okLo);
          var xh = vec4(0.0);
          if (TN > 4u) { xh = gather4(base, hi[0], okHi); }
          let w0 = wb + (c * KK + tap) * cq;
          rowMac(&a0, Wv[w0], xl, xh, TN > 4u);
          if (TM > 4u) { rowMac(&a1, Wv[w0 + 1u], xl, xh, TN > 4u); }
          if (TM > 8u) {
            rowMac(&a2, Wv[w0 + 2u], xl, xh, TN > 4u);
            rowMac(&a3, Wv[w0 + 3u], xl, xh, TN > 4u);
          }
        }
      }
    }
  }
  storeRow(a0, n, y, x0, co0);
  if (TM > 4u) { storeRow(a1, n, y, x0, co0 + 4u); }
  if (TM > 8u) {
    storeRow(a2, n, y, x0, co0 + 8u);
    storeRow(a3, n, y, x0, co0 + 12u);
  }
}

fn packed(i: u32) -> f32 {
  return Wv[i / 4u][i % 4u];
}

fn convTiled(wg: vec3u, lid: vec3u) {
  let HWq = p.Hq * p.Wq;
  let HWi = p.Hi * p.Wi;
  let KK = p.KH * p.KW;
  let K = p.Ci * KK;
  let t = stage_lane(lid);
  let co0 = wg.x * BM;
  let q0 = wg.y * BN;
  let n = wg.z;
  let xb = p.xOff + n * p.Ci * HWi;
  var acc: Tile;
  for (var b = 0u; b < p.NB; b++) {
    let wb = b * K * p.CoP;
    for (var k0 = 0u; k0 < K; k0 += BK) {
      for (var e = t; e < BK * BM; e += NT) {
        let k = k0 + e / BM;
        let m = co0 + e % BM;
        As[e] = select(0.0, packed(wb + k * p.CoP + m), k < K && m < p.CoP);
      }
      for (var e = t; e < BK * BN; e += NT) {
        let k = k0 + e / BN;
        let q = q0 + e % BN;
        var v = 0.0;
        if (k < K && q < HWq) {
          let c = k / KK;
          let tap = k % KK;
          let iy = src(i32(q / p.Wq) * p.sh - p.ph[b] + i32(tap / p.KW) * p.dh[b], p.divh, p.Hi);
          let ix = src(i32(q % p.Wq) * p.sw - p.pw[b] + i32(tap % p.KW) * p.dw[b], p.divw, p.Wi);
          if (iy >= 0 && ix >= 0) { v = X[xb + c * HWi + u32(iy) * p.Wi + u32(ix)]; }
        }
        Bs[e] = v;
      }
      mma_staged(&acc, lid);
    }
  }
  store(&acc, n, q0 + lid.x, co0 + lid.y * TM);
}

// ---- weight packing -------------------------------------------------------------------------
// OIHW weights of one branch -> Wp[k][m] (m padded to MP with zeros) at element offset `dst`.
// Forward: k = ci*KK + tap, m = co. Dgrad (transposed): k = co*KK + tap, m = ci.
// With `compose`, the branch weight is first multiplied by its column block of a 1x1 fuse weight:
// W'[o, ci, tap] = sum_c Wf[o, fOff + c] * W[c, ci, tap] (multiDilationConv), Co = rows of Wf.

struct PackParams {
  Co: u32, Ci: u32, KK: u32, MP: u32,
  dst: u32, transposed: u32, total: u32, compose: u32,
  C: u32, fStride: u32, fOff: u32,
}

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> Wsrc: array<f32>;
@group(0) @binding(2) var<storage, read> Wfuse: array<f32>;
@group(0) @binding(3) var<storage, read_write> Wdst: array<f32>;

fn weightAt(o: u32, ci: u32, tap: u32) -> f32 {
  if (pk.compose == 0u) { return Wsrc[(o * pk.Ci + ci) * pk.KK + tap]; }
  var s = 0.0;
  for (var c = 0u; c < pk.C; c++) {
    s = fma(Wfuse[o * pk.fStride + pk.fOff + c], Wsrc[(c * pk.Ci + ci) * pk.KK + tap], s);
  }
  return s;
}

@compute @workgroup_size(WG)
fn pack(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= pk.total) { return; }
  let k = i / pk.MP;
  let m = i % pk.MP;
  let tap = k % pk.KK;
  var v = 0.0;
  if (pk.transposed == 0u) {
    if (m < pk.Co) { v = weightAt(m, k / pk.KK, tap); }
  } else {
    if (m < pk.Ci) { v = weightAt(k / pk.KK, m, tap); }
  }
  Wdst[pk.dst + i] = v;
}

// ---- merged centre taps ------------------------------------------------------------------------
// In a multi-branch conv (stride 1, odd kernel) every branch's centre tap reads the same input
// pixel (equal output sizes make pad - dil * (K-1)/2 equal), so branch 0's centre row of the packed
// weights takes the others' too and the kernels skip the others' centre taps (p.skipTap): 25 taps
// instead of 27 for three 3x3 branches. Rows are input (forward) or output (dgrad) channels.

struct MergeParams { rows: u32, KK: u32, MP: u32, center: u32, per: u32, NB: u32 }

@group(0) @binding(0) var<uniform> mc: MergeParams;
@group(0) @binding(1) var<storage, read_write> Wm: array<f32>;

@compute @workgroup_size(WG)
fn merge_centers(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= mc.rows * mc.MP) { return; }
  let at = ((i / mc.MP) * mc.KK + mc.center) * mc.MP + i % mc.MP;
  var s = Wm[at];
  for (var b = 1u; b < mc.NB; b++) { s += Wm[b * mc.per + at]; }
  Wm[at] = s;
}

// ---- fused bias -----------------------------------------------------------------------------
// out[o] (+)= sum_c Wf[o, fOff + c] * b[c], or out[o] (+)= b[o] with `identity`: builds
// b' = bf + sum_k Wf_k b_k for multiDilationConv, one dispatch per term.

struct FuseBiasParams { Co: u32, C: u32, fStride: u32, fOff: u32, accumulate: u32, identity: u32 }

@group(0) @binding(0) var<uniform> fb: FuseBiasParams;
@group(0) @binding(1) var<storage, read> Fw: array<f32>;
@group(0) @binding(2) var<storage, read> Fb: array<f32>;
@group(0) @binding(3) var<storage, read_write> Fout: array<f32>;

@compute @workgroup_size(64)
fn fuse_bias(@builtin(global_invocation_id) gid: vec3u) {
  let o = gid.x;
  if (o >= fb.Co) { return; }
  var s = select(0.0, Fout[o], fb.accumulate != 0u);
  if (fb.identity != 0u) {
    s += Fb[o];
  } else {
    for (var c = 0u; c < fb.C; c++) { s = fma(Fw[o * fb.fStride + fb.fOff + c], Fb[c], s); }
  }
  Fout[o] = s;
}

// ---- folded epilogue --------------------------------------------------------------------------
// The affine epilogue of a conv followed by eval-mode BatchNorm and PReLU:
//   scale = gamma / sqrt(var + eps), shift = beta + (bias - mean) * scale, slope = PReLU's
// (without BN: scale 1, shift bias; slopeN 0: none, 1: one shared slope, else one per channel).

struct FoldParams { Co: u32, hasBias: u32, hasBn: u32, slopeN: u32, eps: f32 }

@group(0) @binding(0) var<uniform> fp: FoldParams;
@group(0) @binding(1) var<storage, read> FoldBias: array<f32>;
@group(0) @binding(2) var<storage, read> BnW: array<f32>;
@group(0) @binding(3) var<storage, read> BnB: array<f32>;
@group(0) @binding(4) var<storage, read> BnMean: array<f32>;
@group(0) @binding(5) var<storage, read> BnVar: array<f32>;
@group(0) @binding(6) var<storage, read> Slope: array<f32>;
@group(0) @binding(7) var<storage, read_write> Aff: array<f32>;

@compute @workgroup_size(64)
fn fold(@builtin(global_invocation_id) gid: vec3u) {
  let m = gid.x;
  if (m >= fp.Co) { return; }
  let b = select(0.0, FoldBias[m], fp.hasBias != 0u);
  var scale = 1.0;
  var shift = b;
  if (fp.hasBn != 0u) {
    scale = BnW[m] / sqrt(BnVar[m] + fp.eps);
    shift = BnB[m] + (b - BnMean[m]) * scale;
  }
  Aff[m] = scale;
  Aff[fp.Co + m] = shift;
  Aff[2u * fp.Co + m] = select(select(Slope[m], Slope[0], fp.slopeN == 1u), 1.0, fp.slopeN == 0u);
}
