// The browser's tuning store: one localStorage item per adapter (small JSON); unavailable or corrupt storage reads as empty.
import type { TuningStore } from './tuning-store.js';

const PREFIX = 'semi-drdnet.tuning:';

function storage(): Storage | null {
  try {
    return (globalThis as { localStorage?: Storage }).localStorage ?? null;
  } catch {
    return null; // access can throw (opaque origins, privacy settings)
  }
}

/** Tuning store in localStorage under `semi-drdnet.tuning:<version>:<adapter>`. */
export function localTuningStore(version = ''): TuningStore {
  return {
    async load(adapter) {
      try {
        const o = JSON.parse(storage()?.getItem(PREFIX + version + ':' + adapter) ?? 'null') as { entries?: unknown } | null;
        const e = o?.entries;
        return e && typeof e === 'object' && !Array.isArray(e) ? (e as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    },
    async save(adapter, entries) {
      try {
        storage()?.setItem(PREFIX + version + ':' + adapter, JSON.stringify({ entries }));
      } catch {
        // quota or disabled storage: the choices then last as long as the engine
      }
    },
  };
}
