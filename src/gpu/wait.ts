// Waiting on GPU promises without starving the (software) GPU of a CPU core.

/**
 * dawn.node drives its pending async work (mapAsync, onSubmittedWorkDone) by re-scheduling a poll
 * through the global `setImmediate`, which spins one core at 100% until the GPU finishes. On a
 * software adapter (lavapipe) that core is one of the GPU's own worker threads: measured on a
 * 2-core machine, a kernel that took 213 ms with this wait took 343 ms when awaited plainly. While we wait we route those
 * polls through a 1 ms timer instead, so the event loop sleeps between polls. Browsers never call
 * this path (no `setImmediate`), so it is a no-op there.
 */
export async function yieldingAwait<T>(promise: Promise<T>): Promise<T> {
  const g = globalThis as { setImmediate?: unknown };
  if (waiting++ === 0 && typeof g.setImmediate === 'function') {
    original = g.setImmediate;
    g.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => setTimeout(fn, 1, ...args)) as unknown;
  }
  try {
    return await promise;
  } finally {
    if (--waiting === 0 && original) {
      g.setImmediate = original;
      original = undefined;
    }
  }
}

let waiting = 0;
let original: unknown;
