// Float64 CPU reference of the whole DRD-Net (Semi-DRDNet backbone): forward, the supervised loss
// 0.1 * L1(O - R, B) + L1(O - R + D, B), and the gradient of that loss w.r.t. every trainable
// parameter, with weights keyed by the PyTorch state_dict names the model uses.
//
// It is written as a small tape: each op computes its output and records a closure that, given the
// output's gradient, accumulates the gradients of its inputs and parameters; backward replays the
// closures in reverse. Convolutions use a local direct loop (checked against ops.conv2d in
// test/parity.test.ts) because ops.conv2d's per-tap callback is too slow for the paper preset.
import type { DrdConfig } from '../../src/model/config';
import * as op from './ops';
import { refTensor, type RefTensor } from './tensor';

export type RefWeights = Map<string, Float64Array>;
export type RefMode = 'train' | 'eval';

export interface DrdReference {
  /** R = RRN(O). */
  rain: RefTensor;
  /** O - R. */
  derained: RefTensor;
  /** D = DRN(O) (or DRN(2O - R)); null without the detail branch. */
  detail: RefTensor | null;
  /** O - R + D. */
  final: RefTensor;
  loss: number;
  /** d loss / d parameter for every trainable parameter (empty when backward was skipped). */
  grads: Map<string, Float64Array>;
  /** running_mean / running_var after the step (updated in train mode, unchanged in eval mode). */
  runningStats: Map<string, Float64Array>;
  /** Named intermediates (module paths; branch heads as `<branch>.x0`), for locating a divergence. */
  activations: Map<string, RefTensor>;
  /** PReLU elements where `preluPositive` put the kink on the other side than float64 would. */
  kinkOverrides: number;
}

export interface DrdReferenceOptions {
  /** Skip the backward pass (loss only), e.g. for finite differences. Default true. */
  backward?: boolean;
  eps?: number;
  momentum?: number;
  /**
   * Per PReLU (module prefix), which side of the kink a float32 forward put each element on
   * (parityStep's preluPositive). Followed only where the float64 pre-activation is within
   * `kinkBand` x its layer's RMS of zero (default 1e-4, ~100x float32's forward error there), so
   * a float32 rounding that crossed the kink is matched and a wrong sign anywhere else is not.
   */
  preluPositive?: Map<string, ArrayLike<number>>;
  kinkBand?: number;
}

// ---------------------------------------------------------------------------------------------
// Parameter layout (names and shapes), mirroring src/model/drdnet.ts and the authors' PyTorch tree

export interface ParamSpec {
  name: string;
  shape: number[];
  /** 'param' = trainable; 'buffer' = BN running statistics. */
  kind: 'param' | 'buffer';
}

/** Every tensor of the state_dict (without num_batches_tracked), in PyTorch order. */
export function drdStateSpec(c: DrdConfig): ParamSpec[] {
  const C = c.channels;
  const out: ParamSpec[] = [];
  const p = (name: string, ...shape: number[]) => out.push({ name, shape, kind: 'param' });
  const conv = (name: string, cin: number, cout: number, k = 3) => (p(`${name}.weight`, cout, cin, k, k), p(`${name}.bias`, cout));
  const bn = (name: string) => {
    p(`${name}.weight`, C);
    p(`${name}.bias`, C);
    out.push({ name: `${name}.running_mean`, shape: [C], kind: 'buffer' }, { name: `${name}.running_var`, shape: [C], kind: 'buffer' });
  };
  const branch = (root: string, head: string, blocks: string, body: string, n: number, block: (b: string) => void) => {
    conv(`${root}.${head}.0`, 3, C);
    p(`${root}.${head}.1.weight`, C);
    for (let i = 0; i < n; i++) block(`${root}.${blocks}.${i}`);
    conv(`${root}.${body}.0`, C, C);
    bn(`${root}.${body}.1`);
    conv(`${root}.tail.0`, C, 3);
  };
  branch('rain_net.0', 'rain_net_head', 'rain_residual_blocks', 'rain_net_body', c.rainBlocks, (b) => {
    const h = `${b}.rain_residual_block_head`;
    conv(`${h}.0`, C, C);
    bn(`${h}.1`);
    p(`${h}.2.weight`, C);
    conv(`${h}.3`, C, C);
    bn(`${h}.4`);
    if (c.se) {
      p(`${b}.rain_residual_block_body.0.weight`, c.seHidden, C);
      p(`${b}.rain_residual_block_body.2.weight`, C, c.seHidden);
    }
  });
  if (c.detail) {
    const K = c.dilations.length;
    const dccl = (name: string) => {
      for (let k = 0; k < K; k++) conv(`${name}.conv${k + 1}.0`, C, C);
      conv(`${name}.conv${K + 1}.0`, C * K, C, 1);
    };
    branch('back_net.0', 'back_net_head', 'back_residual_blocks', 'back_net_body', c.detailBlocks, (b) => {
      const h = `${b}.back_residual_block_body`;
      dccl(`${h}.0`);
      bn(`${h}.1`);
      p(`${h}.2.weight`, C);
      dccl(`${h}.3`);
      bn(`${h}.4`);
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Direct stride-1 "same" convolution (padding = dilation * (k - 1) / 2), forward and backward

function convForward(x: RefTensor, w: Float64Array, b: Float64Array | null, cout: number, k: number, dil: number): RefTensor {
  const [n, cin, h, wd] = x.shape;
  const pad = (dil * (k - 1)) / 2;
  const plane = h * wd;
  const y = refTensor([n, cout, h, wd]);
  const xd = x.data;
  const yd = y.data;
  for (let nb = 0; nb < n; nb++) {
    for (let oc = 0; oc < cout; oc++) {
      const yb = (nb * cout + oc) * plane;
      if (b) yd.fill(b[oc], yb, yb + plane);
      for (let ic = 0; ic < cin; ic++) {
        const xb = (nb * cin + ic) * plane;
        for (let ky = 0; ky < k; ky++) {
          const dy = ky * dil - pad;
          const y0 = Math.max(0, -dy);
          const y1 = Math.min(h, h - dy);
          for (let kx = 0; kx < k; kx++) {
            const dx = kx * dil - pad;
            const x0 = Math.max(0, -dx);
            const x1 = Math.min(wd, wd - dx);
            const wv = w[((oc * cin + ic) * k + ky) * k + kx];
            for (let oy = y0; oy < y1; oy++) {
              const yo = yb + oy * wd;
              const xo = xb + (oy + dy) * wd + dx;
              for (let ox = x0; ox < x1; ox++) yd[yo + ox] += wv * xd[xo + ox];
            }
          }
        }
      }
    }
  }
  return y;
}

function convBackward(x: RefTensor, w: Float64Array, gy: Float64Array, cout: number, k: number, dil: number): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [n, cin, h, wd] = x.shape;
  const pad = (dil * (k - 1)) / 2;
  const plane = h * wd;
  const xd = x.data;
  const dx = new Float64Array(xd.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(cout);
  for (let nb = 0; nb < n; nb++) {
    for (let oc = 0; oc < cout; oc++) {
      const yb = (nb * cout + oc) * plane;
      let s = 0;
      for (let i = 0; i < plane; i++) s += gy[yb + i];
      db[oc] += s;
      for (let ic = 0; ic < cin; ic++) {
        const xb = (nb * cin + ic) * plane;
        for (let ky = 0; ky < k; ky++) {
          const ddy = ky * dil - pad;
          const y0 = Math.max(0, -ddy);
          const y1 = Math.min(h, h - ddy);
          for (let kx = 0; kx < k; kx++) {
            const ddx = kx * dil - pad;
            const x0 = Math.max(0, -ddx);
            const x1 = Math.min(wd, wd - ddx);
            const wi = ((oc * cin + ic) * k + ky) * k + kx;
            const wv = w[wi];
            let acc = 0;
            for (let oy = y0; oy < y1; oy++) {
              const yo = yb + oy * wd;
              const xo = xb + (oy + ddy) * wd + ddx;
              for (let ox = x0; ox < x1; ox++) {
                const g = gy[yo + ox];
                acc += g * xd[xo + ox];
                dx[xo + ox] += wv * g;
              }
            }
            dw[wi] += acc;
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

/** Exported for the self-check against ops.conv2d / conv2dBackward. */
export const refSameConv = {
  forward: (x: RefTensor, w: RefTensor, b: ArrayLike<number> | null, dilation = 1): RefTensor =>
    convForward(x, Float64Array.from(w.data), b ? Float64Array.from(b) : null, w.shape[0], w.shape[2], dilation),
  backward: (x: RefTensor, w: RefTensor, dy: RefTensor, dilation = 1) => convBackward(x, Float64Array.from(w.data), dy.data, w.shape[0], w.shape[2], dilation),
};

// ---------------------------------------------------------------------------------------------
// The tape

interface Node {
  t: RefTensor;
  /** Accumulated d loss / d t (allocated on first use). */
  g: Float64Array | null;
}

class Tape {
  readonly steps: Array<() => void> = [];
  readonly grads = new Map<string, Float64Array>();
  readonly runningStats = new Map<string, Float64Array>();
  readonly activations = new Map<string, RefTensor>();
  kinkOverrides = 0;

  constructor(
    readonly weights: RefWeights,
    readonly mode: RefMode,
    readonly eps: number,
    readonly momentum: number,
    readonly preluPositive: Map<string, ArrayLike<number>> | undefined = undefined,
    readonly kinkBand = 1e-4,
  ) {}

  get(name: string, size: number): Float64Array {
    const v = this.weights.get(name);
    if (!v) throw new Error(`drdnet reference: missing weight '${name}'`);
    if (v.length !== size) throw new Error(`drdnet reference: weight '${name}' has ${v.length} values, expected ${size}`);
    return v;
  }

  node(t: RefTensor, name?: string): Node {
    if (name) this.activations.set(name, t);
    return { t, g: null };
  }

  static acc(n: Node, g: ArrayLike<number>): void {
    if (!n.g) n.g = new Float64Array(n.t.data.length);
    for (let i = 0; i < g.length; i++) n.g[i] += g[i];
  }

  accParam(name: string, g: ArrayLike<number>): void {
    let a = this.grads.get(name);
    if (!a) this.grads.set(name, (a = new Float64Array(g.length)));
    for (let i = 0; i < g.length; i++) a[i] += g[i];
  }

  /** Records the backward of `out`: `fn` receives d loss / d out (skipped if nothing reached it). */
  record(out: Node, fn: (gy: RefTensor) => void): Node {
    this.steps.push(() => {
      if (out.g) fn({ shape: out.t.shape, data: out.g });
    });
    return out;
  }

  backward(): void {
    for (let i = this.steps.length - 1; i >= 0; i--) this.steps[i]();
  }

  // ---- ops

  conv(x: Node, name: string, cout: number, k = 3, dilation = 1): Node {
    const cin = x.t.shape[1];
    const w = this.get(`${name}.weight`, cout * cin * k * k);
    const b = this.get(`${name}.bias`, cout);
    const out = this.node(convForward(x.t, w, b, cout, k, dilation), name);
    return this.record(out, (gy) => {
      const r = convBackward(x.t, w, gy.data, cout, k, dilation);
      Tape.acc(x, r.dx);
      this.accParam(`${name}.weight`, r.dw);
      this.accParam(`${name}.bias`, r.db);
    });
  }

  bn(x: Node, name: string): Node {
    const C = x.t.shape[1];
    const gamma = this.get(`${name}.weight`, C);
    const beta = this.get(`${name}.bias`, C);
    const rm = this.get(`${name}.running_mean`, C);
    const rv = this.get(`${name}.running_var`, C);
    const eps = this.eps;
    if (this.mode === 'train') {
      const r = op.batchNorm2dTrain(x.t, gamma, beta, { eps, momentum: this.momentum, runningMean: rm, runningVar: rv });
      this.runningStats.set(`${name}.running_mean`, r.runningMean);
      this.runningStats.set(`${name}.running_var`, r.runningVar);
      return this.record(this.node(r.y, name), (gy) => {
        const g = op.batchNorm2dTrainBackward(x.t, gamma, gy, eps);
        Tape.acc(x, g.dx.data);
        this.accParam(`${name}.weight`, g.dgamma);
        this.accParam(`${name}.bias`, g.dbeta);
      });
    }
    this.runningStats.set(`${name}.running_mean`, rm.slice());
    this.runningStats.set(`${name}.running_var`, rv.slice());
    return this.record(this.node(op.batchNorm2dEval(x.t, gamma, beta, rm, rv, eps), name), (gy) => {
      const g = op.batchNorm2dEvalBackward(x.t, gamma, rm, rv, gy, eps);
      Tape.acc(x, g.dx.data);
      this.accParam(`${name}.weight`, g.dgamma);
      this.accParam(`${name}.bias`, g.dbeta);
    });
  }

  /** The side of the kink per element: float64's, or the float32 forward's within the band. */
  kinkSides(x: RefTensor, name: string): Uint8Array | undefined {
    const given = this.preluPositive?.get(name);
    if (!given) return undefined;
    if (given.length !== x.data.length) throw new Error(`drdnet reference: ${given.length} PReLU signs for '${name}', expected ${x.data.length}`);
    let ss = 0;
    for (const v of x.data) ss += v * v;
    const band = this.kinkBand * Math.sqrt(ss / x.data.length);
    return Uint8Array.from(x.data, (v, i) => {
      const own = v > 0 ? 1 : 0;
      if (Math.abs(v) > band || given[i] === own) return own;
      this.kinkOverrides++;
      return given[i];
    });
  }

  prelu(x: Node, name: string): Node {
    const a = this.get(`${name}.weight`, x.t.shape[1]);
    const side = this.kinkSides(x.t, name);
    return this.record(this.node(op.prelu(x.t, a, side), name), (gy) => {
      const g = op.preluBackward(x.t, a, gy, side);
      Tape.acc(x, g.dx.data);
      this.accParam(`${name}.weight`, g.dslopes);
    });
  }

  /** x * sigmoid(W2 relu(W1 mean_hw(x))): Linear(no bias), ReLU, Linear(no bias), Sigmoid. */
  se(x: Node, name: string, hidden: number): Node {
    const C = x.t.shape[1];
    const w1 = refTensor([hidden, C], this.get(`${name}.0.weight`, hidden * C));
    const w2 = refTensor([C, hidden], this.get(`${name}.2.weight`, C * hidden));
    return this.record(this.node(op.squeezeExcite(x.t, w1, w2), name), (gy) => {
      const g = op.squeezeExciteBackward(x.t, w1, w2, gy);
      Tape.acc(x, g.dx.data);
      this.accParam(`${name}.0.weight`, g.dw1.data);
      this.accParam(`${name}.2.weight`, g.dw2.data);
    });
  }

  add(a: Node, b: Node, name?: string): Node {
    return this.record(this.node(op.add(a.t, b.t), name), (gy) => {
      Tape.acc(a, gy.data);
      Tape.acc(b, gy.data);
    });
  }

  sub(a: Node, b: Node, name?: string): Node {
    return this.record(this.node(op.sub(a.t, b.t), name), (gy) => {
      Tape.acc(a, gy.data);
      Tape.acc(b, op.mulScalar(gy, -1).data);
    });
  }

  concat(xs: Node[]): Node {
    const sizes = xs.map((x) => x.t.shape[1]);
    return this.record(this.node(op.concat(xs.map((x) => x.t))), (gy) => {
      op.split(gy, sizes).forEach((g, i) => Tape.acc(xs[i], g.data));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The network

function branch(tape: Tape, c: DrdConfig, x: Node, names: { root: string; head: string; blocks: string; body: string }, nBlocks: number, block: (h: Node, prefix: string) => Node): Node {
  const { root } = names;
  const x0 = tape.prelu(tape.conv(x, `${root}.${names.head}.0`, c.channels), `${root}.${names.head}.1`);
  tape.activations.set(`${root}.x0`, x0.t);
  let h = x0;
  for (let i = 0; i < nBlocks; i++) {
    const prefix = `${root}.${names.blocks}.${i}`;
    h = block(h, prefix);
    tape.activations.set(prefix, h.t);
  }
  const body = tape.bn(tape.conv(h, `${root}.${names.body}.0`, c.channels), `${root}.${names.body}.1`);
  const s = tape.add(body, x0, `${root}.${names.body}+x0`);
  return tape.conv(s, `${root}.tail.0`, 3);
}

function rainBlock(tape: Tape, c: DrdConfig, x: Node, prefix: string): Node {
  const h = `${prefix}.rain_residual_block_head`;
  const C = c.channels;
  let y = tape.conv(x, `${h}.0`, C);
  y = tape.bn(y, `${h}.1`);
  y = tape.prelu(y, `${h}.2`);
  y = tape.conv(y, `${h}.3`, C);
  y = tape.bn(y, `${h}.4`);
  if (c.se) y = tape.se(y, `${prefix}.rain_residual_block_body`, c.seHidden);
  return tape.add(y, x);
}

/** DCCL: 3x3 convs at each dilation (padding = dilation), concatenated, fused by a 1x1 conv. */
function dccl(tape: Tape, c: DrdConfig, x: Node, name: string): Node {
  const K = c.dilations.length;
  const parts = c.dilations.map((d, i) => tape.conv(x, `${name}.conv${i + 1}.0`, c.channels, 3, d));
  return tape.conv(tape.concat(parts), `${name}.conv${K + 1}.0`, c.channels, 1);
}

function detailBlock(tape: Tape, c: DrdConfig, x: Node, prefix: string): Node {
  const h = `${prefix}.back_residual_block_body`;
  let y = dccl(tape, c, x, `${h}.0`);
  y = tape.bn(y, `${h}.1`);
  y = tape.prelu(y, `${h}.2`);
  y = dccl(tape, c, y, `${h}.3`);
  y = tape.bn(y, `${h}.4`);
  return tape.add(y, x);
}

/**
 * Runs the network on `rainy` O ([N,3,H,W]) with `weights` (state_dict names; BN running statistics
 * included), computes 0.1 * L1(O - R, B) + L1(O - R + D, B) against `clean` B, and backpropagates.
 * 'train' normalises with batch statistics (and reports the updated running statistics), 'eval'
 * with the running statistics.
 */
export function drdnetReference(config: DrdConfig, weights: RefWeights, rainy: RefTensor, clean: RefTensor, mode: RefMode, opts: DrdReferenceOptions = {}): DrdReference {
  if (rainy.shape.length !== 4 || rainy.shape[1] !== 3) throw new Error(`drdnet reference: expected rainy [N,3,H,W], got [${rainy.shape.join(',')}]`);
  if (rainy.shape.join() !== clean.shape.join()) throw new Error('drdnet reference: rainy and clean shapes differ');
  const tape = new Tape(weights, mode, opts.eps ?? 1e-5, opts.momentum ?? 0.1, opts.preluPositive, opts.kinkBand);
  const o = tape.node(rainy, 'input.rainy');
  const rain = branch(tape, config, o, { root: 'rain_net.0', head: 'rain_net_head', blocks: 'rain_residual_blocks', body: 'rain_net_body' }, config.rainBlocks, (h, p) => rainBlock(tape, config, h, p));
  const derained = tape.sub(o, rain, 'output.derained');
  let detail: Node | null = null;
  let final = derained;
  if (config.detail) {
    const input = config.detailInput === '2O-R' ? tape.add(o, derained, 'back_net.input') : o;
    detail = branch(tape, config, input, { root: 'back_net.0', head: 'back_net_head', blocks: 'back_residual_blocks', body: 'back_net_body' }, config.detailBlocks, (h, p) => detailBlock(tape, config, h, p));
    final = tape.add(derained, detail, 'output.final');
  }
  const loss = 0.1 * op.l1Loss(derained.t, clean) + op.l1Loss(final.t, clean);
  if (opts.backward ?? true) {
    Tape.acc(derained, op.l1LossBackward(derained.t, clean, 0.1).dx.data);
    Tape.acc(final, op.l1LossBackward(final.t, clean, 1).dx.data);
    tape.backward();
    // Every trainable parameter gets an entry, even if no gradient reached it.
    for (const s of drdStateSpec(config)) {
      if (s.kind === 'param' && !tape.grads.has(s.name)) tape.grads.set(s.name, new Float64Array(s.shape.reduce((a, b) => a * b, 1)));
    }
  }
  return {
    rain: rain.t,
    derained: derained.t,
    detail: detail?.t ?? null,
    final: final.t,
    loss,
    grads: tape.grads,
    runningStats: tape.runningStats,
    activations: tape.activations,
    kinkOverrides: tape.kinkOverrides,
  };
}

/**
 * Trainable parameters whose gradient is identically zero in train mode: every bias of a conv
 * whose output only reaches the loss through a training-mode BatchNorm (the batch mean removes a
 * per-channel constant). That is the conv before each BN and the dilated branches of a DCCL, which
 * reach the BN through the linear 1x1 fuse. Their computed gradients are rounding noise.
 */
export function zeroGradInTrain(config: DrdConfig): Set<string> {
  const names = drdStateSpec(config).filter((s) => s.kind === 'param').map((s) => s.name);
  return new Set(
    names.filter(
      (n) =>
        /rain_residual_block_head\.[03]\.bias$/.test(n) ||
        /_net_body\.0\.bias$/.test(n) ||
        /back_residual_block_body\.[03]\.conv\d+\.0\.bias$/.test(n),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Closed-form weights (mirrors formula_weights in scripts/torch_fixtures.py)

/** Integer hash of (element i, state tensor k) in [0, 1); every intermediate is an exact integer below 2^53. */
export function formulaUnit(i: number, k: number): number {
  return ((i * i * 7 + i * 7919 + k * 104729 + 12345) % 65521) / 65521;
}

/**
 * The paper-size fixtures' weights: state tensor k (drdStateSpec order = state_dict order without
 * num_batches_tracked), element i: conv/linear weights (2u-1)/sqrt(fan_in), conv biases
 * (2u-1)/sqrt(fan_in of their conv), BN weight 0.5+u, BN bias 0.4(u-0.5), running_mean 0.4(u-0.5),
 * running_var 0.5+u, PReLU slopes 0.1+0.3u; rounded to float32 as the model stores them.
 */
export function formulaWeights(config: DrdConfig): RefWeights {
  const specs = drdStateSpec(config);
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const bns = new Set(specs.filter((s) => s.name.endsWith('.running_mean')).map((s) => s.name.slice(0, -'.running_mean'.length)));
  const w: RefWeights = new Map();
  specs.forEach((s, k) => {
    const dot = s.name.lastIndexOf('.');
    const mod = s.name.slice(0, dot);
    const leaf = s.name.slice(dot + 1);
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fan = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);
    let f: (u: number) => number;
    if (bns.has(mod)) {
      f = leaf === 'weight' || leaf === 'running_var' ? (u) => 0.5 + u : (u) => 0.4 * (u - 0.5);
    } else if (leaf === 'weight' && s.shape.length === 1) {
      f = (u) => 0.1 + 0.3 * u;
    } else {
      const bound = Math.sqrt(fan(leaf === 'weight' ? s.shape : shapes.get(`${mod}.weight`)!));
      f = (u) => (2 * u - 1) / bound;
    }
    w.set(s.name, Float64Array.from(Float32Array.from({ length: n }, (_, i) => f(formulaUnit(i, k)))));
  });
  return w;
}

// ---------------------------------------------------------------------------------------------
// Comparing a step's results (output.derained, output.final, loss, grad.<name>) with expected ones

export type NamedValues = Map<string, ArrayLike<number>>;

export interface ParityReport {
  /** Largest relative L2 error of output.derained / output.final. */
  out: number;
  /** Relative error of the loss. */
  loss: number;
  /** Largest relative L2 error over the compared gradients, and which. */
  grad: number;
  worstGrad: string;
  /** Largest ||got - want|| / max ||grad|| over gradients that are identically zero (train mode). */
  zeroGrad: number;
  failures: string[];
}

function l2(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

function relErrL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let num = 0;
  for (let i = 0; i < want.length; i++) num += (got[i] - want[i]) ** 2;
  const den = l2(want);
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num) / den;
}

export function referenceValues(ref: DrdReference): NamedValues {
  const m: NamedValues = new Map<string, ArrayLike<number>>([
    ['output.derained', ref.derained.data],
    ['output.final', ref.final.data],
    ['loss', [ref.loss]],
  ]);
  for (const [n, g] of ref.grads) m.set(`grad.${n}`, g);
  return m;
}

/**
 * Compares `got` with `want` over the outputs, the loss and every grad.<name> that `want` holds.
 * Gradients that are identically zero in train mode (zeroGradInTrain) are rounding noise on both
 * sides, so for them ||got - want|| is measured against the largest compared gradient norm.
 */
export function compareParity(got: NamedValues, want: NamedValues, config: DrdConfig, mode: RefMode, tol: { out: number; grad: number; loss: number }): ParityReport {
  const failures: string[] = [];
  const r: ParityReport = { out: 0, loss: 0, grad: 0, worstGrad: '', zeroGrad: 0, failures };
  const get = (m: NamedValues, name: string, side: string): ArrayLike<number> => {
    const v = m.get(name);
    if (!v) throw new Error(`${side} has no '${name}'`);
    return v;
  };
  for (const name of ['output.derained', 'output.final']) {
    const e = relErrL2(get(got, name, 'result'), get(want, name, 'expected'));
    r.out = Math.max(r.out, e);
    if (!(e <= tol.out)) failures.push(`${name}: relative L2 ${e.toExponential(3)} > ${tol.out}`);
  }
  const gl = get(got, 'loss', 'result')[0];
  const wl = get(want, 'loss', 'expected')[0];
  r.loss = Math.abs(gl - wl) / Math.abs(wl);
  if (!(r.loss <= tol.loss)) failures.push(`loss ${gl} vs ${wl}: relative error ${r.loss.toExponential(3)} > ${tol.loss}`);

  const zero = mode === 'train' ? zeroGradInTrain(config) : new Set<string>();
  const gradNames = [...want.keys()].filter((n) => n.startsWith('grad.'));
  let scale = 0;
  for (const n of gradNames) if (!zero.has(n.slice(5))) scale = Math.max(scale, l2(want.get(n)!));
  for (const n of gradNames) {
    const g = get(got, n, 'result');
    const w = want.get(n)!;
    if (zero.has(n.slice(5))) {
      let d = 0;
      for (let i = 0; i < w.length; i++) d += (g[i] - w[i]) ** 2;
      const e = Math.sqrt(d) / scale;
      r.zeroGrad = Math.max(r.zeroGrad, e);
      if (!(e <= tol.grad)) failures.push(`${n} (zero in train mode): ||got - want|| / max ||grad|| = ${e.toExponential(3)} > ${tol.grad}`);
      continue;
    }
    const e = relErrL2(g, w);
    if (!(e <= r.grad)) {
      r.grad = e;
      r.worstGrad = n;
    }
    if (!(e <= tol.grad)) failures.push(`${n}: relative L2 ${e.toExponential(3)} > ${tol.grad}`);
  }
  if (gradNames.length === 0) failures.push('no gradients to compare');
  return r;
}

export function formatReport(r: ParityReport): string {
  return `out ${r.out.toExponential(2)}, loss ${r.loss.toExponential(2)}, grad ${r.grad.toExponential(2)} (${r.worstGrad}), zero-grad ${r.zeroGrad.toExponential(2)}`;
}
