// Training batch sources over folders on disk (Node): paired synthetic data and unlabelled real images.
import { loadImages, loadPairs, PatchSampler } from '../data/dataset.js';
import type { BatchSource, PairBatch, SourceState } from './trainer.js';

function stateOf(s: PatchSampler): SourceState {
  const st = s.state;
  return { rng: st.rng, cursor: [st.epoch, st.cursor, ...st.order] };
}

function restore(s: PatchSampler, st: SourceState): void {
  const [epoch, cursor, ...order] = st.cursor;
  s.restore({ epoch, cursor, order, rng: st.rng });
}

export function pairSource(s: PatchSampler): BatchSource<PairBatch> {
  return {
    next: (b) => {
      const { rainy, clean } = s.nextPairs(b);
      return { rainy, clean };
    },
    saveState: () => stateOf(s),
    loadState: (st) => restore(s, st),
  };
}

export function imageSource(s: PatchSampler): BatchSource<Float32Array> {
  return { next: (b) => s.next(b).data, saveState: () => stateOf(s), loadState: (st) => restore(s, st) };
}

/** Random crops (and flips) of a paired folder (rain/ + norain/). */
export async function openPairs(dir: string, patch: number, seed: number): Promise<BatchSource<PairBatch>> {
  const pairs = await loadPairs(dir);
  return pairSource(PatchSampler.fromPairs(pairs, { patch, rng: seed }));
}

/** Random crops (and flips) of an unlabelled folder of real rainy images. */
export async function openReal(dir: string, patch: number, seed: number): Promise<BatchSource<Float32Array>> {
  const images = await loadImages(dir);
  return imageSource(PatchSampler.fromImages(images, { patch, rng: seed }));
}
