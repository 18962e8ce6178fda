// Weight and bias gradients of conv2d (all but the entry `wgrad_nhwc` and how it fetches dy,
// `dyValues`, which the two includers define: conv2d_wgrad.wgsl and, on adapters with subgroups,
// conv2d_wgrad_subgroup.wgsl), split-K: the reduction over (image, output row, column)
// is cut into splits, one per workgroup z; each writes partial sums to Part[split][...], and a
// second pass (entry `sum_parts`) adds them.
//
//   dW[co, ci, tap] = sum_{n, oy, ox} dy[n, co, oy, ox] * x[n, ci, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw]
//
// Entry `wgrad` (register tiles, software adapters): one tap per workgroup; lanes walk the
// output pixels of the split (consecutive columns, so both operands are read contiguously across
// lanes) and each invocation keeps a TU x TV tile (output x input channels) of partial sums over
// its pixels, written out per lane. Which columns of a row land inside the image for this tap
// is computed once per row.
//
// Entry `wgrad_nhwc` (register tiles, software adapters, wide layers): the same reduction over
// NHWC copies of x and dy (entry `to_nhwc`). One tap per workgroup; lanes run over input channels
// (TV per lane), so a pixel's x values are contiguous across lanes and its dy values (TU output
// channels) are the same for every lane: the loop body is the forward kernel's, TU x TV FMAs per
// pixel. lavapipe still loads a uniform value lane by lane; the subgroup variant loads each once
// per subgroup and broadcasts it (lib/subgroup_share.wgsl), 2-2.3x faster there.
//
// Entry `wgrad_nhwc4`: the same with named vec4 accumulators (for SwiftShader; see below).
//
// Entry `wgrad_tiled` (workgroup memory, real GPUs): a GEMM over (co) x (ci*KK + tap) with the
// pixels as the reduction, staged through BK-deep tiles so both operands are read coalesced
// along the pixel axis.
//
// Entry `bias_grad`: partial per-channel sums of dy over the same row splits.

override WG_X: u32 = 8u;
override WG_Y: u32 = 1u;
override TU: u32 = 16u;      // registers: output channels per invocation, a multiple of 4, <= 16
override TV: u32 = 16u;      // registers: input channels per invocation, <= 16; TU * TV <= 256
override TM: u32 = 4u;       // tiled: output channels per invocation (<= 8)
override TN: u32 = 4u;       // tiled: (ci, tap) columns per invocation (<= 8)
override BK: u32 = 16u;      // tiled: pixels staged per step
override SA: u32 = 1u;       // tiled: BK * WG_Y * TM
override SB: u32 = 1u;       // tiled: BK * WG_X * TN

struct Params {
  Ci: u32, H: u32, W: u32, Co: u32,
  Ho: u32, Wo: u32, KH: u32, KW: u32,
  sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, rows: u32, rowsPerSplit: u32, // rows = images in this group * Ho
  xOff: u32, dyOff: u32, partOff: u32, ciTiles: u32,
  CoP: u32,                                       // wgrad_nhwc: channel stride of the NHWC dy
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> DY: array<f32>;
@group(0) @binding(3) var<storage, read_write> Part: array<f32>;

var<workgroup> As: array<f32, SA>;
var<workgroup> Bs: array<f32, SB>;

const WG = 64u; // the 1-D entries' workgroup size (sum_parts, to_nhwc; lib/grid.wgsl)
#include "grid.wgsl"

const TILE_M = 8u; // wgrad_tiled's register tile capacity: TM, TN <= 8
const TILE_N = 8u;
#include "gemm_tile.wgsl"

// The register paths' tile (output x input channels) and its update.
alias RegTile = array<array<f32, 16>, 16>;

// Rows 4*u4 .. 4*u4+3 of acc += d[row] * xv: four rows per step, as lavapipe's NIR only unrolls
// loops this size when the body is wide.
fn fma_rows4(acc: ptr<function, RegTile>, u4: u32, d: vec4f, xv: ptr<function, array<f32, 16>>) {
  for (var v = 0u; v < TV; v++) {
    (*acc)[4u * u4][v] = fma(d.x, (*xv)[v], (*acc)[4u * u4][v]);
    (*acc)[4u * u4 + 1u][v] = fma(d.y, (*xv)[v], (*acc)[4u * u4 + 1u][v]);
    (*acc)[4u * u4 + 2u][v] = fma(d.z, (*xv)[v], (*acc)[4u * u4 + 2u][v]);
    (*acc)[4u * u4 + 3u][v] = fma(d.w, (*xv)[v], (*acc)[4u * u4 + 3u][v]);
  }
}

// The rows [first, end) of split z (grid z): each split sums its own rows into its Part slice.
fn split_rows(z: u32) -> vec2u {
  return vec2u(z * p.rowsPerSplit, min((z + 1u) * p.rowsPerSplit, p.rows));
}

// Tap `tap`'s input offsets (y, x) for output (0, 0), and the output columns [lo, hi) whose input
// column ox*sw + xShift lies in [0, W).
struct TapWindow { yShift: i32, xShift: i32, lo: u32, hi: u32 }

fn tap_window(tap: u32) -> TapWindow {
  let xShift = i32(tap % p.KW) * p.dw - p.pw;
  let last = i32(p.W) - 1 - xShift;
  let hi = select(0u, min(u32(last / p.sw) + 1u, p.Wo), last >= 0);
  return TapWindow(i32(tap / p.KW) * p.dh - p.ph, xShift, u32(max(0, (-xShift + p.sw - 1) / p.sw)), hi);
}

@compute @workgroup_size(WG_X)
fn wgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let lane = lid.x;
  let HW = p.H * p.W;
  let HWo = p.Ho * p.Wo;
  let KK = p.KH * p.KW;
  let tap = wg.x / p.ciTiles;
  let ci0 = (wg.x % p.ciTiles) * TV;
  let co0 = wg.y * TU;
  let tw = tap_window(tap);
  var cu: array<u32, 16>;
  for (var u = 0u; u < TU; u++) { cu[u] = min(co0 + u, p.Co - 1u) * HWo; }
  var cv: array<u32, 16>;
  for (var v = 0u; v < TV; v++) { cv[v] = min(ci0 + v, p.Ci - 1u) * HW; }
  var acc: RegTile;
  let rows = split_rows(wg.z);
  for (var r = rows.x; r < rows.y; r++) {
    let n = r / p.Ho;
    let oy = r % p.Ho;
    let iy = i32(oy) * p.sh + tw.yShift;
    if (iy < 0 || iy >= i32(p.H)) { continue; }
    let dyRow = p.dyOff + n * p.Co * HWo + oy * p.Wo;
    let xRow = i32(p.xOff + n * p.Ci * HW + u32(iy) * p.W) + tw.xShift;
    for (var ox0 = tw.lo; ox0 < tw.hi; ox0 += WG_X) {
      // Lanes past the end reread the last column and add zero: a masked branch here would make
      // every accumulator update a blend on lavapipe.
      let ox = min(ox0 + lane, tw.hi - 1u);
      let live = ox0 + lane < tw.hi;
      let xi = u32(xRow + i32(ox) * p.sw);
      var dv: array<f32, 16>;
      var xv: array<f32, 16>;
      for (var u = 0u; u < TU; u++) { dv[u] = select(0.0, DY[dyRow + cu[u] + ox], live); }
      for (var v = 0u; v < TV; v++) { xv[v] = X[xi + cv[v]]; }
      for (var u4 = 0u; u4 < TU / 4u; u4++) {
        fma_rows4(&acc, u4, vec4f(dv[4u * u4], dv[4u * u4 + 1u], dv[4u * u4 + 2u], dv[4u * u4 + 3u]), &xv);
      }
    }
  }
  // Each lane writes its own partial tile (Part[split][lane][co][ci][tap]); the reduction pass
  // adds lanes and splits together. (Adding the lanes here through workgroup memory costs little
  // at run time but makes lavapipe's compile of this kernel several times slower.)
  let base = p.partOff + (wg.z * WG_X + lane) * p.Co * p.Ci * KK;
  for (var u = 0u; u < TU; u++) {
    let co = co0 + u;
    if (co >= p.Co) { break; }
    for (var v = 0u; v < TV; v++) {
      let ci = ci0 + v;
      if (ci >= p.Ci) { break; }
      Part[base + (co * p.Ci + ci) * KK + tap] = acc[u][v];
    }
  }
}

@group(0) @binding(2) var<storage, read> DYT: array<vec4<f32>>;

// Row r of a split over the NHWC copies, for tap window tw: whether its input row lies inside the
// image, the offset in X of output column 0's input pixel (channel 0; may lie left of the row),
// and the offset in dy of (row, column 0, channel co0).
struct NhwcRow { inside: bool, x: i32, dy: u32 }

fn nhwc_row(r: u32, tw: TapWindow, co0: u32) -> NhwcRow {
  let n = r / p.Ho;
  let oy = r % p.Ho;
  let iy = i32(oy) * p.sh + tw.yShift;
  let x = i32(p.xOff + (n * p.H + u32(max(iy, 0))) * p.W * p.Ci) + tw.xShift * i32(p.Ci);
  return NhwcRow(iy >= 0 && iy < i32(p.H), x, p.dyOff + (n * p.Ho + oy) * p.Wo * p.CoP + co0);
}

// The entry `wgrad_nhwc` of the includers; `sgl` is the subgroup lane (0 without subgroups).
fn wgradNhwc(wg: vec3u, lane: u32, sgl: u32) {
  let KK = p.KH * p.KW;
  let tap = wg.x / p.ciTiles;
  let ci0 = (wg.x % p.ciTiles) * WG_X * TV + lane;
  let co0 = wg.y * TU;
  let tw = tap_window(tap);
  var cv: array<u32, 16>;
  for (var v = 0u; v < TV; v++) { cv[v] = min(ci0 + v * WG_X, p.Ci - 1u); }
  var acc: RegTile;
  let rows = split_rows(wg.z);
  for (var r = rows.x; r < rows.y; r++) {
    let row = nhwc_row(r, tw, co0);
    if (!row.inside) { continue; }
    for (var ox = tw.lo; ox < tw.hi; ox++) {
      let xb = u32(row.x + i32(ox * p.Ci) * p.sw);
      var xv: array<f32, 16>;
      for (var v = 0u; v < TV; v++) { xv[v] = X[xb + cv[v]]; }
      let d = dyValues((row.dy + ox * p.CoP) / 4u, sgl);
      for (var u4 = 0u; u4 < TU / 4u; u4++) {
        fma_rows4(&acc, u4, vec4f(d[4u * u4], d[4u * u4 + 1u], d[4u * u4 + 2u], d[4u * u4 + 3u]), &xv);
      }
    }
  }
  // Lanes past the last input channel computed exactly the sums of channel Ci-1 (clamped loads),
  // so their stores repeat its value: no per-lane branch needed (it would slow the compile).
  let base = p.partOff + wg.z * p.Co * p.Ci * KK + tap;
  for (var u = 0u; u < TU; u++) {
    let co = co0 + u;
    if (co >= p.Co) { break; }
    for (var v = 0u; v < TV; v++) { Part[base + (co * p.Ci + cv[v]) * KK] = acc[u][v]; }
  }
}

// Entry `wgrad_nhwc4`: wgrad_nhwc with its tile in named vec4 accumulators: TU/4 Rows (4 output
// channels each) by TV = 4 or 8 input channels per lane (lib/vec4_rows.wgsl: SwiftShader keeps
// RegTile, an array indexed inside the loops, in memory).
#include "vec4_rows.wgsl"

// Row `a` (output channels co0..co0+3 by the lane's input channels cv) into Part.
fn storePart(a: Row, base: u32, co0: u32, cv: array<u32, 8>) {
  let KK = p.KH * p.KW;
  let cols = rowColumns(a);
  for (var k = 0u; k < 4u; k++) {
    let co = co0 + k;
    if (co >= p.Co) { return; }
    for (var v = 0u; v < TV; v++) { Part[base + (co * p.Ci + cv[v]) * KK] = cols[v][k]; }
  }
}

@compute @workgroup_size(WG_X)
fn wgrad_nhwc4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let KK = p.KH * p.KW;
  let tap = wg.x / p.ciTiles;
  let ci0 = (wg.x % p.ciTiles) * WG_X * TV + lid.x;
  let co0 = wg.y * TU;
  let tw = tap_window(tap);
  // The lane's input channels ci0 + v*WG_X, clamped as in wgrad_nhwc (the lanes past Ci - 1
  // store channel Ci - 1's sums again).
  let step = vec4(0u, 1u, 2u, 3u) * WG_X;
  let cvLo = min(vec4(ci0) + step, vec4(p.Ci - 1u));
  let cvHi = min(vec4(ci0 + 4u * WG_X) + step, vec4(p.Ci - 1u));
  var a0: Row;
  var a1: Row;
  var a2: Row;
  var a3: Row;
  let rows = split_rows(wg.z);
  for (var r = rows.x; r < rows.y; r++) {
    let row = nhwc_row(r, tw, co0);
    if (!row.inside) { continue; }
    for (var ox = tw.lo; ox < tw.hi; ox++) {
      let xb = u32(row.x + i32(ox * p.Ci) * p.sw);
      let xl = vec4(X[xb + cvLo.x], X[xb + cvLo.y], X[xb + cvLo.z], X[xb + cvLo.w]);
      var xh = vec4(0.0);
      if (TV > 4u) { xh = vec4(X[xb + cvHi.x], X[xb + cvHi.y], X[xb + cvHi.z], X[xb + cvHi.w]); }
      let d0 = (row.dy + ox * p.CoP) / 4u;
      rowMac(&a0, DYT[d0], xl, xh, TV > 4u);
      if (TU > 4u) { rowMac(&a1, DYT[d0 + 1u], xl, xh, TV > 4u); }
      if (TU > 8u) {
        rowMac(&a2, DYT[d0 + 2u], xl, xh, TV > 4u);
        rowMac(&a3, DYT[d0 + 3u], xl, xh, TV > 4u);
      }
    }
  }
  let base = p.partOff + wg.z * p.Co * p.Ci * KK + tap;
  let cv = array(cvLo.x, cvLo.y, cvLo.z, cvLo.w, cvHi.x, cvHi.y, cvHi.z, cvHi.w);
  storePart(a0, base, co0, cv);
  if (TU > 4u) { storePart(a1, base, co0 + 4u, cv); }
  if (TU > 8u) {
    storePart(a2, base, co0 + 8u, cv);
    storePart(a3, base, co0 + 12u, cv);
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn wgrad_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let HW = p.H * p.W;
  let HWo = p.Ho * p.Wo;
  let KK = p.KH * p.KW;
  let NC = p.Ci * KK;
  let t = stage_lane(lid);
  let co0 = wg.y * BM;
  let c0 = wg.x * BN;
  // This split's pixels: rows [r0, r1) of the group, flattened with the columns.
  let rows = split_rows(wg.z);
  let k0 = rows.x * p.Wo;
  let k1 = rows.y * p.Wo;
  var acc: Tile;
  for (var kb = k0; kb < k1; kb += BK) {
    for (var e = t; e < BK * BM; e += NT) {
      let k = kb + e % BK;
      let m = co0 + e / BK;
      var v = 0.0;
      if (k < k1 && m < p.Co) {
        let r = k / p.Wo;
        v = DY[p.dyOff + ((r / p.Ho) * p.Co + m) * HWo + (r % p.Ho) * p.Wo + k % p.Wo];
      }
      As[(e % BK) * BM + e / BK] = v;
    }
    for (var e = t; e < BK * BN; e += NT) {
      let k = kb + e % BK;
      let col = c0 + e / BK;
      var v = 0.0;
      if (k < k1 && col < NC) {
        let r = k / p.Wo;
        let ci = col / KK;
        let tap = col % KK;
        let iy = i32(r % p.Ho) * p.sh - p.ph + i32(tap / p.KW) * p.dh;
        let ix = i32(k % p.Wo) * p.sw - p.pw + i32(tap % p.KW) * p.dw;
        if (iy >= 0 && iy < i32(p.H) && ix >= 0 && ix < i32(p.W)) {
          v = X[p.xOff + ((r / p.Ho) * p.Ci + ci) * HW + u32(iy) * p.W + u32(ix)];
        }
      }
      Bs[(e % BK) * BN + e / BK] = v;
    }
    mma_staged(&acc, lid);
  }
  let base = p.partOff + wg.z * p.Co * NC;
  for (var i = 0u; i < TM; i++) {
    let m = co0 + lid.y * TM + i;
    if (m >= p.Co) { break; }
    for (var j = 0u; j < TN; j++) {
      let col = c0 + lid.x + j * WG_X;
      if (col >= NC) { break; }
      Part[base + m * NC + col] = acc[i][j];
    }
  }
}

// Bias gradient partials: Part[split][co] = sum of dy[n, co, row, :] over the split's rows.
// One lane per (split, channel); the loop stays within one split (split-K again).
struct BiasParams { Co: u32, Ho: u32, Wo: u32, rows: u32, rowsPerSplit: u32, dyOff: u32, partOff: u32 }

@group(0) @binding(0) var<uniform> bp: BiasParams;
@group(0) @binding(1) var<storage, read> DYb: array<f32>;
@group(0) @binding(2) var<storage, read_write> PartB: array<f32>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let splits = (bp.rows + bp.rowsPerSplit - 1u) / bp.rowsPerSplit;
  if (i >= splits * bp.Co) { return; }
  let split = i / bp.Co;
  let co = i % bp.Co;
  let HWo = bp.Ho * bp.Wo;
  let r0 = split * bp.rowsPerSplit;
  let r1 = min(r0 + bp.rowsPerSplit, bp.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    let row = bp.dyOff + ((r / bp.Ho) * bp.Co + co) * HWo + (r % bp.Ho) * bp.Wo;
    for (var ox = 0u; ox < bp.Wo; ox++) { s += DYb[row + ox]; }
  }
  PartB[bp.partOff + split * bp.Co + co] = s;
}

// The second pass: out[i] = sum over r < rows of Part[r * len + i] (splits, and lanes per split).
struct SumParams { len: u32, rows: u32 }

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> Parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> Total: array<f32>;

@compute @workgroup_size(WG)
fn sum_parts(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= sp.len) { return; }
  var s = 0.0;
  for (var r = 0u; r < sp.rows; r++) { s += Parts[r * sp.len + i]; }
  Total[i] = s;
}

// NCHW -> NHWC copy of a batch group (channel stride CP >= C; the padding is zero-filled).
struct NhwcParams { C: u32, HW: u32, CP: u32, inOff: u32 }

@group(0) @binding(0) var<uniform> tp: NhwcParams;
@group(0) @binding(1) var<storage, read> Tin: array<f32>;
@group(0) @binding(2) var<storage, read_write> Tout: array<f32>;

@compute @workgroup_size(WG)
fn to_nhwc(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let pix = flat_index(wid, lid, nwg);
  if (pix >= tp.HW) { return; }
  let n = wid.z;
  let src = tp.inOff + n * tp.C * tp.HW + pix;
  let dst = (n * tp.HW + pix) * tp.CP;
  for (var c = 0u; c < tp.C; c++) { Tout[dst + c] = Tin[src + c * tp.HW]; }
  for (var c = tp.C; c < tp.CP; c++) { Tout[dst + c] = 0.0; }
}
