// One semi-supervised training step at a time: the synthetic batch's supervised loss plus, with a
// real (unlabelled) batch, the dual contrastive regularisation; Adam with multi-step decay.
import type { Engine } from '../gpu/runtime.js';
import { backward, noGrad } from '../graph/autograd.js';
import { add, concat, mul, reshape, split, sub, sum } from '../graph/ops.js';
import { Tensor, tidy } from '../core/tensor.js';
import { prepareTuning, tunePending } from '../kernels/conv2d.js';
import type { Module } from '../graph/module.js';
import { supervisedLoss } from './loss.js';
import { Adam, multiStepLr } from './optim.js';

/** A source of batches in NCHW float32 with a saveable position (for bit-for-bit resume). */
export interface BatchSource<T> {
  /** The next `batch` samples. */
  next(batch: number): T;
  /** Where the source is, for checkpoints. */
  saveState(): SourceState;
  /** Continues from a saved position. */
  loadState(s: SourceState): void;
}

/** Where a source is: its generator's words and its data order/cursor, as integers. */
export interface SourceState {
  rng: number[];
  cursor: number[];
}

/** A batch of rainy/clean pairs, NCHW float32. */
export interface PairBatch {
  rainy: Float32Array;
  clean: Float32Array;
}

/** The contrastive term as the trainer sees it (src/train/contrastive.ts provides it). */
export type ContrastiveFn = (inputs: { realRainy: Tensor; realRain: Tensor; realFinal: Tensor; synthRainy: Tensor; synthClean: Tensor }) => {
  total: Tensor;
  bg: Tensor;
  rain: Tensor;
};

/** Batch, patch, learning-rate schedule and contrastive settings of a `Trainer`. */
export interface TrainerOptions {
  batch: number;
  patch: number;
  lr: number;
  /** Steps at which lr is multiplied by `gamma` (the authors' MultiStepLR, counted in steps). */
  milestones: number[];
  gamma: number;
  /** BN statistics for the real batch's forward: its own batch statistics, or the running ones. */
  realBn: 'batch' | 'running';
  /**
   * Every forward in eval mode: BN uses (and never updates) its running statistics, for the
   * synthetic batch too. Adapting to one photo measured best this way (src/train/adapt.ts).
   */
  frozenBn?: boolean;
  /** Real images per step (<= batch; the first ones of the synthetic batch serve as its samples). */
  realBatch?: number;
  /** Apply the contrastive terms every this many steps (1 = every step). */
  crEvery?: number;
}

/** What one training step reports (the contract's train-log fields). */
export interface StepRecord {
  step: number;
  loss: number;
  loss_sup: number;
  loss_cr_bg: number;
  loss_cr_rain: number;
  grad_norm_cr: number;
  lr: number;
  ms: number;
  gpu_live_bytes: number;
  gpu_pooled_bytes: number;
  gpu_buffers_created: number;
}

/** Thrown by `trainStep` when the loss is NaN or infinite (no weight was updated). */
export class NonFiniteLossError extends Error {}

/**
 * What the trainer trains: any module that maps a rainy batch [N,3,H,W] to the derained image
 * (supervised at 0.1 weight) and the final output, and optionally the rain layer (else rainy - derained
 * is used). `DrdNet` is one; a researcher's own network is another.
 */
export interface DerainModule extends Module {
  /** Derains a batch. */
  forward(rainy: Tensor): { derained: Tensor; final: Tensor; rain?: Tensor | null };
}

/** Semi-supervised training, one step at a time: supervised loss on pairs, contrastive terms on real photos, Adam. */
export class Trainer {
  readonly opt: Adam;
  step = 0;

  constructor(
    readonly engine: Engine,
    readonly model: DerainModule,
    readonly pairs: BatchSource<PairBatch>,
    readonly opts: TrainerOptions,
    readonly real: BatchSource<Float32Array> | null = null,
    readonly contrastive: ContrastiveFn | null = null,
  ) {
    const int = (k: 'batch' | 'patch' | 'realBatch' | 'crEvery', min: number) => {
      const v = opts[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new Error(`Trainer: ${k} must be an integer >= ${min}, got ${v}`);
    };
    int('batch', 1);
    int('patch', 2);
    int('realBatch', 1);
    int('crEvery', 1);
    if (!(opts.gamma > 0 && Number.isFinite(opts.gamma))) throw new Error(`Trainer: gamma must be a finite number > 0, got ${opts.gamma}`);
    // lr: checked by Adam below.
    this.opt = new Adam(model.parameters(), { lr: opts.lr });
  }

  /** Frees the optimizer state (Adam moments); the model and the sources stay the caller's. */
  dispose(): void {
    this.opt.dispose();
  }

  /** Runs one step; throws NonFiniteLossError (before updating any weight) on NaN or Inf. */
  async trainStep(): Promise<StepRecord> {
    // Stored kernel choices before the first step; shapes met untuned are timed after it (engine.tune).
    if (this.step === 0) await prepareTuning(this.engine);
    const t0 = performance.now();
    const { batch: B, patch: P } = this.opts;
    const shape = [B, 3, P, P];
    const lr = multiStepLr(this.opts.lr, this.opts.milestones, this.opts.gamma, this.step);
    this.opt.lr = lr;
    const syn = this.pairs.next(B);
    const k = Math.min(B, this.opts.realBatch ?? B);
    const crStep = this.step % (this.opts.crEvery ?? 1) === 0;
    const realData = this.real && this.contrastive && crStep ? this.real.next(k) : null;
    const values = await tidy(async () => {
      const o = Tensor.fromData(this.engine, syn.rainy, shape);
      const clean = Tensor.fromData(this.engine, syn.clean, shape);
      const zero = () => Tensor.fromData(this.engine, [0], [1]);
      let bg = zero();
      let rain = zero();
      let gradNormSq = zero();
      if (realData) {
        const realRainy = Tensor.fromData(this.engine, realData, [k, 3, P, P]);
        this.model.train(!this.opts.frozenBn && this.opts.realBn === 'batch');
        const r = this.model.forward(realRainy);
        const head = (t: Tensor) => (k === B ? t : split(t, [k, B - k], 0)[0]);
        const realRain = r.rain ?? sub(realRainy, r.derained);
        const cr = this.contrastive!({ realRainy, realRain, realFinal: r.final, synthRainy: head(o), synthClean: head(clean) });
        backward(cr.total);
        // The contrastive gradient alone, before the supervised one accumulates on top of it.
        gradNormSq = noGrad(() => this.#gradSquaredNorm());
        bg = reshape(cr.bg, [1]);
        rain = reshape(cr.rain, [1]);
      }
      this.model.train(!this.opts.frozenBn);
      const out = this.model.forward(o);
      const sup = supervisedLoss(out.derained, out.final, clean);
      backward(sup);
      const packed = noGrad(() => concat([reshape(sup, [1]), bg, rain, gradNormSq], 0));
      return await packed.read();
    });
    const [lossSup, crBg, crRain, gnsq] = values;
    const weights = this.contrastiveWeights;
    const loss = lossSup + weights.bg * crBg + weights.rain * crRain;
    if (![lossSup, crBg, crRain, gnsq].every(Number.isFinite)) {
      this.opt.zeroGrad();
      throw new NonFiniteLossError(`non-finite loss at step ${this.step + 1} (loss_sup ${lossSup}, loss_cr_bg ${crBg}, loss_cr_rain ${crRain})`);
    }
    this.opt.step();
    this.opt.zeroGrad();
    this.step++;
    const tuneT0 = performance.now();
    await tunePending(this.engine);
    const tuneMs = performance.now() - tuneT0;
    const mem = this.engine.memory();
    return {
      step: this.step,
      loss,
      loss_sup: lossSup,
      loss_cr_bg: crBg,
      loss_cr_rain: crRain,
      grad_norm_cr: Math.sqrt(gnsq),
      lr,
      // The step's own time: a one-off kernel tuning after it is not part of it.
      ms: performance.now() - t0 - tuneMs,
      gpu_live_bytes: mem.liveBytes,
      gpu_pooled_bytes: mem.pooledBytes,
      gpu_buffers_created: mem.buffersCreated,
    };
  }

  /** Loss weights used for the logged total (the contrastive fn applies them to `total`). */
  contrastiveWeights = { bg: 0.1, rain: 0.1 };

  #gradSquaredNorm(): Tensor {
    let acc: Tensor | null = null;
    for (const p of this.model.parameters()) {
      if (!p.grad) continue;
      const s = sum(mul(p.grad, p.grad));
      acc = acc ? add(acc, s) : s;
    }
    return acc ? reshape(acc, [1]) : Tensor.fromData(this.engine, [0], [1]);
  }
}
