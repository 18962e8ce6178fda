// Self-tuning: loads an adapter's stored conv choices before the first use, and times the shape classes kernels met untuned at the next point where waiting is allowed.
import type { Engine } from '../../gpu/runtime.js';
import { autotuneConv, type AutotuneOptions } from './autotune.js';
import { checkConvConfig, checkWgradConfig, convTuning, isCurrentKey, pendingTuning, type ConvTileConfig, type WgradTileConfig } from './config.js';

/** What self-tuning did on one engine (tests and `bench --show-config` read it). */
export interface TuneStats {
  /** Entries taken from the store. */
  loaded: number;
  /** Shape classes (pass x class) timed, with the milliseconds each took and the winner. */
  timed: Array<{ key: string; ms: number; config: ConvTileConfig | WgradTileConfig }>;
}

interface State {
  loading: Promise<void> | null;
  /** Tuning runs one at a time per engine (two derains on one engine share the work). */
  queue: Promise<unknown>;
  stats: TuneStats;
}

const STATE = Symbol('conv2d self-tuning');
const state = (e: Engine) => e.local<State>(STATE, () => ({ loading: null, queue: Promise.resolve(), stats: { loaded: 0, timed: [] } }));

/** The store's name for this adapter: its description, or vendor/architecture/device when that is empty. */
export function adapterId(e: Engine): string {
  const a = e.adapter;
  return (a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown').trim();
}

/** What self-tuning loaded and timed on this engine so far. */
export function tuneStats(e: Engine): TuneStats {
  return state(e).stats;
}

/**
 * Loads this adapter's stored choices into the engine's tuning cache (once per engine; nothing
 * when tuning is off). Entries a kernel would refuse (stale or hand-edited) and entries of another
 * tuner revision are dropped.
 */
export function prepareTuning(e: Engine): Promise<void> {
  const s = state(e);
  if (!e.tune || !e.tuningStore) return Promise.resolve();
  return (s.loading ??= (async () => {
    const entries = await e.tuningStore!.load(adapterId(e)).catch(() => null);
    const cache = convTuning(e);
    for (const [key, c] of Object.entries(entries ?? {})) {
      if (cache.has(key) || !c || typeof c !== 'object' || !isCurrentKey(e, key)) continue;
      try {
        if (/\|wgrad:/.test(key)) checkWgradConfig(e, c as WgradTileConfig);
        else checkConvConfig(e, c as ConvTileConfig);
      } catch {
        continue;
      }
      cache.set(key, c as ConvTileConfig | WgradTileConfig);
      pendingTuning(e).delete(key);
      s.stats.loaded++;
    }
  })());
}

/** Default budget per pass and shape class: software adapters compile slowly, GPUs quickly. */
const budgetFor = (e: Engine) => (e.adapter.software ? 4000 : 1500);

/**
 * Times the shape classes that ran untuned since the last call (`engine.tune` on), records the
 * winners in the engine's cache and saves the adapter's choices in the store. Cheap when nothing
 * is pending. Call it where the caller may wait: after a derain tile, a training step, a bench
 * warm-up. `onStart` hears how many classes are about to be timed (none: not called). Returns the
 * choices made.
 */
export function tunePending(e: Engine, opts: AutotuneOptions & { onStart?: (classes: number) => void } = {}): Promise<Map<string, ConvTileConfig | WgradTileConfig>> {
  const s = state(e);
  const run = s.queue.then(async () => {
    const made = new Map<string, ConvTileConfig | WgradTileConfig>();
    const pending = pendingTuning(e);
    if (!e.tune) {
      pending.clear();
      return made;
    }
    await prepareTuning(e);
    const cache = convTuning(e);
    const todo = [...pending].filter(([key]) => !cache.has(key));
    pending.clear();
    if (todo.length === 0) return made;
    opts.onStart?.(todo.length);
    for (const [key, { kind, g, branches }] of todo) {
      const t0 = performance.now();
      const chosen = await autotuneConv(e, [{
        x: [g.N, g.Ci, g.H, g.W], w: [g.Co, g.Ci, g.KH, g.KW], stride: [g.sh, g.sw], padding: [g.ph, g.pw], dilation: [g.dh, g.dw], kinds: [kind],
        branches: branches?.map((b) => ({ padding: [b.ph, b.pw], dilation: [b.dh, b.dw] })),
      }], { reps: 3, budgetMs: budgetFor(e), ...opts });
      const c = chosen.get(key);
      if (!c) continue;
      made.set(key, c);
      s.stats.timed.push({ key, ms: performance.now() - t0, config: c });
    }
    if (e.tuningStore && made.size > 0) {
      // Everything this engine knows for the adapter, so entries loaded earlier are kept.
      await e.tuningStore.save(adapterId(e), Object.fromEntries(cache)).catch(() => undefined);
    }
    return made;
  });
  s.queue = run.catch(() => undefined);
  return run;
}
