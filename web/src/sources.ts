// Batch sources for in-page adaptation: seeded random crops (and flips) of the user's photo as the
// unlabelled real batch, and of the bundled synthetic pairs as the labelled batch.
import { PatchSampler } from '../../src/data/sampler.js';
import type { Image } from '../../src/io/image.js';
import { imageSource, pairSource } from '../../src/train/sources.js';
import type { BatchSource, PairBatch } from '../../src/train/trainer.js';

export function photoCrops(photo: Image, patch: number, seed: number): BatchSource<Float32Array> {
  return imageSource(PatchSampler.fromImages([{ name: 'photo', image: photo }], { patch, rng: seed }));
}

export function pairCrops(pairs: ReadonlyArray<{ rainy: Image; clean: Image }>, patch: number, seed: number): BatchSource<PairBatch> {
  return pairSource(PatchSampler.fromPairs(pairs.map((p, i) => ({ name: `synthetic pair ${i + 1}`, ...p })), { patch, rng: seed }));
}
