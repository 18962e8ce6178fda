// Adaptation to the user's own unlabelled photos, shared by the page's "Adapt to this photo" and the
// `adapt` command: short semi-supervised runs of the project's Trainer with crops of the photos as
// the real batch (dual contrastive terms) and the bundled synthetic pairs as the labelled batch.
// Platform-neutral (the pairs come from src/train/adapt-pairs.ts; Node and the page load them).
import { PatchSampler } from '../data/sampler.js';
import type { Engine } from '../gpu/runtime.js';
import type { Image } from '../io/image.js';
import type { DrdNet } from '../model/drdnet.js';
import { randomVgg, type FeatureExtractor } from '../model/vgg.js';
import { Rng } from '../util/rng.js';
import type { AdaptPair } from './adapt-pairs.js';
import { dualContrastiveLoss } from './contrastive.js';
import { fftContrastiveLoss } from './fft-space.js';
import { networkFeatures, patchNceLoss, type NetworkFeatures } from './patchnce.js';
import { imageSource, pairSource } from './sources.js';
import { NonFiniteLossError, Trainer, type BatchSource, type PairBatch, type StepRecord } from './trainer.js';

export type { AdaptPair } from './adapt-pairs.js';

/**
 * BatchNorm during adaptation. 'batch': every forward in training mode (the real batch normalised by
 * its own statistics, which also enter the running ones); 'running': the real batch uses the
 * running statistics, the synthetic batch its own (and updates them); 'frozen': every forward uses
 * the running statistics and none are updated (BN's affine weights still learn).
 */
export type AdaptBn = 'batch' | 'running' | 'frozen';
export const ADAPT_BN_MODES: readonly AdaptBn[] = ['batch', 'running', 'frozen'];

/**
 * The contrastive term's feature space. 'vgg': the dual contrastive ratio in a seeded random VGG-19
 * (src/train/contrastive.ts); 'patchnce': CUT's patch-wise InfoNCE between the output and the photo
 * in a frozen copy of the network's own first layers (src/train/patchnce.ts); 'fft': the dual ratio
 * in patch-wise DFT amplitude (high band) and phase (low band) (src/train/fft-space.ts).
 */
export type ContrastiveSpace = 'vgg' | 'patchnce' | 'fft';
export const CONTRASTIVE_SPACES: readonly ContrastiveSpace[] = ['vgg', 'patchnce', 'fft'];

export interface AdaptOptions {
  steps: number;
  patch: number;
  batch: number;
  lr: number;
  seed: number;
  bn: AdaptBn;
  /** The photos through the dual contrastive terms (false: supervised steps on the pairs only). */
  contrastive: boolean;
  /**
   * The contrastive term's feature space (used only when `contrastive`). Default 'patchnce': the
   * highest mean over the 12 held-out crop cases of experiments/adapt-fft*.md (+0.20 dB; fft +0.03,
   * vgg -1.08) and the best on the two photos no weight was chosen on (clock, grass: +0.33 dB).
   */
  contrastiveSpace: ContrastiveSpace;
  /**
   * Weight of the PatchNCE term (space 'patchnce' only). Default 1e-3: of 0.1, 0.01 and 1e-3 on
   * the 6 crop cases of experiments/adapt-patchnce.md, 0.1 lost 2.2 dB on average and 0.01 lost
   * 0.5 (the InfoNCE of ~7 nats and its gradient swamp the supervised L1 of ~0.04), 1e-3 gained
   * 0.39 dB. Chosen on the cases it is reported on, so that number is optimistic.
   */
  patchnceWeight: number;
  /**
   * Weight of the frequency-space ratio (space 'fft' only). Default 3e-3: of 1e-3, 3e-3 and 1e-2
   * on the 6 crop cases of experiments/adapt-fft.md (brick, chelsea; rule fixed beforehand: the
   * highest mean among weights with no case below -0.5 dB), 3e-3 gained +0.50 dB (worst case
   * +0.12), 1e-3 +0.42, 1e-2 +0.47 (worst -0.19). Chosen on those cases; clock and grass
   * (experiments/adapt-fft-check.md) were not looked at for it.
   */
  fftWeight: number;
}

/**
 * The defaults of the page and the command, chosen from experiments/adapt-results*.md and
 * adapt-fft*.md (scripts/measure-adapt.ts, summary in experiments/adapt-summary.md): contrastive
 * terms on, BN frozen. On 128 px crops of 2 held-out photos x 3 unseen recipes (3 seeds) BN on batch
 * statistics did as well (+0.54 vs +0.47 dB), but on a whole 0.26 MP photo of 4 other held-out
 * photos it lost 3 dB where frozen BN gained; running statistics for the real batch lost up to 10 dB.
 * Space 'fft' (not 'vgg') since the retrained bundled weights: on brick/chelsea crops +0.50 dB
 * (worst case +0.12) against VGG's +0.14 (worst -0.64), and on clock/grass, which no choice
 * looked at, -0.44 (worst -2.03) against VGG's -2.29 (worst -8.20). Not a promise: there it lost
 * 0.44 dB on average, and PatchNCE (+0.33) and no contrastive term (+0.18) did better.
 */
export const ADAPT_DEFAULTS: Readonly<AdaptOptions> = { steps: 20, patch: 48, batch: 2, lr: 1e-4, seed: 1, bn: 'frozen', contrastive: true, contrastiveSpace: 'patchnce', patchnceWeight: 1e-3, fftWeight: 3e-3 };

export interface AdaptHooks {
  onStep?(r: StepRecord, total: number): void;
  /** Polled between steps: a step in flight always finishes, so the weights stay consistent. */
  shouldStop?(): boolean;
}

export interface AdaptResult {
  /** The steps taken (their updates are in the model). */
  records: StepRecord[];
  /** Why it ended early: a non-finite loss, caught before that step changed any weight. */
  diverged?: string;
}

/** Smallest crop the extractor accepts (relu3_1 sits behind two 2x2 poolings) and a sane floor. */
export const ADAPT_MIN_PATCH = 8;

/**
 * The largest usable patch: the requested one, limited by every photo and every synthetic pair.
 * A photo too small for any crop is an error naming it (by `names[i]` where given).
 */
export function fitPatch(requested: number, photos: readonly Image[], pairs: readonly AdaptPair[], names?: readonly string[]): number {
  const sizes = [...photos, ...pairs.map((q) => q.rainy)].map((im) => Math.min(im.width, im.height));
  const p = Math.min(requested, ...sizes);
  if (p < ADAPT_MIN_PATCH) {
    const i = photos.findIndex((im) => Math.min(im.width, im.height) < ADAPT_MIN_PATCH);
    const what = i < 0 ? 'a synthetic pair' : `${names ? `'${names[i]}'` : 'the photo'} (${photos[i].width}x${photos[i].height})`;
    throw new Error(`${what} is too small to adapt to: crops need at least ${ADAPT_MIN_PATCH}x${ADAPT_MIN_PATCH} pixels`);
  }
  return p;
}

/** Seeded random crops (and flips) of the photos: the unlabelled real batch. */
export function photoCrops(photos: readonly Image[], patch: number, seed: number): BatchSource<Float32Array> {
  return imageSource(PatchSampler.fromImages(photos.map((image, i) => ({ name: `photo ${i + 1}`, image })), { patch, rng: seed }));
}

/** Seeded random crops (and flips) of the synthetic pairs: the labelled batch. */
export function pairCrops(pairs: readonly AdaptPair[], patch: number, seed: number): BatchSource<PairBatch> {
  return pairSource(PatchSampler.fromPairs(pairs.map((p, i) => ({ name: `synthetic pair ${i + 1}`, ...p })), { patch, rng: seed }));
}

const extractors = new WeakMap<Engine, FeatureExtractor>();

/**
 * The frozen feature extractor of the contrastive terms: a seeded random VGG-19 up to relu3_1, as
 * src/model/vgg.ts explains (no pretrained ImageNet weights ship with the package or the page).
 */
function extractorFor(engine: Engine): FeatureExtractor {
  let x = extractors.get(engine);
  if (!x) extractors.set(engine, (x = randomVgg(engine, 0)));
  return x;
}

/**
 * Runs up to `opts.steps` steps on `model` in place; returns with the model in eval mode. `photos`
 * may be empty only when `opts.contrastive` is false.
 */
export async function adaptToPhotos(
  engine: Engine,
  model: DrdNet,
  photos: readonly Image[],
  pairs: readonly AdaptPair[],
  options: Partial<AdaptOptions> = {},
  hooks: AdaptHooks = {},
): Promise<AdaptResult> {
  const opts: AdaptOptions = { ...ADAPT_DEFAULTS, ...options };
  if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new Error(`adapt: steps must be a non-negative integer, got ${opts.steps}`);
  if (!Number.isInteger(opts.batch) || opts.batch < 1) throw new Error(`adapt: batch must be a positive integer, got ${opts.batch}`);
  if (!(opts.lr > 0) || !Number.isFinite(opts.lr)) throw new Error(`adapt: the learning rate must be a positive number, got ${opts.lr}`);
  if (!ADAPT_BN_MODES.includes(opts.bn)) throw new Error(`adapt: unknown BN mode '${opts.bn}' (one of ${ADAPT_BN_MODES.join(', ')})`);
  if (!CONTRASTIVE_SPACES.includes(opts.contrastiveSpace)) throw new Error(`adapt: unknown contrastive space '${opts.contrastiveSpace}' (one of ${CONTRASTIVE_SPACES.join(', ')})`);
  if (!(opts.patchnceWeight >= 0) || !Number.isFinite(opts.patchnceWeight)) throw new Error(`adapt: the PatchNCE weight must be a non-negative number, got ${opts.patchnceWeight}`);
  if (!(opts.fftWeight >= 0) || !Number.isFinite(opts.fftWeight)) throw new Error(`adapt: the FFT-space weight must be a non-negative number, got ${opts.fftWeight}`);
  if (pairs.length === 0) throw new Error('adapt: no synthetic pairs for the labelled batch');
  if (opts.contrastive && photos.length === 0) throw new Error('adapt: no photo to adapt to');
  const patch = fitPatch(opts.patch, opts.contrastive ? photos : [], pairs);
  const seed = opts.seed;
  // PatchNCE's features are the network's own layers as they are now, before any step moves them.
  const own: NetworkFeatures | null = opts.contrastive && opts.contrastiveSpace === 'patchnce' ? await networkFeatures(model) : null;
  // Its sampled positions follow the run's seed, so a run replays exactly.
  const positions = new Rng(seed + 2);
  const trainer = new Trainer(
    engine,
    model,
    pairCrops(pairs, patch, seed + 1),
    // No decay within a short adaptation run.
    { batch: opts.batch, patch, lr: opts.lr, milestones: [], gamma: 1, realBn: opts.bn === 'batch' ? 'batch' : 'running', frozenBn: opts.bn === 'frozen' },
    opts.contrastive ? photoCrops(photos, patch, seed) : null,
    !opts.contrastive
      ? null
      : own
        ? (inputs) => patchNceLoss(own, inputs, { rng: positions, weight: opts.patchnceWeight })
        : opts.contrastiveSpace === 'fft'
          ? (inputs) => fftContrastiveLoss(inputs, { weight: opts.fftWeight })
          : (inputs) => dualContrastiveLoss(extractorFor(engine), inputs),
  );
  const records: StepRecord[] = [];
  try {
    for (let i = 0; i < opts.steps && !hooks.shouldStop?.(); i++) {
      let r: StepRecord;
      try {
        r = await trainer.trainStep();
      } catch (e) {
        if (e instanceof NonFiniteLossError) return { records, diverged: e.message };
        throw e;
      }
      records.push(r);
      hooks.onStep?.(r, opts.steps);
    }
  } finally {
    trainer.opt.dispose();
    own?.dispose();
    model.eval();
  }
  return { records };
}
