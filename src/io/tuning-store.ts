// The tuning store interface: how tuned kernel choices persist per adapter (implementations: tuning-store-node.ts, tuning-store-browser.ts).

/**
 * Persists tuned kernel configurations per adapter. `adapter` identifies the adapter (its
 * description); the store adds what else must invalidate old entries (e.g. the package version).
 * `load` resolves to null when nothing usable is stored (missing or corrupt): never throws.
 */
export interface TuningStore {
  /** The adapter's stored entries (tuning key -> config), or null. */
  load(adapter: string): Promise<Record<string, unknown> | null>;
  /** Replaces the adapter's stored entries (atomically where the platform allows). */
  save(adapter: string, entries: Record<string, unknown>): Promise<void>;
}
