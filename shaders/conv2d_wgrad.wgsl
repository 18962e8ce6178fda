// Weight and bias gradients of conv2d, split-K: the reduction over (image, output row, column)
// is cut into splits, one per workgroup z; each writes partial sums to part[split][...], and a
// second pass (reduceSum over the split axis) adds them.
//
//   dW[co, ci, tap] = sum_{n, oy, ox} dy[n, co, oy, ox] * x[n, ci, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw]
//
// Entry `wgrad` (register tiles): the reduction index walks the output pixels in the same order
// in every lane, so one operand is uniform across the workgroup and the other is gathered per
// lane. LANES_CI: lanes run over input channels (dy is the uniform operand, TU output channels
// per invocation); otherwise lanes run over output channels (x is uniform, TU input channels).
// Each invocation also covers TT taps and TL lane channels: a TU x (TT*TL) accumulator tile.
// Whether a tap lands in the padding depends only on the pixel and the tap, so it is uniform.
//
// Entry `wgrad_tiled` (workgroup memory, real GPUs): a GEMM over (co) x (ci*KK + tap) with the
// pixels as the reduction, staged through BK-deep tiles so both operands are read coalesced
// along the pixel axis.
//
// Entry `bias_grad`: partial per-channel sums of dy over the same row splits.

override WG_X: u32 = 64u;
override WG_Y: u32 = 1u;
override TU: u32 = 16u;      // uniform channels per invocation, <= 16
override TT: u32 = 9u;       // taps per invocation, <= 16
override TL: u32 = 1u;       // lane channels per invocation, <= 4; TU * TT * TL <= 256
override LANES_CI: bool = true;
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
  xOff: u32, dyOff: u32, partOff: u32, tapTiles: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> DY: array<f32>;
@group(0) @binding(3) var<storage, read_write> Part: array<f32>;

var<workgroup> As: array<f32, SA>;
var<workgroup> Bs: array<f32, SB>;

@compute @workgroup_size(WG_X)
fn wgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let HW = p.H * p.W;
  let HWo = p.Ho * p.Wo;
  let KK = p.KH * p.KW;
  let CL = select(p.Co, p.Ci, LANES_CI);
  let CU = select(p.Ci, p.Co, LANES_CI);
  let l0 = wg.x * WG_X * TL + lid.x;
  let u0 = (wg.y / p.tapTiles) * TU;
  let t0 = (wg.y % p.tapTiles) * TT;
  var lc: array<u32, 4>;
  for (var j = 0u; j < TL; j++) { lc[j] = min(l0 + j * WG_X, CL - 1u); }
  var uc: array<u32, 16>;
  for (var u = 0u; u < TU; u++) { uc[u] = min(u0 + u, CU - 1u); }
  var tky: array<i32, 16>;
  var tkx: array<i32, 16>;
  for (var s = 0u; s < TT; s++) {
    let tap = min(t0 + s, KK - 1u);
    tky[s] = i32(tap / p.KW) * p.dh - p.ph;
    tkx[s] = i32(tap % p.KW) * p.dw - p.pw;
  }
  var acc: array<array<f32, 64>, 16>;
  let r0 = wg.z * p.rowsPerSplit;
  let r1 = min(r0 + p.rowsPerSplit, p.rows);
  for (var r = r0; r < r1; r++) {
    let n = r / p.Ho;
    let oy = r % p.Ho;
    let dyRow = p.dyOff + n * p.Co * HWo + oy * p.Wo;
    let xImg = p.xOff + n * p.Ci * HW;
    var iy: array<i32, 16>;
    for (var s = 0u; s < TT; s++) { iy[s] = i32(oy) * p.sh + tky[s]; }
    for (var ox = 0u; ox < p.Wo; ox++) {
      if (LANES_CI) {
        var dv: array<f32, 16>;
        for (var u = 0u; u < TU; u++) { dv[u] = DY[dyRow + uc[u] * HWo + ox]; }
        for (var s = 0u; s < TT; s++) {
          let ix = i32(ox) * p.sw + tkx[s];
          let ok = iy[s] >= 0 && iy[s] < i32(p.H) && ix >= 0 && ix < i32(p.W);
          let off = xImg + select(0u, u32(iy[s]) * p.W + u32(ix), ok);
          for (var j = 0u; j < TL; j++) {
            let xv = select(0.0, X[off + lc[j] * HW], ok);
            for (var u = 0u; u < TU; u++) { acc[u][s * TL + j] = fma(dv[u], xv, acc[u][s * TL + j]); }
          }
        }
      } else {
        var dv: array<f32, 4>;
        for (var j = 0u; j < TL; j++) { dv[j] = DY[dyRow + lc[j] * HWo + ox]; }
        for (var s = 0u; s < TT; s++) {
          let ix = i32(ox) * p.sw + tkx[s];
          let ok = iy[s] >= 0 && iy[s] < i32(p.H) && ix >= 0 && ix < i32(p.W);
          let off = xImg + select(0u, u32(iy[s]) * p.W + u32(ix), ok);
          for (var u = 0u; u < TU; u++) {
            let xv = select(0.0, X[off + uc[u] * HW], ok);
            for (var j = 0u; j < TL; j++) { acc[u][s * TL + j] = fma(xv, dv[j], acc[u][s * TL + j]); }
          }
        }
      }
    }
  }
  let base = p.partOff + wg.z * p.Co * p.Ci * KK;
  for (var u = 0u; u < TU; u++) {
    if (u0 + u >= CU) { break; }
    for (var s = 0u; s < TT; s++) {
      if (t0 + s >= KK) { break; }
      for (var j = 0u; j < TL; j++) {
        let l = l0 + j * WG_X;
        if (l >= CL) { break; }
        let co = select(l, u0 + u, LANES_CI);
        let ci = select(u0 + u, l, LANES_CI);
        Part[base + (co * p.Ci + ci) * KK + t0 + s] = acc[u][s * TL + j];
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn wgrad_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let HW = p.H * p.W;
  let HWo = p.Ho * p.Wo;
  let KK = p.KH * p.KW;
  let NC = p.Ci * KK;
  let BM = WG_Y * TM;
  let BN = WG_X * TN;
  let NT = WG_X * WG_Y;
  let t = lid.y * WG_X + lid.x;
  let co0 = wg.y * BM;
  let c0 = wg.x * BN;
  // This split's pixels: rows [r0, r1) of the group, flattened with the columns.
  let k0 = wg.z * p.rowsPerSplit * p.Wo;
  let k1 = min(p.rows, (wg.z + 1u) * p.rowsPerSplit) * p.Wo;
  var acc: array<array<f32, 8>, 8>;
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
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 8>;
      var b: array<f32, 8>;
      for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + lid.y * TM + i]; }
      for (var j = 0u; j < TN; j++) { b[j] = Bs[kk * BN + lid.x + j * WG_X]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
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
@group(0) @binding(1) var<storage, read> DYb: array<f32>;
@group(0) @binding(2) var<storage, read_write> PartB: array<f32>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let splits = (p.rows + p.rowsPerSplit - 1u) / p.rowsPerSplit;
  if (i >= splits * p.Co) { return; }
  let split = i / p.Co;
  let co = i % p.Co;
  let HWo = p.Ho * p.Wo;
  let r0 = split * p.rowsPerSplit;
  let r1 = min(r0 + p.rowsPerSplit, p.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    let row = p.dyOff + ((r / p.Ho) * p.Co + co) * HWo + (r % p.Ho) * p.Wo;
    for (var ox = 0u; ox < p.Wo; ox++) { s += DYb[row + ox]; }
  }
  PartB[p.partOff + split * p.Co + co] = s;
}
