// Elementwise kernels: broadcasting binary ops, unary maps, their gradients, and fill.
// Shapes are padded to rank 4 on the host; broadcast dimensions carry stride 0.

override OP: u32 = 0u;
override WG: u32 = 256u;

struct BinaryParams {
  n: u32,
  s1: u32, s2: u32, s3: u32,          // output shape dims 1..3 (dim 0 is implied by n)
  a0: u32, a1: u32, a2: u32, a3: u32, // strides of a (0 where broadcast)
  b0: u32, b1: u32, b2: u32, b3: u32, // strides of b
}

@group(0) @binding(0) var<uniform> bp: BinaryParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

#include "lib/grid.wgsl"

// OP: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 expand (b broadcast to the output shape); four lanes
// at a time for the flat entry, the first of four for the broadcasting one.
fn binop(x: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    case 5u: { return y; }
    default: { return vec4(0.0); }
  }
}

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= bp.n) { return; }
  let c3 = i % bp.s3;
  let r2 = i / bp.s3;
  let c2 = r2 % bp.s2;
  let r1 = r2 / bp.s2;
  let c1 = r1 % bp.s1;
  let c0 = r1 / bp.s1;
  let x = a[c0 * bp.a0 + c1 * bp.a1 + c2 * bp.a2 + c3 * bp.a3];
  let y = b[c0 * bp.b0 + c1 * bp.b1 + c2 * bp.b2 + c3 * bp.b3];
  out[i] = binop(vec4(x), vec4(y)).x;
}

// Same-shape operands, four elements per invocation (n a multiple of 4): no index arithmetic,
// which matters on lavapipe, where the broadcasting entry's integer divisions and per-element
// loads are emulated lane by lane (a 4x16x96x96 add took 6 ms there).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn binary_flat(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= bp.n / 4u) { return; }
  out4[i] = binop(a4[i], b4[i]);
}

struct UnaryParams { n: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<uniform> up: UnaryParams;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read_write> uout: array<f32>;

// OP: 0 alpha*x+beta, 1 relu, 2 sigmoid, 3 exp, 4 log, 5 abs, 6 sign, 7 leaky relu (alpha = slope),
// 8 square, 9 sqrt
@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= up.n) { return; }
  var r: f32;
  let x = ux[i];
  switch OP {
    case 0u: { r = up.alpha * x + up.beta; }
    case 1u: { r = max(x, 0.0); }
    case 2u: { r = 1.0 / (1.0 + exp(-x)); }
    case 3u: { r = exp(x); }
    case 4u: { r = log(x); }
    case 5u: { r = abs(x); }
    case 6u: { r = sign(x); }
    case 7u: { r = select(up.alpha * x, x, x > 0.0); }
    case 8u: { r = x * x; }
    case 9u: { r = sqrt(x); }
    default: { r = 0.0; }
  }
  uout[i] = r;
}

// Gradients of unary maps: out = dy * f'(.), where `v` is the saved input x, or the output y
// where that is cheaper (sigmoid). OP: 1 relu(x), 2 sigmoid(y), 5 abs(x), 7 leaky relu(x).
@group(0) @binding(1) var<storage, read> gv: array<f32>;
@group(0) @binding(2) var<storage, read> gdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(WG)
fn unary_grad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= up.n) { return; }
  let v = gv[i];
  let dy = gdy[i];
  var r: f32;
  switch OP {
    case 1u: { r = select(0.0, dy, v > 0.0); }
    case 2u: { r = dy * v * (1.0 - v); }
    case 5u: { r = dy * sign(v); }
    case 7u: { r = select(up.alpha * dy, dy, v > 0.0); }
    default: { r = 0.0; }
  }
  gout[i] = r;
}

@group(0) @binding(1) var<storage, read_write> fout: array<f32>;

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= up.n) { return; }
  fout[i] = up.beta;
}
