// Patch samplers as the trainer's batch sources (platform-neutral; src/train/sources-node.ts opens folders).
import { PatchSampler } from '../data/sampler.js';
import type { BatchSource, PairBatch, SourceState } from './trainer.js';

function stateOf(s: PatchSampler): SourceState {
  const st = s.state;
  return { rng: st.rng, cursor: [st.epoch, st.cursor, ...st.order] };
}

function restore(s: PatchSampler, st: SourceState): void {
  const [epoch, cursor, ...order] = st.cursor;
  s.restore({ epoch, cursor, order, rng: st.rng });
}

/** A `PatchSampler` over rainy/clean pairs as the `Trainer`'s labelled batch source. */
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

/** A `PatchSampler` over unlabelled images as the `Trainer`'s real batch source. */
export function imageSource(s: PatchSampler): BatchSource<Float32Array> {
  return { next: (b) => s.next(b).data, saveState: () => stateOf(s), loadState: (st) => restore(s, st) };
}
