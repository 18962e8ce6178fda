// Where tuned kernel choices persist between runs (the store the entry point registers: a file in Node, localStorage in browsers), and the tuning switch.
import type { TuningStore } from '../io/tuning-store.js';

export type { TuningStore };

let store: TuningStore | null = null;

/** The entry points register their platform's store here (Node: a cache file; browsers: localStorage). */
export function setTuningStore(s: TuningStore | null): void {
  store = s;
}

/** The registered store, or null (tuned choices then live only as long as the engine). */
export function defaultTuningStore(): TuningStore | null {
  return store;
}

/**
 * Tuning is on unless SEMI_DRDNET_TUNE=0: the environment variable in Node (read without importing
 * Node), or a global of that name in a page (set before the engine is created, e.g. by a test).
 */
export function tuneByDefault(): boolean {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; SEMI_DRDNET_TUNE?: unknown };
  const raw = g.process?.env?.SEMI_DRDNET_TUNE ?? g.SEMI_DRDNET_TUNE;
  const v = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  return !(v === '0' || v === 'false' || v === 'off' || v === 'no');
}
