// Layer modules with PyTorch's parameter names, shapes and default initialisations.
import type { Engine } from '../gpu/runtime.js';
import type { Rng } from '../util/rng.js';
import { conv2d, multiDilationConv, type Conv2dOptions } from './conv.js';
import { Module } from './module.js';
import { batchNorm2d, batchNormPrelu, prelu } from './norm.js';
import { squeezeExcite } from './se.js';
import { full, linear, ones, zeros } from './ops.js';
import { Tensor } from '../core/tensor.js';

/** PyTorch's default for conv and linear layers: kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in)). */
function uniformInit(engine: Engine, shape: number[], bound: number, rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  return Tensor.fromData(engine, data, shape);
}

/** torch.nn.Conv2d (OIHW weights) with stride, padding, dilation and an optional fused activation. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(engine: Engine, rng: Rng, inCh: number, outCh: number, kernel: number, readonly opts: Conv2dOptions & { bias?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inCh * kernel * kernel);
    this.weight = this.param('weight', uniformInit(engine, [outCh, inCh, kernel, kernel], bound, rng));
    this.bias = opts.bias === false ? null : this.param('bias', uniformInit(engine, [outCh], bound, rng));
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }
}

/** torch.nn.Linear ([out, in] weights). */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(engine: Engine, rng: Rng, inF: number, outF: number, withBias = true) {
    super();
    const bound = 1 / Math.sqrt(inF);
    this.weight = this.param('weight', uniformInit(engine, [outF, inF], bound, rng));
    this.bias = withBias ? this.param('bias', uniformInit(engine, [outF], bound, rng)) : null;
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}

/** torch.nn.PReLU with one slope per channel. */
export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(engine: Engine, channels: number, init = 0.25) {
    super();
    this.weight = this.param('weight', full(engine, [channels], init));
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    return prelu(x, this.weight);
  }
}

/** torch.nn.BatchNorm2d: batch statistics in training mode, running statistics in eval mode. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /** PyTorch's num_batches_tracked (an I64 buffer there; a counter here). */
  numBatchesTracked = 0;
  constructor(engine: Engine, channels: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.param('weight', ones(engine, [channels]));
    this.bias = this.param('bias', zeros(engine, [channels]));
    this.runningMean = this.buffer('running_mean', zeros(engine, [channels]));
    this.runningVar = this.buffer('running_var', ones(engine, [channels]));
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    if (this.training) this.numBatchesTracked++;
    return batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, { training: this.training, eps: this.eps, momentum: this.momentum });
  }
  /** BatchNorm followed by `act` (PReLU), fused into one pass. */
  forwardPrelu(x: Tensor, act: PReLU): Tensor {
    if (this.training) this.numBatchesTracked++;
    return batchNormPrelu(x, this.weight, this.bias, this.runningMean, this.runningVar, act.weight, { training: this.training, eps: this.eps, momentum: this.momentum });
  }
}

/** A module that maps one tensor to one tensor. */
export interface Layer extends Module {
  /** Maps one tensor to one tensor. */
  forward(x: Tensor): Tensor;
}

function isLayer(m: Module): m is Layer {
  return typeof (m as { forward?: unknown }).forward === 'function';
}

/** A container whose children are named 0, 1, 2... like torch.nn.Sequential (no forward of its own). */
export class Indexed<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }
}

/**
 * torch.nn.Sequential: children named 0, 1, 2... applied in order. Intermediate results are
 * released as soon as the next layer has consumed them (autograd keeps what backward needs).
 */
export class Sequential extends Indexed<Layer> implements Layer {
  constructor(...layers: Module[]) {
    const bad = layers.findIndex((m) => !isLayer(m));
    if (bad >= 0) throw new Error(`Sequential: item ${bad} (${layers[bad].constructor.name}) has no forward(x)`);
    super(layers as Layer[]);
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    let h = x;
    for (const layer of this.items) {
      const next = layer.forward(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }
}

/** A parameter-free placeholder that keeps PyTorch's Sequential indices aligned (ReLU, Sigmoid). */
export class NoParams extends Module {}

/**
 * Squeeze-and-excitation: x * sigmoid(W2 relu(W1 mean_hw(x))), per channel. The children are named
 * as the authors' nn.Sequential(Linear, ReLU, Linear, Sigmoid), so weights are `0.weight` and
 * `2.weight` (no biases); the whole gate runs as one fused op.
 */
export class SqueezeExcite extends Indexed implements Layer {
  readonly fc1: Linear;
  readonly fc2: Linear;
  /** `hidden` defaults to max(1, channels / 16), the paper's reduction ratio. */
  constructor(engine: Engine, rng: Rng, channels: number, hidden = Math.max(1, Math.floor(channels / 16))) {
    const fc1 = new Linear(engine, rng, channels, hidden, false);
    const fc2 = new Linear(engine, rng, hidden, channels, false);
    super([fc1, new NoParams(), fc2, new NoParams()]);
    this.fc1 = fc1;
    this.fc2 = fc2;
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    return squeezeExcite(x, this.fc1.weight, this.fc2.weight);
  }
}

/**
 * Dilated context aggregation: parallel 3x3 convolutions with the given dilations (children
 * `conv1.0` ... `convK.0`), concatenated and fused by a 1x1 convolution (`conv{K+1}.0`), as in
 * DRD-Net's detail blocks. Runs as one fused kernel; the concatenation is never materialised.
 */
export class DilatedContextBlock extends Module implements Layer {
  readonly branches: Conv2d[];
  readonly fuse: Conv2d;
  constructor(engine: Engine, rng: Rng, channels: number, dilations: readonly number[] = [1, 3, 5]) {
    super();
    if (dilations.length < 1 || dilations.length > 4) throw new Error(`DilatedContextBlock: 1 to 4 dilations, got ${dilations.length}`);
    const wrap = (name: string, conv: Conv2d) => (this.child(name, new Indexed([conv])), conv);
    this.branches = dilations.map((d, i) => wrap(`conv${i + 1}`, new Conv2d(engine, rng, channels, channels, 3, { padding: d, dilation: d })));
    this.fuse = wrap(`conv${dilations.length + 1}`, new Conv2d(engine, rng, channels * dilations.length, channels, 1));
  }
  /** Applies the layer. */
  forward(x: Tensor): Tensor {
    return multiDilationConv(
      x,
      this.branches.map((b) => ({ weight: b.weight, bias: b.bias, dilation: b.opts.dilation ?? 1 })),
      this.fuse.weight,
      this.fuse.bias,
    );
  }
}
