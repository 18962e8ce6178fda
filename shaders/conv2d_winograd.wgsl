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
// uniform across the workgroup (they depend on the channel tile only), so lavapipe loads them once
// per SIMD row, as in conv2d.wgsl's register path.
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> U: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

const WG = 64u; // the 1-D entries' workgroup size (transform; lib/grid.wgsl)
#include "lib/grid.wgsl"

const MAX_TT = 4u;
const ACC = 64u; // vec4 accumulators: TT * 16 * TM / 4 <= 64

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
  // reused for every input channel).
  var org: array<vec2<u32>, MAX_TT>;
  var off: array<u32, 64>;
  var ok: array<bool, 64>;
  for (var t = 0u; t < TT; t++) {
    let tile = min(t0 + t * WG_X, nt - 1u);
    let y0 = tileStart(tile / p.TC, p.dh);
    let x0 = tileStart(tile % p.TC, p.dw);
    org[t] = vec2(y0, x0);
    for (var j = 0u; j < 4u; j++) {
      let iy = i32(y0) - p.ph + i32(j * p.dh);
      for (var i = 0u; i < 4u; i++) {
        let ix = i32(x0) - p.pw + i32(i * p.dw);
        let k = t * 16u + j * 4u + i;
        ok[k] = iy >= 0 && iy < i32(p.Hi) && ix >= 0 && ix < i32(p.Wi);
        off[k] = xb + select(0u, u32(iy) * p.Wi + u32(ix), ok[k]);
      }
    }
  }
  var acc: array<vec4<f32>, ACC>;
  let C4 = p.CoP / 4u;
  for (var c = 0u; c < p.Ci; c++) {
    // V = B^T d B per tile, as 4 rows of 4.
    var v: array<vec4<f32>, 16>;
    for (var t = 0u; t < TT; t++) {
      var d: array<vec4<f32>, 4>;
      for (var j = 0u; j < 4u; j++) {
        let k = t * 16u + j * 4u;
        d[j] = vec4(
          select(0.0, X[off[k] + c * HWi], ok[k]),
          select(0.0, X[off[k + 1u] + c * HWi], ok[k + 1u]),
          select(0.0, X[off[k + 2u] + c * HWi], ok[k + 2u]),
          select(0.0, X[off[k + 3u] + c * HWi], ok[k + 3u]));
      }
      v[t * 4u] = colT(d[0] - d[2]);
      v[t * 4u + 1u] = colT(d[1] + d[2]);
      v[t * 4u + 2u] = colT(d[2] - d[1]);
      v[t * 4u + 3u] = colT(d[1] - d[3]);
    }
    // M[e][co] += U[c][e][co] * V[e]: U as vec4s over 4 output channels.
    let u0 = (p.uOff / 4u) + c * 16u * C4 + co0 / 4u;
    for (var e = 0u; e < 16u; e++) {
      for (var c4 = 0u; c4 < TM / 4u; c4++) {
        let u = U[u0 + e * C4 + c4];
        for (var t = 0u; t < TT; t++) {
          let a = (t * 16u + e) * (TM / 4u) + c4;
          acc[a] = fma(u, vec4(v[t * 4u + e / 4u][e % 4u]), acc[a]);
        }
      }
    }
  }
  // Y = A^T M A per tile, 4 output channels at a time, then the epilogue.
  let HWq = p.Hq * p.Wq;
  let yb = p.yOff + n * p.Co * HWq;
  for (var t = 0u; t < TT; t++) {
    if (t0 + t * WG_X >= nt) { break; }
    let y0 = org[t].x;
    let x0 = org[t].y;
    let y1 = y0 + p.dh;
    let x1 = x0 + p.dw;
    if (y0 >= p.Hq || x0 >= p.Wq) { continue; }
    for (var c4 = 0u; c4 < TM / 4u; c4++) {
      let b = t * 16u * (TM / 4u) + c4;
      let s = TM / 4u; // stride between transform-domain elements
      let r00 = acc[b] + acc[b + 4u * s] + acc[b + 8u * s];
      let r01 = acc[b + s] + acc[b + 5u * s] + acc[b + 9u * s];
      let r02 = acc[b + 2u * s] + acc[b + 6u * s] + acc[b + 10u * s];
      let r03 = acc[b + 3u * s] + acc[b + 7u * s] + acc[b + 11u * s];
      let r10 = acc[b + 4u * s] - acc[b + 8u * s] - acc[b + 12u * s];
      let r11 = acc[b + 5u * s] - acc[b + 9u * s] - acc[b + 13u * s];
      let r12 = acc[b + 6u * s] - acc[b + 10u * s] - acc[b + 14u * s];
      let r13 = acc[b + 7u * s] - acc[b + 11u * s] - acc[b + 15u * s];
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
