// Optimizers (SGD with momentum, Adam) over GPU parameters, and the multi-step learning-rate decay.
import { adamUpdate, sgdUpdate } from '../kernels/optim.js';
import { zeros } from '../graph/ops.js';
import { Tensor } from '../core/tensor.js';
import { zeroGrad } from '../graph/autograd.js';

/** What the trainer needs of an optimizer: a step, zeroGrad, a learning rate, dispose. */
export interface Optimizer {
  lr: number;
  readonly params: readonly Tensor[];
  /** Applies the accumulated `.grad` of every parameter (parameters without one are skipped). */
  step(): void;
  /** Frees the parameters' gradients (the next backward starts from zero). */
  zeroGrad(): void;
  /** Named state tensors (for checkpoints), keyed by parameter index. */
  state(): Array<[string, Tensor]>;
  /** Frees the optimizer's state (momentum or moment buffers). */
  dispose(): void;
}

/** Every hyperparameter finite and >= 0, the learning rate > 0 (a NaN would silently wreck every weight). */
function checkHyper(opt: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v) || v < 0 || (k === 'lr' && v === 0)) throw new Error(`${opt}: ${k} must be a finite number ${k === 'lr' ? '> 0' : '>= 0'}, got ${v}`);
  }
}

/** `SGD` hyperparameters (torch.optim.SGD's, same defaults): lr > 0, the rest >= 0. */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
}

/** Stochastic gradient descent with momentum, dampening and weight decay as in torch.optim.SGD. */
export class SGD implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  #buf: Array<Tensor | null>;

  constructor(readonly params: readonly Tensor[], opts: SgdOptions) {
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyper('SGD', { lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay });
    this.#buf = params.map(() => null);
  }

  step(): void {
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const first = this.#buf[i] === null;
      const buf = (this.#buf[i] ??= zeros(p.engine, p.shape).keep());
      sgdUpdate(p, p.grad, buf, this.lr, this.momentum, this.dampening, this.weightDecay, first);
    });
    // A step ends an iteration: submitting here makes every iteration's batches line up the same
    // way, so the pool's high-water mark is reached in the first iterations and stays there.
    this.params[0]?.engine.flush();
  }

  /** Frees the parameters' gradients (the next backward starts from zero). */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  state(): Array<[string, Tensor]> {
    return this.#buf.flatMap((b, i): Array<[string, Tensor]> => (b ? [[`${i}.momentum`, b]] : []));
  }

  /** Frees the optimizer's state (momentum or moment buffers). */
  dispose(): void {
    for (const b of this.#buf) b?.dispose();
  }
}

/** `Adam` hyperparameters (torch.optim.Adam's, same defaults): lr > 0, betas in [0, 1). */
export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Adam as in torch.optim.Adam (bias correction, eps outside the square root, optional L2 weight decay). */
export class Adam implements Optimizer {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken (bias correction uses it); restored from checkpoints. */
  stepCount = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];

  constructor(readonly params: readonly Tensor[], opts: AdamOptions) {
    this.lr = opts.lr;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyper('Adam', { lr: this.lr, eps: this.eps, weightDecay: this.weightDecay });
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`Adam: betas must be in [0, 1), got [${b1}, ${b2}]`);
    this.m = params.map((p) => zeros(p.engine, p.shape).keep());
    this.v = params.map((p) => zeros(p.engine, p.shape).keep());
  }

  step(): void {
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      adamUpdate(p, p.grad, this.m[i], this.v[i], this.stepCount, this.lr, this.betas[0], this.betas[1], this.eps, this.weightDecay);
    });
    this.params[0]?.engine.flush(); // see SGD.step
  }

  /** Frees the parameters' gradients (the next backward starts from zero). */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  state(): Array<[string, Tensor]> {
    return this.params.flatMap((_, i): Array<[string, Tensor]> => [[`${i}.m`, this.m[i]], [`${i}.v`, this.v[i]]]);
  }

  /** Frees the optimizer's state (momentum or moment buffers). */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** PyTorch's MultiStepLR, by step: lr = base * gamma^(number of milestones <= step). */
export function multiStepLr(base: number, milestones: readonly number[], gamma: number, step: number): number {
  return base * gamma ** milestones.filter((m) => step >= m).length;
}
