// C[M,N] = op(A) * op(B) (+ C when ACC), batched over a leading dimension. Each invocation keeps a
// TM x TN register tile; no workgroup memory, because on software adapters barriers cost more than
// the reloads they save (see src/kernels/matmul.ts for the tiling choice).

override TA: bool = false;   // A stored as [K, M]
override TB: bool = false;   // B stored as [N, K]
override ACC: bool = false;  // accumulate into C
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
const TM = 4u;
const TN = 4u;

struct Params { M: u32, N: u32, K: u32, batch_a: u32, batch_b: u32, batch_c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M) { return 0.0; }
  if (TA) { return A[base + k * p.M + m]; }
  return A[base + m * p.K + k];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (n >= p.N) { return 0.0; }
  if (TB) { return B[base + n * p.K + k]; }
  return B[base + k * p.N + n];
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let m0 = gid.y * TM;
  let n0 = gid.x * TN;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let ba = gid.z * p.batch_a;
  let bb = gid.z * p.batch_b;
  let bc = gid.z * p.batch_c;
  var acc: array<array<f32, TN>, TM>;
  for (var k = 0u; k < p.K; k++) {
    var a: array<f32, TM>;
    var b: array<f32, TN>;
    for (var i = 0u; i < TM; i++) { a[i] = loadA(ba, m0 + i, k); }
    for (var j = 0u; j < TN; j++) { b[j] = loadB(bb, k, n0 + j); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + j;
      if (n >= p.N) { break; }
      let o = bc + m * p.N + n;
      if (ACC) { C[o] = C[o] + acc[i][j]; } else { C[o] = acc[i][j]; }
    }
  }
}
