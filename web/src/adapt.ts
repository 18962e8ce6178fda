// "Adapt to this photo": N semi-supervised steps through the project's Trainer, with crops of the
// photo as the unlabelled real batch (dual contrastive terms) and the bundled synthetic pairs as
// the labelled batch (supervised loss).
import type { Engine } from '../../src/gpu/runtime.js';
import type { Image } from '../../src/io/image.js';
import type { DrdNet } from '../../src/model/drdnet.js';
import { randomVgg, type FeatureExtractor } from '../../src/model/vgg.js';
import { dualContrastiveLoss } from '../../src/train/contrastive.js';
import { NonFiniteLossError, Trainer, type StepRecord } from '../../src/train/trainer.js';
import type { Pair } from './assets.js';
import { pairCrops, photoCrops } from './sources.js';

export interface AdaptOptions {
  steps: number;
  patch: number;
  batch: number;
  lr: number;
  seed?: number;
}

export interface AdaptHooks {
  onStep(r: StepRecord, total: number): void;
  /** Polled between steps: a step in flight always finishes, so the weights stay consistent. */
  shouldStop(): boolean;
}

/** Smallest crop the extractor accepts (relu3_1 sits behind two 2x2 poolings) and a sane floor. */
const MIN_PATCH = 8;

/** The largest usable patch: the requested one, limited by the photo and every synthetic pair. */
export function fitPatch(requested: number, photo: Image, pairs: readonly Pair[]): number {
  const p = Math.min(requested, photo.width, photo.height, ...pairs.map((q) => Math.min(q.rainy.width, q.rainy.height)));
  if (p < MIN_PATCH) throw new Error(`the photo (${photo.width}x${photo.height}) is too small to adapt to: crops need at least ${MIN_PATCH}x${MIN_PATCH} pixels`);
  return p;
}

const extractors = new WeakMap<Engine, FeatureExtractor>();

/**
 * The frozen feature extractor of the contrastive terms: a seeded random VGG-19 up to relu3_1,
 * as src/model/vgg.ts explains (no pretrained ImageNet weights ship with the page).
 */
function extractorFor(engine: Engine): FeatureExtractor {
  let x = extractors.get(engine);
  if (!x) extractors.set(engine, (x = randomVgg(engine, 0)));
  return x;
}

export interface AdaptResult {
  /** The steps taken (their updates are in the model). */
  records: StepRecord[];
  /** Why it ended early: a non-finite loss, caught before that step changed any weight. */
  diverged?: string;
}

/** Runs up to `opts.steps` steps on `model` in place. */
export async function adaptToPhoto(engine: Engine, model: DrdNet, photo: Image, pairs: readonly Pair[], opts: AdaptOptions, hooks: AdaptHooks): Promise<AdaptResult> {
  const patch = fitPatch(opts.patch, photo, pairs);
  const seed = opts.seed ?? 1;
  const extractor = extractorFor(engine);
  const trainer = new Trainer(
    engine,
    model,
    pairCrops(pairs, patch, seed + 1),
    // No decay within a short adaptation run; BN uses the real batch's own statistics, as in training.
    { batch: opts.batch, patch, lr: opts.lr, milestones: [], gamma: 1, realBn: 'batch' },
    photoCrops(photo, patch, seed),
    (inputs) => dualContrastiveLoss(extractor, inputs),
  );
  const records: StepRecord[] = [];
  try {
    for (let i = 0; i < opts.steps && !hooks.shouldStop(); i++) {
      let r: StepRecord;
      try {
        r = await trainer.trainStep();
      } catch (e) {
        if (e instanceof NonFiniteLossError) return { records, diverged: e.message };
        throw e;
      }
      records.push(r);
      hooks.onStep(r, opts.steps);
    }
  } finally {
    trainer.opt.dispose();
    model.eval();
  }
  return { records };
}
