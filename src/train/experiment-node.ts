// runExperiment: the experiment runner for Node (reads the shipped photos and the researcher's module files); the CLI and scripts drive it.
import { dirname, resolve } from 'node:path';
import { loadImages } from '../data/dataset.js';
import { photosDir } from '../data/photos.js';
import { Engine } from '../gpu/runtime.js';
import { readFileBytes } from '../io/fs-node.js';
import {
  type ExperimentResults, type ExperimentSpec, type SeedResult, type Variant, type VariantSummary,
  makeData, parseSpec, resolveBase, runVariant, scorePairs, summarise, testDescription,
} from './experiment.js';
import type { StepRecord } from './trainer.js';
import { loadVariantModule } from './variant-module.js';

/** Which run a callback is about. */
export interface RunInfo {
  variant: string;
  seed: number;
  /** 1-based position of this run among all (variants x seeds), and their number. */
  run: number;
  runs: number;
}

/** Options of `runExperiment`. */
export interface RunExperimentOptions {
  /** The engine to train on (default: a new one, destroyed at the end). */
  engine?: Engine;
  /** Folder that relative `module` paths are resolved against (default: the spec file's folder, or the working directory). */
  dir?: string;
  /** After every training step. */
  onStep?: (record: StepRecord, run: RunInfo) => void;
  /** After every run (one variant, one seed), evaluated; awaited (e.g. to write the run's log). */
  onSeed?: (result: SeedResult, run: RunInfo) => void | Promise<void>;
  /** After the last seed of a variant, with its summary (mean, std, test against the first variant); awaited. */
  onVariant?: (summary: VariantSummary, index: number) => void | Promise<void>;
}

/**
 * Runs an experiment: every variant (the first is the baseline) once per seed under the base
 * budget, evaluated on the held-out photos under the labelled rain recipe and under `shiftRain`.
 * `spec` is an experiment object or the path of an experiment file. Variant modules are loaded
 * (and their errors reported) before any training. Returns what results.json holds, plus each
 * run's per-step `log`.
 */
export async function runExperiment(spec: ExperimentSpec | string, opts: RunExperimentOptions = {}): Promise<ExperimentResults> {
  let dir = opts.dir ?? process.cwd();
  if (typeof spec === 'string') {
    const file = spec;
    // An experiment file is a few lines of JSON; the cap keeps a device or pipe from being read forever.
    spec = parseSpec(new TextDecoder().decode(await readFileBytes(file, { maxBytes: 16 * 2 ** 20 })), file);
    dir = opts.dir ?? dirname(resolve(file));
  }
  const base = resolveBase(spec);
  const variants: Variant[] = [];
  for (const v of spec.variants) {
    const factories = v.factories ?? (v.module ? await loadVariantModule(resolve(dir, v.module)) : undefined);
    variants.push({ ...v, factories });
  }
  const engine = opts.engine ?? (await Engine.create());
  try {
    const [train, heldout] = [await loadImages(photosDir('train')), await loadImages(photosDir('heldout'))];
    const data = makeData(train, heldout, base);
    const [input, inputShift] = [await scorePairs(null, data.heldout), await scorePairs(null, data.heldoutShift)];
    const results: ExperimentResults = {
      base,
      budget: base.minutes === null ? 'steps' : 'minutes',
      heldout: { images: heldout.length, psnr: input.psnr, ssim: input.ssim, psnr_shift: inputShift.psnr, ssim_shift: inputShift.ssim },
      test: testDescription(base.seeds.length),
      variants: [],
    };
    const runs = variants.length * base.seeds.length;
    for (const [i, v] of variants.entries()) {
      const seeds: SeedResult[] = [];
      let params = 0;
      for (const seed of base.seeds) {
        const info: RunInfo = { variant: v.name, seed, run: i * base.seeds.length + seeds.length + 1, runs };
        const { params: p, ...r } = await runVariant(engine, v, base, data, seed, opts.onStep && ((s) => opts.onStep!(s, info)));
        params = p;
        seeds.push(r);
        await opts.onSeed?.(r, info);
      }
      const summary = summarise(v.name, params, seeds, i === 0 ? null : results.variants[0].seeds, v.module);
      results.variants.push(summary);
      await opts.onVariant?.(summary, i);
    }
    return results;
  } finally {
    if (!opts.engine) engine.destroy();
  }
}
