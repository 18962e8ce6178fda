// Training batch sources over folders on disk (Node): paired synthetic data and unlabelled real images.
import { loadImages, loadPairs, PatchSampler } from '../data/dataset.js';
import type { BatchSource, PairBatch } from './trainer.js';
import { imageSource, pairSource } from './sources.js';

/** Random crops (and flips) of a paired folder (rain/ + norain/). */
export async function openPairs(dir: string, patch: number, seed: number): Promise<BatchSource<PairBatch>> {
  const pairs = await loadPairs(dir);
  return pairSource(inFolder(dir, () => PatchSampler.fromPairs(pairs, { patch, rng: seed })));
}

/** Random crops (and flips) of an unlabelled folder of real rainy images. */
export async function openReal(dir: string, patch: number, seed: number): Promise<BatchSource<Float32Array>> {
  const images = await loadImages(dir);
  return imageSource(inFolder(dir, () => PatchSampler.fromImages(images, { patch, rng: seed })));
}

/** The sampler names images by file name: its refusals name the folder too. */
function inFolder<T>(dir: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    throw new Error(`'${dir}': ${(e as Error).message}`);
  }
}
