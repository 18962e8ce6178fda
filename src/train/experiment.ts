// Layer-variant experiments: variants (configuration switches or the researcher's own blocks) trained
// under one budget for several seeds, evaluated on held-out photos under two rain recipes, summarised
// with mean, spread and a paired test against the first variant.
import type { Engine } from '../gpu/runtime.js';
import { noGrad } from '../graph/autograd.js';
import type { Layer } from '../graph/layers.js';
import { Module } from '../graph/module.js';
import { Tensor, tidy } from '../core/tensor.js';
import type { Image } from '../io/image.js';
import { PatchSampler } from '../data/sampler.js';
import { RAIN_PRESETS, rngFor, synthesizeRain, type RainPreset } from '../data/synth.js';
import { type DrdConfig, preset, validateConfig } from '../model/config.js';
import { derainImage } from '../model/derain.js';
import { DrdNet, type BlockContext } from '../model/drdnet.js';
import { randomVgg } from '../model/vgg.js';
import { MAX_SEED, Rng } from '../util/rng.js';
import { dualContrastiveLoss } from './contrastive.js';
import { clampImage, psnr, ssim } from './metrics.js';
import { pairSource, imageSource } from './sources.js';
import { mean, pairedTTest, sampleStd, type PairedTest } from './stats.js';
import { Trainer, type DerainModule, type StepRecord } from './trainer.js';

/** The shared budget and data of an experiment (`base` in the file; every key optional there). */
export interface ExperimentBase {
  preset: 'micro' | 'tiny' | 'paper';
  /** Steps per variant and seed; with `minutes`, a cap (null: none). */
  steps: number | null;
  /** Training time per variant and seed, in minutes (null: the budget is `steps`). */
  minutes: number | null;
  batch: number;
  patch: number;
  lr: number;
  /** Every variant is trained once per seed; the seed drives initialisation, crop positions and data order. */
  seeds: number[];
  /** Rain recipe of the labelled pairs and of the first held-out evaluation. */
  rain: RainPreset;
  /** Rain recipe of the unlabelled "real" set (contrastive terms). */
  realRain: RainPreset;
  /** Rain recipe of the second held-out evaluation: never seen with labels. */
  shiftRain: RainPreset;
  contrastive: boolean;
  vggTap: number;
  realBatch: number;
  crEvery: number;
  crBg: number;
  crRain: number;
}

/** What the researcher's block factories get: the block context of `DrdNet` plus the variant's `options`. */
export interface VariantBlockContext extends BlockContext {
  /** The variant's `options` object from the experiment file ({} when absent). */
  options: Record<string, unknown>;
}

/** What a whole-network factory gets. */
export interface NetworkContext {
  engine: Engine;
  /** Seeded with the run's seed: draw initial weights from it. */
  rng: Rng;
  seed: number;
  /** The preset's configuration with the variant's `model` overrides. */
  config: DrdConfig;
  options: Record<string, unknown>;
}

/**
 * The exports of a variant module. Either `network` (the whole network: a Module whose forward
 * maps a rainy batch [N,3,H,W] to `{ derained, final, rain? }`), or any of the block factories,
 * each called once per block, returning a Layer that maps [N,C,H,W] to [N,C,H,W].
 */
export interface VariantFactories {
  /** Builds the whole network (not combined with the block factories). */
  network?: (ctx: NetworkContext) => DerainModule;
  /** Replaces the SE gate of every rain residual block (the block adds its skip). */
  rainGate?: (ctx: VariantBlockContext) => Layer;
  /** Replaces every rain residual block, skip connection included. */
  rainBlock?: (ctx: VariantBlockContext) => Layer;
  /** Replaces every detail block, skip connection included. */
  detailBlock?: (ctx: VariantBlockContext) => Layer;
}

/** The export names a variant module may use, in the order they are looked for. */
export const FACTORY_KINDS = ['network', 'rainGate', 'rainBlock', 'detailBlock'] as const;

/** One variant of an experiment: configuration overrides, training overrides, or the researcher's factories. */
export interface Variant {
  name: string;
  /** Overrides of the preset's model configuration (se, detail, dilations, channels, ...). */
  model?: Partial<DrdConfig>;
  /** Overrides of the training settings (e.g. contrastive: false); budget keys are refused. */
  train?: Partial<Pick<ExperimentBase, 'contrastive' | 'crBg' | 'crRain' | 'vggTap' | 'lr'>>;
  /** A .ts/.js file (relative to the experiment file) exporting `VariantFactories`. */
  module?: string;
  /** Passed to the module's factories as `ctx.options`. */
  options?: Record<string, unknown>;
  /** Factories given in code (library use), instead of or before `module` is loaded. */
  factories?: VariantFactories;
}

/** An experiment file: `base` settings (all optional) and the variants, the first being the baseline. */
export interface ExperimentSpec {
  base?: Partial<ExperimentBase> & { seed?: number };
  variants: Variant[];
}

/** One training run of one variant with one seed, evaluated on both rain recipes. */
export interface SeedResult {
  seed: number;
  /** Held-out mean PSNR / SSIM under the labelled recipe. */
  psnr: number;
  ssim: number;
  /** The same under `shiftRain`. */
  psnr_shift: number;
  ssim_shift: number;
  ms_per_step: number;
  steps: number;
  /** Wall time of the training steps, seconds. */
  train_s: number;
  /** Per-step records (left out of results.json; written as <variant>.seed<k>.jsonl). */
  log: StepRecord[];
}

/** A metric of SeedResult that the summary reports with mean, spread and a paired test. */
export const METRICS = ['psnr', 'ssim', 'psnr_shift', 'ssim_shift'] as const;
/** One of the four held-out metrics. */
export type Metric = (typeof METRICS)[number];

/** Per variant: every seed's result, mean and sample std of each metric, and the test against the baseline. */
export interface VariantSummary extends Record<`${Metric}_${'mean' | 'std'}`, number> {
  name: string;
  module?: string;
  params: number;
  seeds: SeedResult[];
  ms_per_step_mean: number;
  steps_mean: number;
  /** Paired t-test of this variant against the first, per metric (absent for the first). */
  vs_baseline?: Record<Metric, PairedTest>;
}

/** What an experiment produces (results.json is this without the per-step logs). */
export interface ExperimentResults {
  base: ExperimentBase;
  /** Which budget bounded the runs. */
  budget: 'steps' | 'minutes';
  /** Held-out photos and the rainy inputs' own scores under both recipes. */
  heldout: { images: number; psnr: number; ssim: number; psnr_shift: number; ssim_shift: number };
  /** How "differs from the baseline" is decided. */
  test: string;
  variants: VariantSummary[];
}

/** The base settings of a file that gives none. */
export const DEFAULT_BASE: ExperimentBase = {
  preset: 'tiny', steps: 300, minutes: null, batch: 4, patch: 64, lr: 1e-3, seeds: [1, 2, 3], rain: 'light', realRain: 'real', shiftRain: 'real',
  contrastive: true, vggTap: 2, realBatch: 2, crEvery: 2, crBg: 0.1, crRain: 0.1,
};

/** Significance level of the paired test. */
export const ALPHA = 0.05;
/** Steps at the start of a run that compile pipelines: left out of ms/step and of a time budget. */
const WARMUP_STEPS = 3;
/** The rain synthesized on the photos is the same for every seed and variant; only training randomness varies. */
const DATA_SEED = 1;

/** A malformed experiment file (the CLI reports it as a usage error). */
export class ExperimentSpecError extends Error {}

/** Keys a variant may override; anything else (a typo such as "SE" or "detial") is refused. */
const VARIANT_KEYS = ['name', 'model', 'train', 'module', 'options'];
const MODEL_KEYS: ReadonlyArray<keyof DrdConfig> = ['channels', 'rainBlocks', 'detailBlocks', 'seHidden', 'dilations', 'se', 'detail', 'detailInput'];
const TRAIN_KEYS = ['contrastive', 'crBg', 'crRain', 'vggTap', 'lr'];
const BASE_KEYS = [...Object.keys(DEFAULT_BASE), 'seed'];
const RAIN_KEYS = ['rain', 'realRain', 'shiftRain'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const isSeed = (s: unknown): boolean => Number.isInteger(s) && (s as number) >= 0 && (s as number) <= MAX_SEED;

/** Counts among the base and train settings (integers >= 1); vggTap is a VGG-19 stage, 1 to 5. */
const COUNT_KEYS = ['steps', 'batch', 'patch', 'realBatch', 'crEvery', 'vggTap'];

/** What a base or train setting must be when `v` is not that, else null. */
function settingProblem(k: string, v: unknown): string | null {
  if (k === 'seeds') {
    const ok = Array.isArray(v) && v.length > 0 && v.every(isSeed) && new Set(v).size === v.length;
    return ok ? null : `a non-empty list of distinct integers from 0 to ${MAX_SEED}`;
  }
  if (k === 'seed') return isSeed(v) ? null : `an integer from 0 to ${MAX_SEED}`;
  if (RAIN_KEYS.includes(k)) return typeof v === 'string' && Object.hasOwn(RAIN_PRESETS, v) ? null : `one of ${Object.keys(RAIN_PRESETS).join(', ')}`;
  const want = k === 'minutes' ? 'number' : typeof DEFAULT_BASE[k as keyof ExperimentBase];
  if (want !== 'number') return typeof v === want ? null : `a ${want}`;
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'a finite number';
  if (k === 'vggTap') return Number.isInteger(v) && v >= 1 && v <= 5 ? null : 'an integer from 1 to 5';
  if (COUNT_KEYS.includes(k)) return Number.isInteger(v) && v >= 1 ? null : 'an integer >= 1';
  return v > 0 ? null : 'a positive number';
}

/** Parses and checks an experiment file's text; a typo'd key or a bad value throws ExperimentSpecError naming it, non-JSON a plain Error. */
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
    notSpec(`not valid JSON (${(e as Error).message.replace(/\n/g, '\\n')})`);
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
    const where = `variant '${variant.name}'`;
    if (names.has(variant.name)) fail(`variant name '${variant.name}' is used twice`);
    names.add(variant.name);
    unknown(variant, VARIANT_KEYS, where);
    for (const [key, allowed] of [['model', MODEL_KEYS], ['train', TRAIN_KEYS]] as const) {
      const part = variant[key];
      if (part === undefined) continue;
      if (!isObject(part)) fail(`"${key}" of ${where} must be an object`);
      unknown(part as Record<string, unknown>, allowed, `"${key}" of ${where}`);
      if (key !== 'train') continue;
      for (const [k, v] of Object.entries(part as Record<string, unknown>)) {
        const want = settingProblem(k, v);
        if (want) fail(`"train" setting '${k}' of ${where} must be ${want}, got ${JSON.stringify(v)}`);
      }
    }
    if (variant.module !== undefined && (typeof variant.module !== 'string' || !/\.(m?ts|m?js)$/.test(variant.module))) {
      fail(`"module" of ${where} must be the path of a .ts or .js file (relative to the experiment file), got ${JSON.stringify(variant.module)}`);
    }
    if (variant.options !== undefined && !isObject(variant.options)) fail(`"options" of ${where} must be an object`);
    if (variant.options !== undefined && variant.module === undefined) fail(`"options" of ${where} are for a "module"'s factories, and it names none`);
  }
  if (spec.base !== undefined) {
    if (!isObject(spec.base)) fail('"base" must be an object');
    const base = spec.base as Record<string, unknown>;
    unknown(base, BASE_KEYS, '"base"');
    for (const [k, v] of Object.entries(base)) {
      const want = settingProblem(k, v);
      if (want) fail(`base setting '${k}' must be ${want}, got ${JSON.stringify(v)}`);
    }
    if (base.seed !== undefined && base.seeds !== undefined) fail(`base has both 'seed' and 'seeds': give the list of seeds only`);
  }
  // Each variant's model settings, checked now rather than hours later at its turn.
  const base = resolveBase(spec as unknown as ExperimentSpec);
  for (const v of (spec as unknown as ExperimentSpec).variants) {
    try {
      validateConfig(variantConfig(v, base));
    } catch (e) {
      fail(`"model" of variant '${v.name}': ${(e as Error).message.replace(/^model config: /, '')}`);
    }
  }
  return spec as unknown as ExperimentSpec;
}

/**
 * The base settings an experiment runs with: the file's over the defaults. A lone `seed` (files
 * from before seeds were lists) starts the default three seeds there; `minutes` without `steps`
 * leaves the step count uncapped.
 */
export function resolveBase(spec: ExperimentSpec): ExperimentBase {
  const { seed, ...given } = spec.base ?? {};
  const base: ExperimentBase = { ...DEFAULT_BASE, ...given };
  if (seed !== undefined && given.seeds === undefined) base.seeds = [seed, seed + 1, seed + 2];
  if (base.minutes !== null && given.steps === undefined) base.steps = null;
  return base;
}

type Pairs = Array<{ name: string; rainy: Image; clean: Image }>;

/** The experiment's data: training pairs, unlabelled real images, and the held-out photos under both recipes. */
export interface ExperimentData {
  pairs: Pairs;
  real: Array<{ name: string; image: Image }>;
  heldout: Pairs;
  heldoutShift: Pairs;
}

/** Synthesizes the experiment's rain on the training and held-out photos (the same for every seed and variant). */
export function makeData(train: Array<{ name: string; image: Image }>, heldout: Array<{ name: string; image: Image }>, base: ExperimentBase): ExperimentData {
  const rain = (imgs: typeof train, recipe: RainPreset, seed: number): Pairs =>
    imgs.map(({ name, image }) => ({ name, clean: image, rainy: synthesizeRain(image, recipe, rngFor(seed, name)).rainy }));
  return {
    pairs: rain(train, base.rain, DATA_SEED),
    real: rain(train, base.realRain, DATA_SEED + 100).map(({ name, rainy }) => ({ name, image: rainy })),
    heldout: rain(heldout, base.rain, DATA_SEED + 200),
    heldoutShift: rain(heldout, base.shiftRain, DATA_SEED + 300),
  };
}

/** Checks what a factory returned: a Module of this library (a second copy's tensors and autograd would not mix). */
function checked<M>(what: string, m: M): M {
  if (m instanceof Module) return m;
  const looksLikeModule = typeof m === 'object' && m !== null && typeof (m as { namedParameters?: unknown }).namedParameters === 'function';
  throw new Error(
    looksLikeModule
      ? `${what} returned a Module of a second copy of semi-drdnet: the module must import 'semi-drdnet' (bound to the running library when loaded by the experiment runner)`
      : `${what} must return a Module (a layer or network built from semi-drdnet), got ${m === null ? 'null' : typeof m}`,
  );
}

/** A variant's DrdNet configuration: the base preset with the variant's overrides. */
function variantConfig(v: Pick<Variant, 'model'>, base: ExperimentBase): DrdConfig {
  return { ...preset(base.preset), ...v.model, preset: undefined };
}

/** Builds a variant's network for one seed: DrdNet with the variant's config and block factories, or the module's own network. */
export function buildModel(engine: Engine, v: Variant, base: ExperimentBase, seed: number): DerainModule {
  const config = variantConfig(v, base);
  const options = v.options ?? {};
  const f = v.factories ?? {};
  const what = (kind: string) => `${v.module ?? `variant '${v.name}'`}: ${kind}()`;
  if (f.network) {
    const model = checked(what('network'), f.network({ engine, rng: new Rng(seed), seed, config, options }));
    if (typeof model.forward !== 'function') throw new Error(`${what('network')} returned a Module without forward(rainy)`);
    return model;
  }
  const block = (kind: 'rainGate' | 'rainBlock' | 'detailBlock') => {
    const make = f[kind];
    return make && ((ctx: BlockContext) => checked(what(kind), make({ ...ctx, options })));
  };
  return new DrdNet(engine, config, seed, { rainGate: block('rainGate'), rainBlock: block('rainBlock'), detailBlock: block('detailBlock') });
}

/** Derains one image with any DerainModule: tiled through `derainImage` for DrdNet, whole for the researcher's own networks. */
async function evaluateImage(model: DerainModule, img: Image): Promise<Image> {
  if (model instanceof DrdNet) return derainImage(model, img);
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    const engine = model.parameters()[0].engine;
    const data = await tidy(async () => {
      const input = Tensor.fromData(engine, img.data, [1, 3, img.height, img.width]);
      return await noGrad(() => model.forward(input)).final.read();
    });
    if (!data.every(Number.isFinite)) throw new Error('the network produced a non-finite output');
    return { width: img.width, height: img.height, data };
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
}

/** Mean PSNR and SSIM of the model (or, without one, of the rainy inputs) over held-out pairs. */
export async function scorePairs(model: DerainModule | null, pairs: Pairs): Promise<{ psnr: number; ssim: number }> {
  let p = 0;
  let s = 0;
  for (const h of pairs) {
    const out = model ? clampImage(await evaluateImage(model, h.rainy)) : h.rainy;
    p += psnr(out, h.clean);
    s += ssim(out, h.clean);
  }
  return { psnr: p / pairs.length, ssim: s / pairs.length };
}

/** Trains one variant with one seed under the base budget and evaluates it on both held-out recipes. */
export async function runVariant(engine: Engine, v: Variant, base: ExperimentBase, data: ExperimentData, seed: number, onStep?: (r: StepRecord) => void): Promise<SeedResult & { params: number }> {
  const t = { ...base, ...v.train };
  const model = buildModel(engine, v, base, seed);
  const pairs = pairSource(PatchSampler.fromPairs(data.pairs, { patch: base.patch, rng: seed }));
  const real = t.contrastive ? imageSource(PatchSampler.fromImages(data.real, { patch: base.patch, rng: seed + 1 })) : null;
  // The VGG stand-in is a fixed random feature extractor (part of the loss, like the pretrained VGG it replaces), not a seeded initialisation.
  const extractor = t.contrastive ? randomVgg(engine, 0, t.vggTap) : null;
  const cr = extractor ? (inputs: Parameters<typeof dualContrastiveLoss>[1]) => dualContrastiveLoss(extractor, inputs, { bgWeight: t.crBg, rainWeight: t.crRain }) : null;
  // The learning rate drops at 50%, 75% and 90% of the budget: of the steps, or of the time (then the milestone is the step at which that time passed).
  const fractions = [0.5, 0.75, 0.9];
  const milestones = base.minutes === null ? fractions.map((f) => Math.round(f * (base.steps ?? 0))) : [];
  const trainer = new Trainer(engine, model, pairs, { batch: base.batch, patch: base.patch, lr: t.lr, milestones, gamma: 0.2, realBn: 'batch', realBatch: t.realBatch, crEvery: t.crEvery }, real, cr);
  trainer.contrastiveWeights = { bg: t.crBg, rain: t.crRain };
  const log: StepRecord[] = [];
  const budgetMs = base.minutes === null ? Infinity : base.minutes * 60000;
  const maxSteps = base.steps ?? Infinity;
  let timedMs = 0;
  try {
    const t0 = performance.now();
    while (log.length < maxSteps && timedMs < budgetMs) {
      const r = await trainer.trainStep();
      log.push(r);
      if (log.length > WARMUP_STEPS) timedMs += r.ms;
      while (milestones.length < fractions.length && timedMs >= fractions[milestones.length] * budgetMs) milestones.push(trainer.step);
      onStep?.(r);
    }
    const trainS = (performance.now() - t0) / 1000;
    const [a, b] = [await scorePairs(model, data.heldout), await scorePairs(model, data.heldoutShift)];
    const timed = log.slice(Math.min(WARMUP_STEPS, log.length - 1));
    return {
      seed,
      psnr: a.psnr,
      ssim: a.ssim,
      psnr_shift: b.psnr,
      ssim_shift: b.ssim,
      ms_per_step: timed.reduce((acc, r) => acc + r.ms, 0) / Math.max(1, timed.length),
      steps: log.length,
      train_s: trainS,
      log,
      params: model.parameters().reduce((acc, p) => acc + p.size, 0),
    };
  } finally {
    trainer.opt.dispose();
    extractor?.dispose();
    model.dispose();
  }
}

/** Mean and sample std of every metric over the seeds, and the paired test against the baseline's seeds. */
export function summarise(name: string, params: number, seeds: SeedResult[], baseline: SeedResult[] | null, module?: string): VariantSummary {
  const stats = Object.fromEntries(METRICS.flatMap((m) => [[`${m}_mean`, mean(seeds.map((s) => s[m]))], [`${m}_std`, sampleStd(seeds.map((s) => s[m]))]])) as Record<`${Metric}_${'mean' | 'std'}`, number>;
  const summary: VariantSummary = { name, ...(module ? { module } : {}), params, seeds, ...stats, ms_per_step_mean: mean(seeds.map((s) => s.ms_per_step)), steps_mean: mean(seeds.map((s) => s.steps)) };
  if (baseline) {
    // Pair by seed: every variant ran the same seeds, in the same order.
    summary.vs_baseline = Object.fromEntries(METRICS.map((m) => [m, pairedTTest(baseline.map((s) => s[m]), seeds.map((s) => s[m]))])) as Record<Metric, PairedTest>;
  }
  return summary;
}

/** The caption's description of the significance test. */
export function testDescription(seeds: number): string {
  return `paired t-test over the ${seeds} seeds (same seeds for every variant), two-sided, p < ${ALPHA}`;
}

/** The results as a Markdown table with a caption stating the budget, the data and the test. */
export function resultsTable(res: ExperimentResults): string {
  const { base, heldout: h } = res;
  const n = base.seeds.length;
  const cell = (v: VariantSummary, m: Metric, digits: number) => {
    // One seed has no spread to show.
    const value = n < 2 ? v[`${m}_mean`].toFixed(digits) : `${v[`${m}_mean`].toFixed(digits)} ± ${v[`${m}_std`].toFixed(digits)}`;
    const t = v.vs_baseline?.[m];
    if (!t) return value;
    if (!Number.isFinite(t.p)) return `${value} (${t.meanDiff >= 0 ? '+' : ''}${t.meanDiff.toFixed(digits)})`;
    const diff = `${t.meanDiff >= 0 ? '+' : ''}${t.meanDiff.toFixed(digits)}, p ${t.p < 0.001 ? '< 0.001' : t.p.toFixed(3)}`;
    return t.p < ALPHA ? `**${value}** (${diff})` : `${value} (${diff})`;
  };
  const budget =
    res.budget === 'minutes'
      ? `${base.minutes} min of training per variant and seed (time budget; the first ${WARMUP_STEPS} steps, which compile pipelines, not counted${base.steps !== null ? `; at most ${base.steps} steps` : ''})`
      : `${base.steps} steps per variant and seed (step budget)`;
  const steps = res.budget === 'minutes';
  const rows = res.variants.map(
    (v) =>
      `| ${v.name} | ${cell(v, 'psnr', 2)} | ${cell(v, 'ssim', 4)} | ${cell(v, 'psnr_shift', 2)} | ${cell(v, 'ssim_shift', 4)} | ${v.params.toLocaleString('en-US')} | ${v.ms_per_step_mean.toFixed(0)} |${steps ? ` ${v.steps_mean.toFixed(0)} |` : ''}`,
  );
  return [
    `Budget: ${budget}; ${base.preset} preset, batch ${base.batch}, patch ${base.patch}, lr ${base.lr} (x0.2 at 50/75/90% of the budget), ` +
      `contrastive terms ${base.contrastive ? `on (unlabelled ${base.realRain} rain)` : 'off'}; seeds ${base.seeds.join(', ')}. ` +
      `Evaluated on ${h.images} held-out photos under ${base.rain} rain (the labelled training recipe; input ${h.psnr.toFixed(2)} dB / ${h.ssim.toFixed(4)}) ` +
      `and under ${base.shiftRain} rain (never labelled; input ${h.psnr_shift.toFixed(2)} dB / ${h.ssim_shift.toFixed(4)}), rgb-float.`,
    '',
    `Cells: mean ± sample std over the ${n} seed${n === 1 ? '' : 's'}; after them, the mean difference from ${res.variants[0].name} (the first row) and the p-value of a ${res.test}. ` +
      `**Bold**: differs from ${res.variants[0].name} beyond the seed noise at that level.` +
      (n >= 2 && res.variants.length > 1 ? ` The table makes ${METRICS.length * (res.variants.length - 1)} such tests; about ${(METRICS.length * (res.variants.length - 1) * ALPHA).toFixed(1)} would pass by chance alone.` : '') +
      (n < 2 ? ' With one seed there is no test.' : n < 5 ? ` With ${n} seeds the test has ${n - 1} degree${n === 2 ? '' : 's'} of freedom: only large and consistent differences pass it.` : ''),
    '',
    `| variant | PSNR ${base.rain} (dB) | SSIM ${base.rain} | PSNR ${base.shiftRain} (dB) | SSIM ${base.shiftRain} | params | ms/step |${steps ? ' steps |' : ''}`,
    `|---|---|---|---|---|---|---|${steps ? '---|' : ''}`,
    ...rows,
  ].join('\n');
}
