// A researcher's variant: a CBAM-style gate (channel attention, then spatial attention from a custom WGSL op) in place of SE.
//
// Loaded by `semi-drdnet experiment` for a variant `{ "module": "./cbam-gate.ts" }`: the named
// export `rainGate` is called once per rain residual block and returns the layer that replaces
// the block's SE gate. Channel attention is the library's SqueezeExcite; spatial attention (Woo et
// al., CBAM, 2018) pools every pixel's channels to [mean, max] with `channelPool` (a custom op with
// its own forward and backward kernels, below), convolves the two maps with a 7x7 conv and
// multiplies the features by the sigmoid of the result.
import { Conv2d, Module, SqueezeExcite, Tensor, defineOp, mul, sigmoid, type Engine, type Layer, type Op, type Rng } from 'semi-drdnet';

// One invocation per pixel; the 2-D grid keeps large images under the per-dimension workgroup limit.
const HEADER = /* wgsl */ `
struct P { n: u32, c: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn pixel(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 { return (wid.y * nwg.x + wid.x) * 64u + lid.x; }
// Pixel i = (sample n, position s): x[n, c, s] and y[n, k, s] (k 0: mean, 1: max).
fn x_at(i: u32, c: u32) -> u32 { return ((i / p.hw) * p.c + c) * p.hw + i % p.hw; }
fn y_at(i: u32, k: u32) -> u32 { return (2u * (i / p.hw) + k) * p.hw + i % p.hw; }
`;

const FORWARD = /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = pixel(wid, nwg, lid);
  if (i >= p.n * p.hw) { return; }
  var total = 0.0;
  var best = x[x_at(i, 0u)];
  for (var c = 0u; c < p.c; c++) {
    let v = x[x_at(i, c)];
    total += v;
    best = max(best, v);
  }
  y[y_at(i, 0u)] = total / f32(p.c);
  y[y_at(i, 1u)] = best;
}`;

// d mean / dx_c = 1/C for every channel; d max / dx_c = 1 for the first channel holding the maximum
// (the subgradient PyTorch's max picks too), 0 elsewhere.
const BACKWARD = /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = pixel(wid, nwg, lid);
  if (i >= p.n * p.hw) { return; }
  var arg = 0u;
  for (var c = 1u; c < p.c; c++) {
    if (x[x_at(i, c)] > x[x_at(i, arg)]) { arg = c; }
  }
  let gMean = dy[y_at(i, 0u)] / f32(p.c);
  let gMax = dy[y_at(i, 1u)];
  for (var c = 0u; c < p.c; c++) {
    dx[x_at(i, c)] = gMean + select(0.0, gMax, c == arg);
  }
}`;

/** Workgroups for one invocation per pixel, folded into two dimensions. */
function grid(engine: Engine, pixels: number): [number, number] {
  const groups = Math.ceil(pixels / 64);
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  return [Math.min(groups, max), Math.ceil(groups / max)];
}

/** [N,C,H,W] -> [N,2,H,W]: each pixel's mean and maximum over the channels. */
export const channelPool: Op<undefined> = defineOp<undefined>({
  name: 'channelPool',
  forward(ctx, [x]) {
    const [n, c, h, w] = x.shape;
    if (x.shape.length !== 4) throw new Error(`channelPool: expected [N,C,H,W], got [${x.shape.join(', ')}]`);
    ctx.save(x);
    const y = Tensor.empty(x.engine, [n, 2, h, w]);
    x.engine.dispatch({ label: 'channelPool', code: FORWARD, uniforms: { n, c, hw: h * w }, bindings: [x.binding(), y.binding()], workgroups: grid(x.engine, n * h * w) });
    return y;
  },
  backward(ctx, [dy]) {
    const [x] = ctx.saved;
    if (!dy || !ctx.needsGrad[0]) return [null];
    const [n, c, h, w] = x.shape;
    const dx = Tensor.empty(x.engine, x.shape);
    x.engine.dispatch({ label: 'channelPool.backward', code: BACKWARD, uniforms: { n, c, hw: h * w }, bindings: [x.binding(), dy.binding(), dx.binding()], workgroups: grid(x.engine, n * h * w) });
    return [dx];
  },
});

/** Channel attention (SE, named `channel`), then spatial attention (`spatial`: a 2->1 conv over [mean, max]). */
export class CbamGate extends Module implements Layer {
  readonly channel: SqueezeExcite;
  readonly spatial: Conv2d;
  constructor(engine: Engine, rng: Rng, channels: number, hidden: number, kernel = 7) {
    super();
    this.channel = this.child('channel', new SqueezeExcite(engine, rng, channels, hidden));
    this.spatial = this.child('spatial', new Conv2d(engine, rng, 2, 1, kernel, { padding: (kernel - 1) / 2 }));
  }
  forward(x: Tensor): Tensor {
    const h = this.channel.forward(x);
    const pooled = channelPool([h], undefined)[0];
    const logits = this.spatial.forward(pooled);
    const attention = sigmoid(logits);
    const out = mul(h, attention); // [N,1,H,W] broadcast over the channels
    for (const t of [h, pooled, logits, attention]) t.dispose();
    return out;
  }
}

/** What `rainGate` reads of the block context the experiment runner passes (a `BlockContext`). */
export interface GateContext {
  engine: Engine;
  rng: Rng;
  channels: number;
  config: { seHidden: number };
  options?: { kernel?: number };
}

/** The factory: one CBAM gate per rain residual block, with the SE width of the configuration. */
export function rainGate(ctx: GateContext): Layer {
  const kernel = ctx.options?.kernel ?? 7;
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) throw new Error(`cbam-gate: options.kernel must be an odd positive integer, got ${kernel}`);
  return new CbamGate(ctx.engine, ctx.rng, ctx.channels, ctx.config.seHidden, kernel);
}
