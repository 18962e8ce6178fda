// Differentiable normalisation ops: batchNorm2d, prelu, and the fused batchNormPrelu.
import { preluBackward, preluForward } from '../kernels/prelu.js';
import { batchNormBackward, batchNormForward } from '../kernels/batchnorm.js';
import { defineOp, type OpDefinition } from './autograd.js';
import type { Tensor } from '../core/tensor.js';

/** Training or eval statistics, eps and momentum of `batchNorm2d`. */
export interface BatchNormOptions {
  /** Batch statistics (and an in-place running-stat update) when true; running statistics when false. */
  training: boolean;
  /** Weight of the batch statistic in the running update (PyTorch's default 0.1). */
  momentum?: number;
  eps?: number;
}

interface BnAttrs {
  training: boolean;
  momentum: number;
  eps: number;
  prelu: boolean;
}

// Inputs: x, weight, bias, runningMean, runningVar[, slope]. Saves x and the per-channel stats.
const batchNormSpec: Omit<OpDefinition<BnAttrs>, 'name'> = {
  forward(ctx, [x, weight, bias, rm, rv, slope], a) {
    const { y, stats } = batchNormForward(x, weight, bias, rm, rv, { training: a.training, momentum: a.momentum, eps: a.eps, slope: a.prelu ? slope : null });
    ctx.save(x, stats);
    stats.dispose();
    return y;
  },
  backward(ctx, [g], a) {
    const [x, stats] = ctx.saved;
    const sharedSlope = a.prelu && ctx.inputShapes[5][0] === 1;
    const r = batchNormBackward(x, g!, stats, { training: a.training, act: a.prelu, sharedSlope });
    const want = (i: number, t: Tensor | null) => (ctx.needsGrad[i] ? t : null);
    return [want(0, r.dx), want(1, r.dweight), want(2, r.dbias), null, null, ...(a.prelu ? [want(5, r.dslope)] : [])];
  },
};
const batchNormDef = defineOp<BnAttrs>({ name: 'batchNorm2d', ...batchNormSpec });
const batchNormPreluDef = defineOp<BnAttrs>({ name: 'batchNormPrelu', ...batchNormSpec });

function bnAttrs(opts: BatchNormOptions, prelu: boolean): BnAttrs {
  return { training: opts.training, momentum: opts.momentum ?? 0.1, eps: opts.eps ?? 1e-5, prelu };
}

/**
 * BatchNorm2d over NCHW with weight/bias/running stats of shape [C]. Training mode normalises with
 * the batch statistics (biased variance) and updates runningMean/runningVar in place (unbiased
 * variance, like PyTorch). Dispatches: forward 1 (2 when a channel is split over workgroups),
 * backward the same.
 */
export function batchNorm2d(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNormOptions): Tensor {
  return batchNormDef([x, weight, bias, runningMean, runningVar], bnAttrs(opts, false))[0];
}

/**
 * batchNorm2d followed by PReLU (slope [C] or shared [1]) in the same kernels: no intermediate
 * tensor, same dispatch counts as batchNorm2d (plus one in backward to sum a shared slope).
 */
export function batchNormPrelu(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, slope: Tensor, opts: BatchNormOptions): Tensor {
  return batchNormPreluDef([x, weight, bias, runningMean, runningVar, slope], bnAttrs(opts, true))[0];
}

const preluDef = defineOp({
  name: 'prelu',
  forward(ctx, [x, slope]) {
    ctx.save(x, slope);
    return preluForward(x, slope);
  },
  backward(ctx, [g]) {
    const [x, slope] = ctx.saved;
    const r = preluBackward(x, slope, g!, ctx.needsGrad[1]);
    return [ctx.needsGrad[0] ? r.dx : null, r.dslope];
  },
});

/** PReLU with one slope per channel (dim 1; slope [C]) or one shared slope ([1]). Forward 1 dispatch, backward 1-2. */
export const prelu = (x: Tensor, slope: Tensor): Tensor => preluDef([x, slope], undefined)[0];
