// Batch sources for in-page adaptation, on the project's PatchSampler: seeded random crops (and
// flips) of the user's photo as the unlabelled real batch, and of the bundled synthetic pairs as
// the labelled batch.
import { PatchSampler } from '../../src/data/sampler.js';
import type { Image } from '../../src/io/image.js';
import type { BatchSource, PairBatch, SourceState } from '../../src/train/trainer.js';

/** The sampler's position in the trainer's shape: generator words, then epoch/cursor/order. */
function stateOf(s: PatchSampler): SourceState {
  const st = s.state;
  return { rng: st.rng, cursor: [st.epoch, st.cursor, ...st.order] };
}

function restore(s: PatchSampler, st: SourceState): void {
  s.restore({ rng: st.rng, epoch: st.cursor[0], cursor: st.cursor[1], order: st.cursor.slice(2) });
}

export function photoCrops(photo: Image, patch: number, seed: number): BatchSource<Float32Array> {
  const s = PatchSampler.fromImages([{ name: 'photo', image: photo }], { patch, rng: seed });
  return { next: (b) => s.next(b).data, saveState: () => stateOf(s), loadState: (st) => restore(s, st) };
}

export function pairCrops(pairs: ReadonlyArray<{ rainy: Image; clean: Image }>, patch: number, seed: number): BatchSource<PairBatch> {
  const s = PatchSampler.fromPairs(pairs.map((p, i) => ({ name: `synthetic pair ${i + 1}`, ...p })), { patch, rng: seed });
  return {
    next: (b) => {
      const { rainy, clean } = s.nextPairs(b);
      return { rainy, clean };
    },
    saveState: () => stateOf(s),
    loadState: (st) => restore(s, st),
  };
}
