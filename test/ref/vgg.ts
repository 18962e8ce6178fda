// Float64 references for the contrastive regularisation: a conv3x3+ReLU(+maxpool) feature stack
// (VGG-19 or a small stand-in), the AECR-style ratio, and the augmentations of the dual loss.
import * as R from './ops';
import { refTensor, type RefTensor } from './tensor';

export interface RefConvLayer {
  weight: RefTensor;
  bias: ArrayLike<number>;
  /** Its ReLU output is a tap. */
  tap: boolean;
  /** A 2x2 max pool follows the ReLU (skipped after the last layer). */
  poolAfter: boolean;
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** ImageNet normalisation of an [N,3,H,W] tensor. */
export function imagenetNormalize(x: RefTensor): RefTensor {
  const [n, c, h, w] = x.shape;
  const y = refTensor(x.shape);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      const o = (b * c + k) * h * w;
      for (let i = 0; i < h * w; i++) y.data[o + i] = (x.data[o + i] - MEAN[k]) / STD[k];
    }
  }
  return y;
}

/** Same-padded 3x3 conv + ReLU layers with optional pooling; returns the taps. */
export function refConvFeatures(x: RefTensor, layers: readonly RefConvLayer[], normalize: boolean): RefTensor[] {
  let h = normalize ? imagenetNormalize(x) : x;
  const taps: RefTensor[] = [];
  layers.forEach((l, k) => {
    const y = R.relu(R.conv2d(h, l.weight, l.bias, { pad: 1 }));
    if (l.tap) taps.push(y);
    h = l.poolAfter && k < layers.length - 1 ? R.maxPool2d(y, 2) : y;
  });
  return taps;
}

/** Mean absolute difference. */
export function l1(a: RefTensor, b: RefTensor): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

/** sum_i w_i * mean_p L1(a_i, p_i) / (mean_n L1(a_i, n_i) + eps). */
export function contrastiveRatio(fa: RefTensor[], fps: RefTensor[][], fns: RefTensor[][], weights: readonly number[], eps = 1e-7): number {
  let total = 0;
  fa.forEach((a, i) => {
    if (weights[i] === 0) return;
    const pos = fps.reduce((s, p) => s + l1(a, p[i]), 0) / fps.length;
    const neg = fns.reduce((s, n) => s + l1(a, n[i]), 0) / fns.length;
    total += (weights[i] * pos) / (neg + eps);
  });
  return total;
}

export function flipW(x: RefTensor): RefTensor {
  const w = x.shape[x.shape.length - 1];
  const y = refTensor(x.shape);
  for (let r = 0; r < x.data.length / w; r++) for (let j = 0; j < w; j++) y.data[r * w + j] = x.data[r * w + (w - 1 - j)];
  return y;
}

/** torch.roll(x, shift, 0). */
export function rollBatch(x: RefTensor, shift = 1): RefTensor {
  const n = x.shape[0];
  const per = x.data.length / n;
  const y = refTensor(x.shape);
  for (let i = 0; i < n; i++) y.data.set(x.data.subarray(i * per, (i + 1) * per), ((((i + shift) % n) + n) % n) * per);
  return y;
}

export const affine = (x: RefTensor, gain: number, shift: number): RefTensor => R.addScalar(R.mulScalar(x, gain), shift);

/** d(sum_i <tap_i, dTaps_i>)/dx of `refConvFeatures` (exact float64 backward). */
export function refConvFeaturesBackward(x: RefTensor, layers: readonly RefConvLayer[], normalize: boolean, dTaps: readonly RefTensor[]): RefTensor {
  const x0 = normalize ? imagenetNormalize(x) : x;
  // forward, keeping each layer's input, pre-activation and output
  const saved: Array<{ input: RefTensor; pre: RefTensor; y: RefTensor }> = [];
  let h = x0;
  layers.forEach((l, k) => {
    const pre = R.conv2d(h, l.weight, l.bias, { pad: 1 });
    const y = R.relu(pre);
    saved.push({ input: h, pre, y });
    h = l.poolAfter && k < layers.length - 1 ? R.maxPool2d(y, 2) : y;
  });
  let tap = dTaps.length - 1;
  let g: RefTensor | null = null; // gradient w.r.t. the next layer's input
  for (let k = layers.length - 1; k >= 0; k--) {
    const l = layers[k];
    const { input, pre, y } = saved[k];
    let gy = refTensor(y.shape);
    if (g) gy = l.poolAfter && k < layers.length - 1 ? R.maxPool2dBackward(y, g, 2) : g;
    if (l.tap) {
      const d = dTaps[tap--];
      gy = refTensor(gy.shape, gy.data.map((v, i) => v + d.data[i]));
    }
    g = R.conv2dBackward(input, l.weight, R.reluBackward(pre, gy), { pad: 1 }).dx;
  }
  if (!normalize) return g!;
  const [n, c, hh, ww] = x.shape;
  const dx = refTensor(x.shape);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < hh * ww; i++) {
    const o = (b * c + ch) * hh * ww + i;
    dx.data[o] = g!.data[o] / STD[ch];
  }
  return dx;
}
