// In-place optimizer updates, one invocation per parameter element. PyTorch semantics: weight
// decay is added to the gradient (L2), Adam's bias corrections are folded into lr and eps on the host.

override WG: u32 = 256u;

struct SgdParams { n: u32, lr: f32, momentum: f32, weight_decay: f32, dampening: f32, first: u32 }

@group(0) @binding(0) var<uniform> sp: SgdParams;
@group(0) @binding(1) var<storage, read_write> sparam: array<f32>;
@group(0) @binding(2) var<storage, read> sgrad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sbuf: array<f32>;

#include "lib/grid.wgsl"

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= sp.n) { return; }
  var g = sgrad[i] + sp.weight_decay * sparam[i];
  if (sp.momentum != 0.0) {
    // PyTorch: the first step stores the gradient itself as the momentum buffer.
    let b = select(sp.momentum * sbuf[i] + (1.0 - sp.dampening) * g, g, sp.first == 1u);
    sbuf[i] = b;
    g = b;
  }
  sparam[i] = sparam[i] - sp.lr * g;
}

struct AdamParams { n: u32, step_size: f32, beta1: f32, beta2: f32, eps_hat: f32, weight_decay: f32 }

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> aparam: array<f32>;
@group(0) @binding(2) var<storage, read> agrad: array<f32>;
@group(0) @binding(3) var<storage, read_write> am: array<f32>;
@group(0) @binding(4) var<storage, read_write> av: array<f32>;

// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), written as step_size * m / (sqrt(v) + eps_hat)
// with step_size = lr*sqrt(bc2)/bc1 and eps_hat = eps*sqrt(bc2): the same value, one division.
@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(wid, lid, nwg);
  if (i >= ap.n) { return; }
  let g = agrad[i] + ap.weight_decay * aparam[i];
  let m = ap.beta1 * am[i] + (1.0 - ap.beta1) * g;
  let v = ap.beta2 * av[i] + (1.0 - ap.beta2) * g * g;
  am[i] = m;
  av[i] = v;
  aparam[i] = aparam[i] - ap.step_size * m / (sqrt(v) + ap.eps_hat);
}
