// C[M,N] (+)= op(A)[M,K] * op(B)[K,N]. Three kernels share one binding layout (see
// src/kernels/matmul.ts for when each runs): `mm_register` (per-invocation register tiles, no barriers),
// `mm_panel` (register tiles whose right operand comes from a uniform-buffer window packed by `pack_b`;
// the fastest on software adapters) and `mm_shared` (workgroup-memory tiles, for real GPUs).
//
// Why uniform windows: on lavapipe every storage-buffer load is a per-lane scalar load with its own
// bounds check and branch, a uniform-buffer load is a branchless per-lane load (~3x cheaper), and
// the arithmetic itself is nearly free, so the kernels are shaped to minimise loads per FMA.

override TA: bool = false;  // A stored as [K, M]
override TB: bool = false;  // B stored as [N, K]
override VA: bool = false;  // vec4 loads of A: K % 4 == 0 (or M % 4 == 0 when TA)
override VB: bool = false;  // vec4 loads of B: N % 4 == 0 (or K % 4 == 0 when TB)
override WG: u32 = 32u;     // mm_register / mm_panel workgroup size

struct Params {
  M: u32, N: u32, K: u32,
  acc: u32,  // 1: C += product, 0: C = product
  lda: u32,  // mm_panel: row stride of A in vec4s
  k4: u32,   // mm_panel: first vec4 of this depth chunk; pack_*: padded depth
  kc4: u32,  // mm_panel: vec4s in this depth chunk; pack_b: depth chunks per column block
  n0: u32,   // mm_panel: first column of this window
  ws: u32,   // pack_b: floats between consecutive windows
}

// Bindings are positional (Engine.dispatch): every entry point uses 1..3, `mm_panel` also 4.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
@group(0) @binding(2) var<storage, read> B: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<uniform> W: array<vec4f, 4096>;

fn a1(i: u32) -> f32 { return A[i >> 2u][i & 3u]; }
fn b1(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }
fn opA(m: u32, k: u32) -> f32 { return a1(select(m * p.K + k, k * p.M + m, TA)); }
fn opB(k: u32, n: u32) -> f32 { return b1(select(k * p.N + n, n * p.K + k, TB)); }

fn put(m: u32, n: u32, v: f32) {
  if (m < p.M && n < p.N) {
    let o = m * p.N + n;
    if (p.acc != 0u) { C[o] += v; } else { C[o] = v; }
  }
}

// ---- mm_register: 4 rows (uniform across the workgroup) x 8 columns per invocation ----------------

// Rows r[i] of op(A) at depth k..k+3; column i of the result is row i.
fn tileA(r: vec4u, m0: u32, k: u32) -> mat4x4f {
  if (VA && !TA) {
    return mat4x4f(A[(r.x * p.K + k) >> 2u], A[(r.y * p.K + k) >> 2u], A[(r.z * p.K + k) >> 2u], A[(r.w * p.K + k) >> 2u]);
  }
  if (VA && TA) {
    // Stored [K, M] with M % 4 == 0: the four rows are one vec4 per depth (m0 % 4 == 0, m0 < M).
    let c = m0 >> 2u;
    let s = p.M >> 2u;
    return transpose(mat4x4f(A[k * s + c], A[(k + 1u) * s + c], A[(k + 2u) * s + c], A[(k + 3u) * s + c]));
  }
  var t: mat4x4f;
  for (var i = 0u; i < 4u; i++) {
    for (var d = 0u; d < 4u; d++) { t[i][d] = opA(r[i], k + d); }
  }
  return t;
}

// Depth k..k+3 of op(B) at columns c[0..3]; column d of the result is depth k+d.
fn tileB(c: vec4u, k: u32) -> mat4x4f {
  if (VB && !TB) {
    // Stored [K, N] with N % 4 == 0: four consecutive columns are one vec4 (c.x % 4 == 0).
    let s = p.N >> 2u;
    let q = c.x >> 2u;
    return mat4x4f(B[k * s + q], B[(k + 1u) * s + q], B[(k + 2u) * s + q], B[(k + 3u) * s + q]);
  }
  if (VB && TB) {
    // Stored [N, K] with K % 4 == 0: a column's four depths are one vec4.
    return transpose(mat4x4f(B[(c.x * p.K + k) >> 2u], B[(c.y * p.K + k) >> 2u], B[(c.z * p.K + k) >> 2u], B[(c.w * p.K + k) >> 2u]));
  }
  var t: mat4x4f;
  for (var d = 0u; d < 4u; d++) {
    for (var j = 0u; j < 4u; j++) { t[d][j] = opB(k + d, c[j]); }
  }
  return t;
}

@compute @workgroup_size(WG)
fn mm_register(@builtin(workgroup_id) wg: vec3u, @builtin(global_invocation_id) gid: vec3u) {
  let m0 = wg.y * 4u;
  let n0 = gid.x * 8u;
  // Clamped indices keep every load in bounds without branches; their results are never stored.
  let r = min(vec4u(m0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.M - 1u));
  let c0 = min(vec4u(n0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.N - 1u));
  let c1 = min(vec4u(n0) + vec4u(4u, 5u, 6u, 7u), vec4u(p.N - 1u));
  var acc: array<vec4f, 8>;  // acc[2i + h]: row i, columns 4h..4h+3
  let K4 = p.K >> 2u;
  for (var k4 = 0u; k4 < K4; k4++) {
    let k = k4 << 2u;
    let a = tileA(r, m0, k);
    let b0 = tileB(c0, k);
    let b1 = tileB(c1, k);
    for (var d = 0u; d < 4u; d++) {
      for (var i = 0u; i < 4u; i++) {
        let s = vec4f(a[i][d]);
        acc[2u * i] = fma(s, b0[d], acc[2u * i]);
        acc[2u * i + 1u] = fma(s, b1[d], acc[2u * i + 1u]);
      }
    }
  }
  for (var k = K4 << 2u; k < p.K; k++) {
    let b0 = vec4f(opB(k, c0.x), opB(k, c0.y), opB(k, c0.z), opB(k, c0.w));
    let b1 = vec4f(opB(k, c1.x), opB(k, c1.y), opB(k, c1.z), opB(k, c1.w));
    for (var i = 0u; i < 4u; i++) {
      let s = vec4f(opA(r[i], k));
      acc[2u * i] = fma(s, b0, acc[2u * i]);
      acc[2u * i + 1u] = fma(s, b1, acc[2u * i + 1u]);
    }
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 8u; j++) { put(m0 + i, n0 + j, acc[2u * i + j / 4u][j % 4u]); }
  }
}

// ---- mm_panel: 8 rows per invocation x the 16 columns of one packed window ---------------------------

// A window holds WK depths x 16 columns of op(B) (64 KiB, the default maxUniformBufferBindingSize).
const WK = 1024u;

@compute @workgroup_size(WG)
fn mm_panel(@builtin(global_invocation_id) gid: vec3u) {
  _ = &B;  // bound (positional layout) but unused: the columns come from W
  let m0 = gid.x * 8u;
  var ra: array<u32, 8>;  // vec4 index of each row's first depth in this chunk (rows clamped)
  for (var i = 0u; i < 8u; i++) { ra[i] = min(m0 + i, p.M - 1u) * p.lda + p.k4; }
  var acc: array<vec4f, 32>;  // acc[4i + h]: row i, columns 4h..4h+3 of the window
  for (var k4 = 0u; k4 < p.kc4; k4++) {
    var a: array<vec4f, 8>;
    for (var i = 0u; i < 8u; i++) { a[i] = A[ra[i] + k4]; }
    for (var d = 0u; d < 4u; d++) {
      let w = (k4 * 4u + d) * 4u;
      let b = mat4x4f(W[w], W[w + 1u], W[w + 2u], W[w + 3u]);
      for (var i = 0u; i < 8u; i++) {
        let s = vec4f(a[i][d]);
        for (var h = 0u; h < 4u; h++) { acc[4u * i + h] = fma(s, b[h], acc[4u * i + h]); }
      }
    }
  }
  for (var i = 0u; i < 8u; i++) {
    for (var j = 0u; j < 16u; j++) { put(m0 + i, p.n0 + j, acc[4u * i + j / 4u][j % 4u]); }
  }
}

// Packs op(B) into windows: window blk * kc4 + chunk, `ws` floats after the previous one, holds
// depths chunk*WK.. of columns blk*16.. as [depth][16], zero past K and N (windows of a short K
// overlap the next ones' bindings, which is harmless: the kernel reads only its depths).
@compute @workgroup_size(64)
fn pack_b(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = &A;
  let i = gid.x + gid.y * nwg.x * 64u;
  let kp = p.k4;
  if (i >= ((p.N + 15u) / 16u) * kp * 16u) { return; }
  let j = i % 16u;
  let k = (i / 16u) % kp;
  let blk = i / (16u * kp);
  let n = blk * 16u + j;
  var v = 0.0;
  if (k < p.K && n < p.N) { v = opB(k, n); }
  C[(blk * p.kc4 + k / WK) * p.ws + (k % WK) * 16u + j] = v;
}

// Packs op(A) as [M, padded depth] rows, zero past K, so `mm_panel` always loads aligned vec4s.
@compute @workgroup_size(64)
fn pack_a(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = &B;
  let i = gid.x + gid.y * nwg.x * 64u;
  let kp = p.k4;
  if (i >= p.M * kp) { return; }
  let k = i % kp;
  let m = i / kp;
  var v = 0.0;
  if (k < p.K) { v = opA(m, k); }
  C[i] = v;
}

// ---- mm_shared: 64x64 tiles in workgroup memory, 4x4 outputs per invocation (real GPUs) ---------------

const SK = 16u;                            // depth per stage
var<workgroup> sa: array<vec4f, SK * 16u>;  // [depth][64 rows / 4]
var<workgroup> sb: array<vec4f, SK * 16u>;  // [depth][64 columns / 4]

@compute @workgroup_size(16, 16)
fn mm_shared(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let t = lid.y * 16u + lid.x;
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  var acc: array<vec4f, 4>;  // acc[i]: row 4*lid.y + i, columns 4*lid.x..+3
  for (var k0 = 0u; k0 < p.K; k0 += SK) {
    for (var q = 0u; q < 4u; q++) {
      let e = t + q * 256u;
      // Consecutive invocations read consecutive addresses of the stored layout.
      let ar = select(e / SK, e % 64u, TA);
      let ad = select(e % SK, e / 64u, TA);
      var av = 0.0;
      if (m0 + ar < p.M && k0 + ad < p.K) { av = opA(m0 + ar, k0 + ad); }
      sa[ad * 16u + ar / 4u][ar % 4u] = av;
      let bc = select(e % 64u, e / SK, TB);
      let bd = select(e / 64u, e % SK, TB);
      var bv = 0.0;
      if (k0 + bd < p.K && n0 + bc < p.N) { bv = opB(k0 + bd, n0 + bc); }
      sb[bd * 16u + bc / 4u][bc % 4u] = bv;
    }
    workgroupBarrier();
    for (var d = 0u; d < SK; d++) {
      let a = sa[d * 16u + lid.y];
      let b = sb[d * 16u + lid.x];
      acc[0] = fma(vec4f(a.x), b, acc[0]);
      acc[1] = fma(vec4f(a.y), b, acc[1]);
      acc[2] = fma(vec4f(a.z), b, acc[2]);
      acc[3] = fma(vec4f(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) { put(m0 + 4u * lid.y + i, n0 + 4u * lid.x + j, acc[i][j]); }
  }
}
