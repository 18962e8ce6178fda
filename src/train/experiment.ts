// Layer-variant experiments: several model/training variants under one budget (same steps,
// batch, patch, seed and data), each evaluated on the held-out photos.
import type { Engine } from '../gpu/runtime.js';
import type { Image } from '../io/image.js';
import { PatchSampler } from '../data/sampler.js';
import { rngFor, synthesizeRain, type RainPreset } from '../data/synth.js';
import { type DrdConfig, preset } from '../model/config.js';
import { derainImage } from '../model/derain.js';
import { DrdNet } from '../model/drdnet.js';
import { randomVgg } from '../model/vgg.js';
import { dualContrastiveLoss } from './contrastive.js';
import { clampImage, psnr, ssim } from './metrics.js';
import { pairSource, imageSource } from './sources.js';
import { Trainer, type StepRecord } from './trainer.js';

export interface ExperimentBase {
  preset: 'micro' | 'tiny' | 'paper';
  steps: number;
  batch: number;
  patch: number;
  lr: number;
  seed: number;
  /** Rain recipe of the labelled pairs and of the held-out split. */
  rain: RainPreset;
  /** Rain recipe of the unlabelled "real" set. */
  realRain: RainPreset;
  contrastive: boolean;
  vggTap: number;
  realBatch: number;
  crEvery: number;
  crBg: number;
  crRain: number;
}

export interface Variant {
  name: string;
  /** Overrides of the preset's model configuration (se, detail, dilations, channels, ...). */
  model?: Partial<DrdConfig>;
  /** Overrides of the training settings (e.g. contrastive: false); budget keys are refused. */
  train?: Partial<Pick<ExperimentBase, 'contrastive' | 'crBg' | 'crRain' | 'vggTap' | 'lr'>>;
}

export interface ExperimentSpec {
  base?: Partial<ExperimentBase>;
  variants: Variant[];
}

export interface VariantResult {
  name: string;
  params: number;
  psnr: number;
  ssim: number;
  psnr_in: number;
  ssim_in: number;
  ms_per_step: number;
  log: StepRecord[];
}

export const DEFAULT_BASE: ExperimentBase = {
  preset: 'tiny', steps: 300, batch: 4, patch: 64, lr: 1e-3, seed: 1, rain: 'light', realRain: 'real',
  contrastive: true, vggTap: 2, realBatch: 2, crEvery: 2, crBg: 0.1, crRain: 0.1,
};

/** A malformed experiment file (the CLI reports it as a usage error). */
export class ExperimentSpecError extends Error {}

/** Keys a variant may override; anything else (a typo such as "SE" or "detial") is refused. */
const VARIANT_KEYS = ['name', 'model', 'train'];
const MODEL_KEYS: ReadonlyArray<keyof DrdConfig> = ['channels', 'rainBlocks', 'detailBlocks', 'seHidden', 'dilations', 'se', 'detail', 'detailInput'];
const TRAIN_KEYS = ['contrastive', 'crBg', 'crRain', 'vggTap', 'lr'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseSpec(text: string, source: string): ExperimentSpec {
  // Not an experiment file at all is bad input; a typo'd key or value in one is a usage error.
  const fail = (msg: string): never => {
    throw new ExperimentSpecError(`${source}: ${msg}`);
  };
  const notSpec = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    notSpec(`not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isObject(spec) || !Array.isArray(spec.variants) || spec.variants.length === 0) return notSpec('needs a non-empty "variants" array');
  const unknown = (obj: Record<string, unknown>, allowed: readonly string[], where: string) => {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(`unknown key '${k}' in ${where} (allowed: ${allowed.join(', ')})`);
  };
  unknown(spec, ['base', 'variants'], 'the file');
  const names = new Set<string>();
  for (const v of spec.variants as unknown[]) {
    if (!isObject(v) || typeof v.name !== 'string' || !/^[\w.-]+$/.test(v.name)) fail(`every variant needs a "name" of letters, digits, '.', '-' or '_'`);
    const variant = v as Record<string, unknown> & { name: string };
    if (names.has(variant.name)) fail(`variant name '${variant.name}' is used twice`);
    names.add(variant.name);
    unknown(variant, VARIANT_KEYS, `variant '${variant.name}'`);
    for (const [key, allowed] of [['model', MODEL_KEYS], ['train', TRAIN_KEYS]] as const) {
      const part = variant[key];
      if (part === undefined) continue;
      if (!isObject(part)) fail(`"${key}" of variant '${variant.name}' must be an object`);
      unknown(part as Record<string, unknown>, allowed, `"${key}" of variant '${variant.name}'`);
    }
  }
  if (spec.base !== undefined) {
    if (!isObject(spec.base)) fail('"base" must be an object');
    const base = spec.base as Record<string, unknown>;
    unknown(base, Object.keys(DEFAULT_BASE), '"base"');
    for (const [k, v] of Object.entries(base)) {
      const want = typeof DEFAULT_BASE[k as keyof ExperimentBase];
      if (typeof v !== want) fail(`base setting '${k}' must be a ${want}, got ${JSON.stringify(v)}`);
      if (want === 'number' && !((v as number) > 0 || (k === 'seed' && v === 0))) fail(`base setting '${k}' must be positive, got ${JSON.stringify(v)}`);
    }
  }
  return spec as unknown as ExperimentSpec;
}

interface Data {
  pairs: Array<{ name: string; rainy: Image; clean: Image }>;
  real: Array<{ name: string; image: Image }>;
  heldout: Array<{ name: string; rainy: Image; clean: Image }>;
}

export function makeData(train: Array<{ name: string; image: Image }>, heldout: Array<{ name: string; image: Image }>, base: ExperimentBase): Data {
  const rain = (imgs: typeof train, recipe: RainPreset, seed: number) =>
    imgs.map(({ name, image }) => ({ name, clean: image, rainy: synthesizeRain(image, recipe, rngFor(seed, name)).rainy }));
  return {
    pairs: rain(train, base.rain, base.seed),
    real: rain(train, base.realRain, base.seed + 100).map(({ name, rainy }) => ({ name, image: rainy })),
    heldout: rain(heldout, base.rain, base.seed + 200),
  };
}

export async function runVariant(engine: Engine, v: Variant, base: ExperimentBase, data: Data, onStep?: (r: StepRecord) => void): Promise<VariantResult> {
  const t = { ...base, ...v.train };
  const model = new DrdNet(engine, { ...preset(base.preset), ...v.model, preset: undefined }, base.seed);
  const pairs = pairSource(PatchSampler.fromPairs(data.pairs, { patch: base.patch, rng: base.seed }));
  const real = t.contrastive ? imageSource(PatchSampler.fromImages(data.real, { patch: base.patch, rng: base.seed + 1 })) : null;
  const extractor = t.contrastive ? randomVgg(engine, 0, t.vggTap) : null;
  const cr = extractor ? (inputs: Parameters<typeof dualContrastiveLoss>[1]) => dualContrastiveLoss(extractor, inputs, { bgWeight: t.crBg, rainWeight: t.crRain }) : null;
  const milestones = [0.5, 0.75, 0.9].map((f) => Math.round(f * base.steps));
  const trainer = new Trainer(engine, model, pairs, { batch: base.batch, patch: base.patch, lr: t.lr, milestones, gamma: 0.2, realBn: 'batch', realBatch: t.realBatch, crEvery: t.crEvery }, real, cr);
  trainer.contrastiveWeights = { bg: t.crBg, rain: t.crRain };
  const log: StepRecord[] = [];
  try {
    for (let i = 0; i < base.steps; i++) {
      const r = await trainer.trainStep();
      log.push(r);
      onStep?.(r);
    }
    let sp = 0, ss = 0, si = 0, sii = 0;
    for (const h of data.heldout) {
      const out = clampImage(await derainImage(model, h.rainy));
      sp += psnr(out, h.clean);
      ss += ssim(out, h.clean);
      si += psnr(h.rainy, h.clean);
      sii += ssim(h.rainy, h.clean);
    }
    const n = data.heldout.length;
    const timed = log.slice(Math.min(3, log.length - 1)); // the first steps compile pipelines
    return {
      name: v.name,
      params: model.parameterCount(),
      psnr: sp / n,
      ssim: ss / n,
      psnr_in: si / n,
      ssim_in: sii / n,
      ms_per_step: timed.reduce((a, r) => a + r.ms, 0) / Math.max(1, timed.length),
      log,
    };
  } finally {
    trainer.opt.dispose();
    extractor?.dispose();
    model.dispose();
  }
}

export function resultsTable(results: VariantResult[], base: ExperimentBase): string {
  const rows = results.map((r) => `| ${r.name} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(4)} | ${r.params.toLocaleString('en-US')} | ${r.ms_per_step.toFixed(0)} |`);
  return [
    `Budget: ${base.preset} preset, ${base.steps} steps, batch ${base.batch}, patch ${base.patch}, lr ${base.lr}, seed ${base.seed}; ` +
      `held-out ${base.rain} rain, input PSNR ${results[0]?.psnr_in.toFixed(2)} dB / SSIM ${results[0]?.ssim_in.toFixed(4)} (rgb-float).`,
    '',
    '| variant | PSNR (dB) | SSIM | params | ms/step |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
