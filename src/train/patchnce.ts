// PatchNCE (CUT, Park et al. 2020) as the contrastive term of adaptation, in a feature space that needs no download: a frozen copy of the network's own first layers.
//
// Design (this project's, for issue 14 item 3a):
// - Features: the rain branch's head conv + PReLU and its first residual block, from a copy of the
//   weights taken when adaptation starts, every tensor of the copy out of autograd (requiresGrad
//   false, eval-mode BN). Why a frozen copy and not CUT's trainable encoder + MLP projection: the
//   Trainer's optimiser sees only the model's parameters, so a projection head would need its own
//   optimiser, and a loss measured in features that the same step also changes can be lowered by
//   moving the features instead of the image. A frozen copy is a plain FeatureExtractor (the same
//   interface as the random VGG) and costs two convs per tap instead of VGG's relu3_1 stack.
// - Loss per tap and batch item: S positions (same for query and key) drawn per call; q_s, k_s the
//   L2-normalised C-vectors there; l[s,t] = <q_s, k_t> / tau; loss = mean_s (logsumexp_t l[s,t] -
//   l[s,s]): InfoNCE with the same position of the key image as the positive and its other
//   sampled positions as negatives (CUT's internal negatives, tau 0.07).
// - Pairing: query = the output B^_r on the real photo (with gradient), key = the real photo O_r
//   itself (detached), i.e. CUT's content term: each output patch must stay identifiable with the
//   input patch at its position. Only the background branch exists: a real photo has no aligned
//   rain layer, and the synthetic batch's rain layers are other images, so "same position" would
//   carry no correspondence. The rain entry of the result is 0.
// - Weight 1e-3 by default: the InfoNCE sits near log(S) nats with O(1) gradients, against a
//   supervised L1 of ~0.04; at 0.1 (the VGG branches' weight) it overrode deraining (-2.2 dB,
//   experiments/adapt-patchnce.md). The term pulls each output patch towards its rainy input
//   patch, so it can only regularise, not derain.
import { noGrad } from '../graph/autograd.js';
import { add, addScalar, div, exp, linear, log, mul, mulScalar, reshape, split, sub, sum, zeros } from '../graph/ops.js';
import type { Conv2d, PReLU } from '../graph/layers.js';
import { loadModule, saveModule } from '../graph/state.js';
import { Tensor, tidy } from '../core/tensor.js';
import { DrdNet } from '../model/drdnet.js';
import type { FeatureExtractor } from '../model/vgg.js';
import { Rng } from '../util/rng.js';
import { batchedFeatures, type DualContrastiveInputs, type DualContrastiveLoss } from './contrastive.js';

export interface PatchNceOptions {
  /** Positions sampled per image and call (default 64; all positions when the map is smaller). */
  samples?: number;
  /** InfoNCE temperature (default 0.07, as CUT). */
  tau?: number;
  /** Draws the positions (default: a fixed seed, 1). */
  rng?: Rng;
  /** Tap weights (default: the extractor's `layerWeights`). */
  layerWeights?: readonly number[];
  /** Weight of the term in `total` (default 1e-3, adaptation's measured choice: AdaptOptions.patchnceWeight). */
  weight?: number;
}

/** `count` distinct positions of [0, n) (all of them, in order, when count >= n). */
export function samplePositions(n: number, count: number, rng: Rng): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const idx = Array.from({ length: n }, (_, i) => i);
  // Partial Fisher-Yates: the first `count` entries are a uniform sample without replacement.
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(n - i);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, count);
}

/** sqrt via exp(0.5 log x): the op set has no sqrt, and x > 0 here (eps added). */
const sqrtPos = (x: Tensor): Tensor => exp(mulScalar(log(x), 0.5));

/** Rows of [S, C] scaled to unit L2 norm (eps 1e-12 inside the root, so a zero row stays finite). */
function normalizeRows(x: Tensor): Tensor {
  return div(x, sqrtPos(addScalar(sum(mul(x, x), [1], true), 1e-12)));
}

/**
 * PatchNCE between feature maps q (query, with gradient) and k (key, detach it yourself), both
 * [N,C,H,W], at the given flat positions of H*W (the same for every item). Mean over items and
 * positions of -log softmax_t(<q_s,k_t>/tau)[s]. Returns a scalar (shape []).
 */
export function patchNceFromFeatures(q: Tensor, k: Tensor, positions: readonly number[], tau = 0.07): Tensor {
  if (q.shape.length !== 4 || q.shape.join() !== k.shape.join()) throw new Error(`patchNce: query and key must be the same [N,C,H,W], got [${q.shape}] and [${k.shape}]`);
  const [n, c, h, w] = q.shape as [number, number, number, number];
  const hw = h * w;
  const s = positions.length;
  if (s < 2) throw new Error('patchNce: needs at least 2 positions (one positive, one negative)');
  return tidy(() => {
    // One-hot [S, HW]: linear(sel, f[C,HW]) = sel @ f^T picks the C-vectors at the positions as rows.
    const selData = new Float32Array(s * hw);
    positions.forEach((p, i) => {
      if (!(p >= 0 && p < hw)) throw new Error(`patchNce: position ${p} outside 0..${hw - 1}`);
      selData[i * hw + p] = 1;
    });
    const sel = Tensor.fromData(q.engine, selData, [s, hw]);
    const eye = new Float32Array(s * s);
    for (let i = 0; i < s; i++) eye[i * s + i] = 1;
    const diag = Tensor.fromData(q.engine, eye, [s, s]);
    const qs = n === 1 ? [q] : split(q, Array(n).fill(1), 0);
    const ks = n === 1 ? [k] : split(k, Array(n).fill(1), 0);
    let total: Tensor | null = null;
    for (let b = 0; b < n; b++) {
      const qn = normalizeRows(linear(sel, reshape(qs[b]!, [c, hw])));
      const kn = normalizeRows(linear(sel, reshape(ks[b]!, [c, hw])));
      // |logits| <= 1/tau, so exp(logits - 1/tau) lies in [exp(-2/tau), 1]: no overflow, and the
      // shift is a constant, so logsumexp needs no max pass.
      const logits = mulScalar(linear(qn, kn), 1 / tau);
      const lse = addScalar(log(sum(exp(addScalar(logits, -1 / tau)), [1])), 1 / tau);
      const pos = sum(mul(logits, diag), [1]);
      const l = sum(sub(lse, pos));
      total = total ? add(total, l) : l;
    }
    return reshape(mulScalar(total!, 1 / (n * s)), []);
  });
}

/** The frozen feature extractor: see the header. `dispose` frees the copy. */
export interface NetworkFeatures extends FeatureExtractor {
  dispose(): void;
}

/**
 * A frozen copy of `model`'s rain-branch head (conv + PReLU) and first residual block, from its
 * weights now; taps: the head's output and the block's output, weights 1 and 1.
 */
export async function networkFeatures(model: DrdNet): Promise<NetworkFeatures> {
  const engine = model.rainNet.head.items[0]!.parameters()[0]!.engine;
  const copy = new DrdNet(engine, model.config);
  try {
    loadModule(copy, await saveModule(model), { source: 'the model being adapted' });
  } catch (e) {
    copy.dispose();
    throw e;
  }
  for (const p of copy.parameters()) p.requiresGrad = false;
  copy.eval();
  const [conv, act] = copy.rainNet.head.items as [Conv2d, PReLU];
  const block = copy.rainNet.blocks.items[0];
  return {
    layerWeights: block ? [1, 1] : [1],
    features(x: Tensor): Tensor[] {
      return tidy(() => {
        const h0 = act.forward(conv.forward(x));
        return block ? [h0, block.forward(h0)] : [h0];
      });
    },
    dispose: () => copy.dispose(),
  };
}

/**
 * The PatchNCE term in the shape the Trainer expects: bg = PatchNCE(phi(B^_r), phi(O_r)) summed
 * over taps with their weights, rain = 0, total = weight * bg. Gradients reach `realFinal` only.
 */
export function patchNceLoss(extractor: FeatureExtractor, inputs: DualContrastiveInputs, opts: PatchNceOptions = {}): DualContrastiveLoss {
  const { realRainy, realFinal } = inputs;
  if (realRainy.shape.join() !== realFinal.shape.join()) throw new Error(`patchNceLoss: realRainy [${realRainy.shape}] and realFinal [${realFinal.shape}] differ`);
  const rng = opts.rng ?? new Rng(1);
  const samples = opts.samples ?? 64;
  const tau = opts.tau ?? 0.07;
  const weight = opts.weight ?? 1e-3;
  const weights = opts.layerWeights ?? extractor.layerWeights;
  return tidy(() => {
    const key = noGrad(() => batchedFeatures(extractor, [realRainy]))[0]!;
    const query = extractor.features(realFinal);
    if (weights.length !== query.length) throw new Error(`patchNceLoss: ${weights.length} layer weights for ${query.length} feature taps`);
    let bg: Tensor | null = null;
    query.forEach((fq, i) => {
      if (weights[i] === 0) return;
      const positions = samplePositions(fq.shape[2]! * fq.shape[3]!, samples, rng);
      const t = mulScalar(patchNceFromFeatures(fq, key[i]!, positions, tau), weights[i]!);
      bg = bg ? add(bg, t) : t;
    });
    const engine = realRainy.engine;
    const b: Tensor = bg ?? zeros(engine, []);
    return { total: mulScalar(b, weight), bg: b, rain: zeros(engine, []) };
  });
}
