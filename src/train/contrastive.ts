// Contrastive regularisation (CR) for semi-supervised deraining, as GPU ops with backward.
//
// 1. `contrastiveRatio` is AECR-Net's CR (GlassyWu/AECR-Net model/CR.py), generalised to several
//    positives and negatives:
//        CR(a, P, N) = sum_i w_i * mean_{p in P} L1(phi_i(a), phi_i(p))
//                                / (mean_{n in N} L1(phi_i(a), phi_i(n)) + eps)
//    phi_i = the extractor's tap i, L1 = mean absolute difference, eps = 1e-7. Positive and
//    negative features are computed under noGrad (detached): gradients reach the anchor only.
//    Differences from CR.py: several positives/negatives averaged inside numerator and
//    denominator (CR.py has one of each), and the extractor normalises inputs with ImageNet
//    statistics (CR.py feeds raw [0,1] images; see src/model/vgg.ts, `normalize: false` restores it).
//
// 2. `dualContrastiveLoss` is THIS PROJECT'S READING of Semi-DRDNet's "dual sample-augmented
//    contrastive regularization" -- NOT FROM THE PAPER. The paper's method section was not
//    available (research spec section 2.4: anchors, positives, negatives, augmentation, extractor
//    and weights are all UNKNOWN); this implements the fallback design of spec section 2.5:
//    - Background branch, on an unlabelled real batch O_r:
//        anchor    B^_r = O_r - R^_r + D^_r (the network's final output);
//        positives clean backgrounds: the synthetic batch's ground truths B_s (same patch size);
//        negatives O_r itself, and "re-rained" outputs B^_r (detached) + R_s, where
//                  R_s = O_s - B_s are the synthetic batch's rain layers (sample augmentation).
//    - Rain branch:
//        anchor    R^_r, the predicted rain layer of the real batch;
//        positives synthetic rain layers R_s, plus augmentations: R_s flipped horizontally, and
//                  R_s rolled by one along the batch (each item gets another item's rain layer);
//        negatives clean backgrounds B_s and the network's own background B^_r (detached).
//      Every sample of the rain branch (anchor, positives AND negatives) goes through the same
//      affine map into the extractor's input range, x = shift + gain * r, default shift 0.5,
//      gain 1 (`rainShift`, `rainGain`). Why: rain layers are signed (O - B of a prediction can be
//      negative) and small; shift 0.5 sits at about the ImageNet mean, so "no rain" becomes a
//      ~zero input after normalisation -- the same value as the extractor's zero padding (no
//      artificial frame at the borders, which with shift 0 would be identical in every sample
//      and dilute the distances) -- and positive and negative errors are treated alike. Gain 1
//      keeps streak contrast as in the photo (0.5 + 0.5 r would halve it); |r| <= 0.5 lands in
//      [0,1], and larger values are not clamped, so no gradient is cut. Negatives share the map
//      because they stand for "a rain layer that is really background": the failure the branch
//      must push away from is R^ carrying scene structure, and comparing 0.5 + R^ against an
//      unmapped B would mostly measure the 0.5 brightness offset, not structure.
//    - total = bgWeight * bg + rainWeight * rain, both weights 0.1 by default (AECR-style).
//    Every choice (sample sets, map, weights, layer weights, eps) is an option.
import { noGrad } from '../graph/autograd.js';
import { add, addScalar, affine, concat, div, l1Loss, matmul, mulScalar, reshape, split, sub, zeros } from '../graph/ops.js';
import { Tensor, shapeStr, tidy } from '../core/tensor.js';
import type { FeatureExtractor } from '../model/vgg.js';

export type { FeatureExtractor } from '../model/vgg.js';

// ---- augmentations (differentiable; used detached here) ---------------------------------------

const flipMatrices = new WeakMap<object, Map<number, Tensor>>();

/** The [W,W] anti-identity, cached per engine. */
function antiIdentity(x: Tensor, w: number): Tensor {
  let m = flipMatrices.get(x.engine);
  if (!m) flipMatrices.set(x.engine, (m = new Map()));
  let j = m.get(w);
  if (!j || j.disposed) {
    const d = new Float32Array(w * w);
    for (let i = 0; i < w; i++) d[i * w + (w - 1 - i)] = 1;
    j = Tensor.fromData(x.engine, d, [w, w]).keep();
    m.set(w, j);
  }
  return j;
}

/** Mirrors [..., W] along the last axis (x[..., W-1-j]); a matmul with the anti-identity, exact in float32. */
export function flipHorizontal(x: Tensor): Tensor {
  const w = x.shape[x.shape.length - 1];
  return tidy(() => reshape(matmul(reshape(x, [x.size / w, w]), antiIdentity(x, w)), x.shape));
}

/** torch.roll(x, shift, 0): out[i] = x[(i - shift) mod N] along the batch axis. */
export function rollBatch(x: Tensor, shift = 1): Tensor {
  const n = x.shape[0];
  const s = ((shift % n) + n) % n;
  if (s === 0) return tidy(() => reshape(x, x.shape));
  return tidy(() => {
    const [head, tail] = split(x, [n - s, s], 0);
    return concat([tail, head], 0);
  });
}

// ---- the ratio ------------------------------------------------------------------------------

export interface ContrastiveOptions {
  /** Tap weights (default: the extractor's `layerWeights`); a 0 skips the tap. */
  layerWeights?: readonly number[];
  /** Added to the negative distance (default 1e-7, as AECR-Net). */
  eps?: number;
  /** Most input pixels (N * H * W) per extractor call; inputs are batched up to it (default 2^18). */
  maxBatchPixels?: number;
}

/**
 * Runs the extractor on several same-shaped [N_k,C,H,W] inputs, concatenated along the batch
 * axis up to `maxPixels` per call, and returns the taps per input. Differentiable (concat/split
 * are recorded) unless called under noGrad.
 */
export function batchedFeatures(extractor: FeatureExtractor, inputs: readonly Tensor[], maxPixels = 1 << 18): Tensor[][] {
  const out: Tensor[][] = [];
  let i = 0;
  while (i < inputs.length) {
    const plane = inputs[i].shape[2] * inputs[i].shape[3];
    let j = i + 1;
    let px = inputs[i].shape[0] * plane;
    while (j < inputs.length && px + inputs[j].shape[0] * plane <= maxPixels) px += inputs[j++].shape[0] * plane;
    const group = inputs.slice(i, j);
    if (group.length === 1) {
      out.push(extractor.features(group[0]));
    } else {
      const sizes = group.map((t) => t.shape[0]);
      const x = concat([...group], 0);
      const taps = extractor.features(x);
      x.dispose();
      const parts = taps.map((t) => split(t, sizes, 0));
      for (const t of taps) t.dispose();
      group.forEach((_, k) => out.push(parts.map((p) => p[k])));
    }
    i = j;
  }
  return out;
}

/**
 * The ratio from per-tap features: sum_i w_i * mean_p L1(a_i, p_i) / (mean_n L1(a_i, n_i) + eps).
 * `positives[k][i]` is tap i of positive k. Returns a scalar (shape []).
 */
export function contrastiveRatioFromFeatures(
  anchor: readonly Tensor[],
  positives: ReadonlyArray<readonly Tensor[]>,
  negatives: ReadonlyArray<readonly Tensor[]>,
  layerWeights: readonly number[],
  eps = 1e-7,
): Tensor {
  if (positives.length === 0 || negatives.length === 0) throw new Error('contrastive: needs at least one positive and one negative');
  if (layerWeights.length !== anchor.length) throw new Error(`contrastive: ${layerWeights.length} layer weights for ${anchor.length} feature taps`);
  return tidy(() => {
    let total: Tensor | null = null;
    const meanL1 = (a: Tensor, set: ReadonlyArray<readonly Tensor[]>, i: number): Tensor => {
      let s: Tensor | null = null;
      for (const f of set) {
        const d = l1Loss(a, f[i]);
        s = s ? add(s, d) : d;
      }
      return set.length === 1 ? s! : mulScalar(s!, 1 / set.length);
    };
    for (let i = 0; i < anchor.length; i++) {
      const w = layerWeights[i];
      if (w === 0) continue;
      const term = mulScalar(div(meanL1(anchor[i], positives, i), addScalar(meanL1(anchor[i], negatives, i), eps)), w);
      total = total ? add(total, term) : term;
    }
    return total ?? zeros(anchor[0].engine, []);
  });
}

function checkImages(what: string, ts: Array<[string, Tensor]>): void {
  const ref = ts[0][1].shape;
  if (ref.length !== 4) throw new Error(`${what}: '${ts[0][0]}' must be [N,C,H,W], got ${shapeStr(ref)}`);
  for (const [name, t] of ts) {
    if (t.shape.join() !== ref.join()) {
      throw new Error(`${what}: '${name}' has shape ${shapeStr(t.shape)} but '${ts[0][0]}' has ${shapeStr(ref)} (the real and synthetic batches must have the same size and patch size)`);
    }
  }
}

/**
 * AECR-style CR of one anchor batch against positive and negative batches of the same shape.
 * Positives and negatives are detached; only the anchor receives a gradient.
 */
export function contrastiveRatio(
  extractor: FeatureExtractor,
  anchor: Tensor,
  positives: readonly Tensor[],
  negatives: readonly Tensor[],
  opts: ContrastiveOptions = {},
): Tensor {
  checkImages('contrastiveRatio', [['anchor', anchor], ...positives.map((p, k): [string, Tensor] => [`positives[${k}]`, p]), ...negatives.map((n, k): [string, Tensor] => [`negatives[${k}]`, n])]);
  return tidy(() => {
    const fa = extractor.features(anchor);
    const fd = noGrad(() => batchedFeatures(extractor, [...positives, ...negatives], opts.maxBatchPixels));
    return contrastiveRatioFromFeatures(fa, fd.slice(0, positives.length), fd.slice(positives.length), opts.layerWeights ?? extractor.layerWeights, opts.eps);
  });
}

// ---- the dual regularisation (this project's design, not the paper's) ------------------------

export interface DualContrastiveInputs {
  /** O_r: the unlabelled real rainy batch [N,3,H,W]. */
  realRainy: Tensor;
  /** R^_r: the network's rain layer for O_r (with gradient). */
  realRain: Tensor;
  /** B^_r = O_r - R^_r + D^_r: the network's final output for O_r (with gradient). */
  realFinal: Tensor;
  /** O_s: the synthetic rainy batch (same shape). */
  synthRainy: Tensor;
  /** B_s: its clean ground truth. */
  synthClean: Tensor;
}

export type BgPositive = 'clean' | 'cleanFlip' | 'cleanRoll';
export type BgNegative = 'rainy' | 'rerain' | 'rerainFlip' | 'rerainRoll';
export type RainPositive = 'synth' | 'flip' | 'roll';
export type RainNegative = 'clean' | 'output' | 'rainy';

export interface DualContrastiveOptions extends ContrastiveOptions {
  /** Weight of the background branch in `total` (default 0.1; 0 skips the branch, reported as 0). */
  bgWeight?: number;
  /** Weight of the rain branch in `total` (default 0.1; 0 skips the branch, reported as 0). */
  rainWeight?: number;
  /** Background positives: B_s, B_s flipped, B_s rolled over the batch (default ['clean']). */
  bgPositives?: readonly BgPositive[];
  /** Background negatives: O_r, B^_r + R_s, B^_r + flip(R_s), B^_r + roll(R_s) (default ['rainy', 'rerain']). */
  bgNegatives?: readonly BgNegative[];
  /** Rain positives: R_s, flip(R_s), roll(R_s) (default ['synth', 'flip', 'roll']; with a batch of 1 the roll is R_s itself). */
  rainPositives?: readonly RainPositive[];
  /** Rain negatives: B_s, B^_r (detached), O_r (default ['clean', 'output']). */
  rainNegatives?: readonly RainNegative[];
  /** Affine map of rain-branch samples into the extractor's range: shift + gain * r (default 0.5, 1). */
  rainShift?: number;
  rainGain?: number;
  /**
   * Extra detached samples of the same shape, appended to a branch's sets: e.g. a pool of clean
   * real photos as background positives (spec 2.5). Rain-branch extras are rain layers and go
   * through the rain map like the built-in ones.
   */
  extra?: { bgPositives?: readonly Tensor[]; bgNegatives?: readonly Tensor[]; rainPositives?: readonly Tensor[]; rainNegatives?: readonly Tensor[] };
}

export interface DualContrastiveLoss {
  /** bgWeight * bg + rainWeight * rain (shape []). */
  total: Tensor;
  /** The background-branch ratio (unweighted). */
  bg: Tensor;
  /** The rain-branch ratio (unweighted). */
  rain: Tensor;
}

/**
 * The dual contrastive regularisation of the header (a design proposal, not the paper's):
 * gradients flow into `realFinal` and `realRain` only. All five inputs must share one shape
 * [N,3,H,W] (synthetic and real crops of the same batch and patch size). Every detached sample
 * of both branches goes through the extractor in as few batched calls as `maxBatchPixels` allows.
 */
export function dualContrastiveLoss(extractor: FeatureExtractor, inputs: DualContrastiveInputs, opts: DualContrastiveOptions = {}): DualContrastiveLoss {
  const { realRainy, realRain, realFinal, synthRainy, synthClean } = inputs;
  const extra = opts.extra ?? {};
  checkImages('dualContrastiveLoss', [
    ['realRainy', realRainy], ['realRain', realRain], ['realFinal', realFinal], ['synthRainy', synthRainy], ['synthClean', synthClean],
    ...(['bgPositives', 'bgNegatives', 'rainPositives', 'rainNegatives'] as const).flatMap((k) => (extra[k] ?? []).map((t, i): [string, Tensor] => [`extra.${k}[${i}]`, t])),
  ]);
  const bgWeight = opts.bgWeight ?? 0.1;
  const rainWeight = opts.rainWeight ?? 0.1;
  const bgPos = opts.bgPositives ?? ['clean'];
  const bgNeg = opts.bgNegatives ?? ['rainy', 'rerain'];
  const rainPos = opts.rainPositives ?? ['synth', 'flip', 'roll'];
  const rainNeg = opts.rainNegatives ?? ['clean', 'output'];
  const allowed = (what: string, list: readonly string[], ok: readonly string[]) => {
    for (const k of list) if (!ok.includes(k)) throw new Error(`dualContrastiveLoss: unknown ${what} '${k}' (one of ${ok.join(', ')})`);
  };
  allowed('bgPositives entry', bgPos, ['clean', 'cleanFlip', 'cleanRoll']);
  allowed('bgNegatives entry', bgNeg, ['rainy', 'rerain', 'rerainFlip', 'rerainRoll']);
  allowed('rainPositives entry', rainPos, ['synth', 'flip', 'roll']);
  allowed('rainNegatives entry', rainNeg, ['clean', 'output', 'rainy']);
  const shift = opts.rainShift ?? 0.5;
  const gain = opts.rainGain ?? 1;
  const weights = opts.layerWeights ?? extractor.layerWeights;
  const doBg = bgWeight !== 0;
  const doRain = rainWeight !== 0;
  if (doBg && (bgPos.length + (extra.bgPositives?.length ?? 0) === 0 || bgNeg.length + (extra.bgNegatives?.length ?? 0) === 0)) throw new Error('dualContrastiveLoss: the background branch needs at least one positive and one negative');
  if (doRain && (rainPos.length + (extra.rainPositives?.length ?? 0) === 0 || rainNeg.length + (extra.rainNegatives?.length ?? 0) === 0)) throw new Error('dualContrastiveLoss: the rain branch needs at least one positive and one negative');

  return tidy(() => {
    const map = (r: Tensor) => affine(r, gain, shift);
    // Detached samples, built without recording.
    const detached = noGrad(() => {
      const memo = new Map<string, Tensor>();
      const get = (key: string, make: () => Tensor) => memo.get(key) ?? (memo.set(key, make()), memo.get(key)!);
      const rainS = () => get('R_s', () => sub(synthRainy, synthClean));
      const flipR = () => get('flip(R_s)', () => flipHorizontal(rainS()));
      const rollR = () => get('roll(R_s)', () => rollBatch(rainS(), 1));
      const bgP = doBg
        ? bgPos.map((k) => (k === 'clean' ? synthClean : k === 'cleanFlip' ? flipHorizontal(synthClean) : rollBatch(synthClean, 1)))
        : [];
      const bgN = doBg
        ? bgNeg.map((k) => (k === 'rainy' ? realRainy : add(realFinal, k === 'rerain' ? rainS() : k === 'rerainFlip' ? flipR() : rollR())))
        : [];
      const rP = doRain ? rainPos.map((k) => map(k === 'synth' ? rainS() : k === 'flip' ? flipR() : rollR())) : [];
      const rN = doRain ? rainNeg.map((k) => map(k === 'clean' ? synthClean : k === 'output' ? realFinal : realRainy)) : [];
      if (doBg) {
        bgP.push(...(extra.bgPositives ?? []));
        bgN.push(...(extra.bgNegatives ?? []));
      }
      if (doRain) {
        rP.push(...(extra.rainPositives ?? []).map(map));
        rN.push(...(extra.rainNegatives ?? []).map(map));
      }
      return { bgP, bgN, rP, rN };
    });
    const { bgP, bgN, rP, rN } = detached;
    const feats = noGrad(() => batchedFeatures(extractor, [...bgP, ...bgN, ...rP, ...rN], opts.maxBatchPixels));
    let o = 0;
    const take = (n: number) => feats.slice(o, (o += n));
    const fBgP = take(bgP.length);
    const fBgN = take(bgN.length);
    const fRP = take(rP.length);
    const fRN = take(rN.length);
    // The anchors, with gradient, in one batched call.
    const anchors = [...(doBg ? [realFinal] : []), ...(doRain ? [map(realRain)] : [])];
    const fa = batchedFeatures(extractor, anchors, opts.maxBatchPixels);
    const engine = realRainy.engine;
    const bg = doBg ? contrastiveRatioFromFeatures(fa[0], fBgP, fBgN, weights, opts.eps) : zeros(engine, []);
    const rain = doRain ? contrastiveRatioFromFeatures(fa[doBg ? 1 : 0], fRP, fRN, weights, opts.eps) : zeros(engine, []);
    let total: Tensor;
    if (doBg && doRain) total = add(mulScalar(bg, bgWeight), mulScalar(rain, rainWeight));
    else if (doBg) total = mulScalar(bg, bgWeight);
    else if (doRain) total = mulScalar(rain, rainWeight);
    else total = zeros(engine, []);
    return { total, bg, rain };
  });
}
