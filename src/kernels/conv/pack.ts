// Conv weight packing (OIHW -> the kernel's padded Wp layout, optionally composed with a 1x1 fuse weight) and fused biases.
import code from '../../../shaders/conv2d.wgsl';
import { Tensor } from '../../core/tensor.js';
import { checkFits } from '../windows.js';
import { grid } from '../util.js';

/**
 * Packs OIHW branch weights into Wp[branch][c*KK + tap][m] with m padded to `MP`. With `fuse`
 * ([Cout, sum C_k] as any shape), branch k is composed with its column block first. With
 * `mergeCenter`, branch 0's centre tap holds the sum of every branch's (the kernels then skip the
 * other branches' centre taps: merge_centers in `shaders/lib/conv_direct.wgsl`).
 */
export function packWeights(weights: Tensor[], transposed: boolean, MP: number, op: string, fuse: Tensor | null, mergeCenter = false): Tensor {
  const e = weights[0].engine;
  const [C0, Ci, KH, KW] = weights[0].shape;
  const KK = KH * KW;
  const Co = fuse ? fuse.shape[0] : C0;
  const fStride = fuse ? fuse.size / Co : 0;
  const per = (transposed ? Co : Ci) * KK * MP;
  checkFits(e, op, 'packed weight', [weights.length, per], weights.length * per);
  const out = Tensor.empty(e, [weights.length * per]);
  let fOff = 0;
  weights.forEach((w, b) => {
    checkFits(e, op, 'weight', w.shape, w.size);
    e.dispatch({
      label: `${op}.pack`,
      code,
      entry: 'pack',
      uniforms: { Co, Ci, KK, MP, dst: b * per, transposed: transposed ? 1 : 0, total: per, compose: fuse ? 1 : 0, C: w.shape[0], fStride, fOff },
      bindings: [w.binding(), (fuse ?? w).binding(), out.binding()],
      workgroups: grid(e, Math.ceil(per / 64)),
    });
    fOff += w.shape[0];
  });
  if (mergeCenter) {
    const rows = transposed ? Co : Ci;
    e.dispatch({
      label: `${op}.merge`,
      code,
      entry: 'merge_centers',
      uniforms: { rows, KK, MP, center: (KK - 1) / 2, per, NB: weights.length },
      bindings: [out.binding()],
      workgroups: grid(e, Math.ceil((rows * MP) / 64)),
    });
  }
  return out;
}

/**
 * b' = fuseBias + sum_k Wf_k b_k ([Cout]) for multiDilationConv; null when there are no biases.
 * `fuse` is [Cout, sum C_k(, 1, 1)], `biases[k]` is [C_k] or null.
 */
export function composeFusedBias(fuse: Tensor, branchChannels: number[], biases: Array<Tensor | null>, fuseBias: Tensor | null): Tensor | null {
  if (!fuseBias && biases.every((b) => !b)) return null;
  const e = fuse.engine;
  const Co = fuse.shape[0];
  const fStride = fuse.size / Co;
  const out = Tensor.empty(e, [Co]);
  let first = true;
  const add = (b: Tensor, C: number, fOff: number, identity: boolean) => {
    e.dispatch({
      label: 'multiDilationConv.bias',
      code,
      entry: 'fuse_bias',
      uniforms: { Co, C, fStride, fOff, accumulate: first ? 0 : 1, identity: identity ? 1 : 0 },
      bindings: [fuse.binding(), b.binding(), out.binding()],
      workgroups: [Math.ceil(Co / 64)],
    });
    first = false;
  };
  if (fuseBias) add(fuseBias, Co, 0, true);
  let off = 0;
  biases.forEach((b, k) => {
    if (b) add(b, branchChannels[k], off, false);
    off += branchChannels[k];
  });
  return out;
}

/** Eval-mode BatchNorm parameters folded by `foldAffine`. */
export interface FoldBn {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
}

/**
 * The affine epilogue [scale | shift | slope] (3 x Co) of a conv with `bias` followed by eval-mode
 * BatchNorm `bn` and PReLU `slope` ([Co] or shared [1]); any of them may be absent. One dispatch.
 */
export function foldAffine(Co: number, bias: Tensor | null, bn: FoldBn | null, slope: Tensor | null): Tensor {
  const some = bias ?? bn?.weight ?? slope;
  if (!some) throw new Error('foldAffine: nothing to fold (no bias, BatchNorm or slope)');
  for (const [name, t] of [['bias', bias], ['BatchNorm weight', bn?.weight], ['BatchNorm bias', bn?.bias], ['running mean', bn?.runningMean], ['running var', bn?.runningVar]] as const) {
    if (t && t.size !== Co) throw new Error(`foldAffine: ${name} has ${t.size} values for ${Co} channels`);
  }
  if (slope && slope.size !== 1 && slope.size !== Co) throw new Error(`foldAffine: PReLU slope has ${slope.size} values for ${Co} channels`);
  const e = some.engine;
  const out = Tensor.empty(e, [3 * Co]);
  e.dispatch({
    label: 'conv2d.fold',
    code,
    entry: 'fold',
    uniforms: { Co, hasBias: bias ? 1 : 0, hasBn: bn ? 1 : 0, slopeN: slope ? (slope.size === 1 ? 1 : Co) : 0, eps: bn?.eps ?? 0 },
    bindings: [some, bn?.weight ?? some, bn?.bias ?? some, bn?.runningMean ?? some, bn?.runningVar ?? some, slope ?? some, out].map((t) => t.binding()),
    workgroups: [Math.ceil(Co / 64)],
  });
  return out;
}
