// Winograd F(2x2,3x3) convolution for stride-1 3x3 kernels (any dilation), forward and dgrad, and its weight transform.
//
//   Y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A        (per output channel, per 2x2 output tile)
//
// Multiplies per output pixel and input channel drop from 9 to 4 (16 per 2x2 tile); the price is
// the input transform (shared by the TM output channels of an invocation) and 16 instead of 9
// weights per (output, input) channel pair.
//
// Dilation d: a dilated conv is a plain conv on each of the d x d interleaved sub-grids, so a
// tile's outputs are (y, y+d) x (x, x+d) and its 4x4 input patch is read at stride d. Tile row r
// is block b = r / d, offset o = r % d, output rows 2*d*b + o and 2*d*b + o + d (columns alike):
// d * ceil(H / 2d) tile rows cover every output row once for any d and H; the ragged edge (rows
// past H) is computed from zero padding and not stored.
//
// Dgrad is the forward conv of dy with the flipped, in/out-transposed weight (the host packs the
// transpose; `transform` flips) and padding 2d - pad.
//
// Register tiles only (entry `winograd`): a 1-D workgroup of WG_X invocations, each TT tiles x TM
// output channels, accumulated in the transform domain (16 x TM x TT floats). No workgroup memory
// and no barriers: a barrier is a coroutine switch on lavapipe. The transformed weights U are
// uniform across the workgroup (they depend on the channel tile only), though lavapipe still
// loads them lane by lane (lib/conv_direct.wgsl).
//
// Multi-branch convs (multiDilationConv) run one dispatch per branch: each branch needs its own
// tile layout (the output pairs are d apart), so branches after the first add to the output
// (`accumulate`) and only the last applies the epilogue.

override WG_X: u32 = 64u;
override TM: u32 = 8u;  // output channels per invocation: a multiple of 4, at most 16
override TT: u32 = 1u;  // 2x2 output tiles per invocation (at most 4); TM * TT <= 16

struct Params {
  Ci: u32, Hi: u32, Wi: u32, Co: u32,       // input operand channels/size, output channels
  Hq: u32, Wq: u32, CoP: u32, uOff: u32,    // output size, padded channels, this branch's U offset (floats)
  xOff: u32, yOff: u32, TR: u32, TC: u32,   // window offsets, tile rows and columns
  ph: i32, pw: i32, dh: u32, dw: u32,       // padding subtracted, input step (dilation)
  alpha: f32,                               // leakyRelu slope
  act: u32,                                 // 0 none, 1 relu, 2 leakyRelu, 3 PReLU (affine only)
  hasBias: u32,
  affine: u32,                              // Bias is [scale | shift | slope] (3 x Co)
  accumulate: u32,                          // add to Y (branches after the first)
  epilogue: u32,                            // apply bias/affine/activation (the last branch)
  residual: u32,                            // the epilogue adds Res[rOff + same index as Y] (a skip connection)
  rOff: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> U: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read> Res: array<f32>;

const WG = 64u; // the 1-D entries' workgroup size (transform; lib/grid.wgsl)
#include "lib/grid.wgsl"

const MAX_TT = 4u;
const ACC_G = 16u; // accumulator groups of 16 vec4s: TT * TM / 4 <= 16
override S: u32 = TM / 4u; // channel groups per tile

// The first output row (or column) of tile row r at dilation d: 2*d*(r / d) + r % d.
fn tileStart(r: u32, d: u32) -> u32 {
  return 2u * d * (r / d) + r % d;
}

// (B^T d B) of one row-combined vector: the column half of the input transform.
fn colT(r: vec4<f32>) -> vec4<f32> {
  return vec4(r.x - r.z, r.y + r.z, r.z - r.y, r.y - r.w);
}

@compute @workgroup_size(WG_X)
fn winograd(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let co0 = wg.x * TM;
  let n = wg.z;
  let HWi = p.Hi * p.Wi;
  let nt = p.TR * p.TC;
  let t0 = wg.y * WG_X * TT + lid.x;
  let xb = p.xOff + n * p.Ci * HWi;
  // Per tile: its origin, and the 16 patch offsets with their in-bounds flags (computed once,
  // reused for every input channel). Every array below is indexed by a loop's own counter and
  // constants: lavapipe then unrolls the loops and keeps the arrays in registers (a computed
  // index makes it gather per lane from the stack, several times slower).
  var org: array<vec2<u32>, MAX_TT>;
  var off: array<array<u32, 16>, MAX_TT>;
  var ok: array<array<bool, 16>, MAX_TT>;
  for (var t = 0u; t < TT; t++) {
    let tile = min(t0 + t * WG_X, nt - 1u);
    let y0 = tileStart(tile / p.TC, p.dh);
    let x0 = tileStart(tile % p.TC, p.dw);
    org[t] = vec2(y0, x0);
    for (var k = 0u; k < 16u; k++) {
      let iy = i32(y0) - p.ph + i32((k / 4u) * p.dh);
      let ix = i32(x0) - p.pw + i32((k % 4u) * p.dw);
      ok[t][k] = iy >= 0 && iy < i32(p.Hi) && ix >= 0 && ix < i32(p.Wi);
      off[t][k] = xb + select(0u, u32(iy) * p.Wi + u32(ix), ok[t][k]);
    }
  }
  // acc[t * S + c4][e]: tile t, channel group c4 (4 output channels), transform element e.
  var acc: array<array<vec4<f32>, 16>, ACC_G>;
  let C4 = p.CoP / 4u;
  for (var c = 0u; c < p.Ci; c++) {
    // V = B^T d B per tile, as 4 rows of 4.
    var v: array<array<vec4<f32>, 4>, MAX_TT>;
    for (var t = 0u; t < TT; t++) {
      var x: array<f32, 16>;
      for (var k = 0u; k < 16u; k++) { x[k] = select(0.0, X[off[t][k] + c * HWi], ok[t][k]); }
      let d0 = vec4(x[0], x[1], x[2], x[3]);
      let d1 = vec4(x[4], x[5], x[6], x[7]);
      let d2 = vec4(x[8], x[9], x[10], x[11]);
      let d3 = vec4(x[12], x[13], x[14], x[15]);
      v[t][0] = colT(d0 - d2);
      v[t][1] = colT(d1 + d2);
      v[t][2] = colT(d2 - d1);
      v[t][3] = colT(d1 - d3);
    }
    // M[e][co] += U[c][e][co] * V[e]: U as vec4s over 4 output channels (uniform across the
    // workgroup: lavapipe loads them once per SIMD row), each loaded once for all TT tiles
    // (SwiftShader loads per lane: there the loads, not the FMAs, take most of the time).
    let u0 = (p.uOff / 4u) + c * 16u * C4 + co0 / 4u;
    for (var s = 0u; s < S; s++) {
      for (var e = 0u; e < 16u; e++) {
        let u = U[u0 + s + e * C4];
        for (var t = 0u; t < TT; t++) {
          acc[t * S + s][e] = fma(u, vec4(v[t][e / 4u][e % 4u]), acc[t * S + s][e]);
        }
      }
    }
  }
  // Y = A^T M A per tile, 4 output channels at a time, then the epilogue.
  let HWq = p.Hq * p.Wq;
  let yb = p.yOff + n * p.Co * HWq;
  for (var g = 0u; g < TT * S; g++) {
    let t = g / S;
    let c4 = g % S;
    if (t0 + t * WG_X >= nt) { break; }
    let y0 = org[t].x;
    let x0 = org[t].y;
    let y1 = y0 + p.dh;
    let x1 = x0 + p.dw;
    if (y0 >= p.Hq || x0 >= p.Wq) { continue; }
    {
      let m4 = acc[g];
      let r00 = m4[0] + m4[4] + m4[8];
      let r01 = m4[1] + m4[5] + m4[9];
      let r02 = m4[2] + m4[6] + m4[10];
      let r03 = m4[3] + m4[7] + m4[11];
      let r10 = m4[4] - m4[8] - m4[12];
      let r11 = m4[5] - m4[9] - m4[13];
      let r12 = m4[6] - m4[10] - m4[14];
      let r13 = m4[7] - m4[11] - m4[15];
      var o: array<vec4<f32>, 4>;
      o[0] = r00 + r01 + r02; // (y0, x0)
      o[1] = r01 - r02 - r03; // (y0, x1)
      o[2] = r10 + r11 + r12; // (y1, x0)
      o[3] = r11 - r12 - r13; // (y1, x1)
      for (var i = 0u; i < 4u; i++) {
        let m = co0 + c4 * 4u + i;
        if (m >= p.Co) { break; }
        var scale = 1.0;
        var shift = 0.0;
        var slope = p.alpha;
        if (p.affine != 0u) {
          scale = Bias[m];
          shift = Bias[p.Co + m];
          slope = Bias[2u * p.Co + m];
        } else if (p.hasBias != 0u) {
          shift = Bias[m];
        }
        for (var q = 0u; q < 4u; q++) {
          let y = select(y0, y1, q >= 2u);
          let x = select(x0, x1, (q & 1u) == 1u);
          if (y >= p.Hq || x >= p.Wq) { continue; }
          let at = yb + m * HWq + y * p.Wq + x;
          var val = o[q][i];
          if (p.accumulate != 0u) { val += Y[at]; }
          if (p.epilogue != 0u) {
            val = val * scale + shift;
            if (p.act == 1u) { val = max(val, 0.0); }
            if (p.act >= 2u) { val = select(val * slope, val, val > 0.0); } // 2 leakyRelu (alpha), 3 PReLU (affine slopes)
            if (p.residual != 0u) { val += Res[p.rOff + at - p.yOff]; }
          }
          Y[at] = val;
        }
      }
    }
  }
}

// ---- weight transform ---------------------------------------------------------------------------
// Packed 3x3 weights Wp[b][c*9 + tap][m] (conv2d.wgsl `pack`: c the input operand's channel, m the
// output channel padded to MP) -> U[b][c][e][m] = (G g G^T)[e] with e = 4*row + column and
//   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
// `flip` reverses the taps (dgrad). Run every call: the weights change every training step.

struct XformParams { total: u32, MP: u32, flip: u32 }

@group(0) @binding(0) var<uniform> xf: XformParams;
@group(0) @binding(1) var<storage, read> Wp: array<f32>;
@group(0) @binding(2) var<storage, read_write> Uo: array<f32>;

// G applied to a 3-vector: (a, (a + b + c) / 2, (a - b + c) / 2, c).
fn gT(v: vec3<f32>) -> vec4<f32> {
  return vec4(v.x, 0.5 * (v.x + v.y + v.z), 0.5 * (v.x - v.y + v.z), v.z);
}

@compute @workgroup_size(WG)
fn transform(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= xf.total) { return; }
  let m = i % xf.MP;
  let bc = i / xf.MP; // b * C + c
  var g: array<vec3<f32>, 3>; // rows ky
  for (var ky = 0u; ky < 3u; ky++) {
    var row: vec3<f32>;
    for (var kx = 0u; kx < 3u; kx++) {
      let tap = select(ky * 3u + kx, 8u - ky * 3u - kx, xf.flip != 0u);
      row[kx] = Wp[(bc * 9u + tap) * xf.MP + m];
    }
    g[ky] = row;
  }
  // G g: 4 rows of 3, then each row times G^T.
  let gg = array<vec3<f32>, 4>(g[0], 0.5 * (g[0] + g[1] + g[2]), 0.5 * (g[0] - g[1] + g[2]), g[2]);
  for (var r = 0u; r < 4u; r++) {
    let u = gT(gg[r]);
    for (var col = 0u; col < 4u; col++) {
      Uo[(bc * 16u + r * 4u + col) * xf.MP + m] = u[col];
    }
  }
}
