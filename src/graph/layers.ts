// Layer modules with PyTorch's parameter names, shapes and default initialisations.
import type { Engine } from '../gpu/runtime.js';
import type { Rng } from '../util/rng.js';
import { conv2d, type Conv2dOptions } from './conv.js';
import { Module } from './module.js';
import { batchNorm2d, batchNormPrelu, prelu } from './norm.js';
import { full, linear, ones, zeros } from './ops.js';
import { Tensor } from './tensor.js';

/** PyTorch's default for conv and linear layers: kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in)). */
function uniformInit(engine: Engine, shape: number[], bound: number, rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  return Tensor.fromData(engine, data, shape);
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(engine: Engine, rng: Rng, inCh: number, outCh: number, kernel: number, readonly opts: Conv2dOptions & { bias?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inCh * kernel * kernel);
    this.weight = this.param('weight', uniformInit(engine, [outCh, inCh, kernel, kernel], bound, rng));
    this.bias = opts.bias === false ? null : this.param('bias', uniformInit(engine, [outCh], bound, rng));
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(engine: Engine, rng: Rng, inF: number, outF: number, withBias = true) {
    super();
    const bound = 1 / Math.sqrt(inF);
    this.weight = this.param('weight', uniformInit(engine, [outF, inF], bound, rng));
    this.bias = withBias ? this.param('bias', uniformInit(engine, [outF], bound, rng)) : null;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}

export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(engine: Engine, channels: number, init = 0.25) {
    super();
    this.weight = this.param('weight', full(engine, [channels], init));
  }
  forward(x: Tensor): Tensor {
    return prelu(x, this.weight);
  }
}

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

/** A container whose children are named 0, 1, 2... like torch.nn.Sequential (no forward of its own). */
export class Indexed<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }
}

/** A parameter-free placeholder that keeps PyTorch's Sequential indices aligned (ReLU, Sigmoid). */
export class NoParams extends Module {}
