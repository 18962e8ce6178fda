// Node side of the library API: bundled weights found inside the package, weights and images from files.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot, readSafetensorsBytes } from '../io/fs-node.js';
import { createDerainer, fetchWeights, type Derainer, type DerainerOptions } from './derainer.js';

export { packageRoot };

/** The bundled default weights, relative to the package root. */
export const BUNDLED_WEIGHTS = 'weights/semi-drdnet-tiny.safetensors';

/** Absolute path of the bundled weights. */
export function bundledWeightsPath(): string {
  return join(packageRoot(), BUNDLED_WEIGHTS);
}

async function readWeights(w: string | URL): Promise<Uint8Array> {
  const url = w instanceof URL ? w : /^(https?|file):/.test(w) ? new URL(w) : null;
  if (url && url.protocol !== 'file:') {
    return fetchWeights(url);
  }
  return readSafetensorsBytes(url ? fileURLToPath(url) : (w as string));
}

/**
 * Loads a derainer: `weights` is a path, a file:/http(s): URL or safetensors bytes (default: the
 * bundled tiny weights); runs on `engine`, on your `device`, or on a device of its own.
 */
export function loadDerainer(opts: DerainerOptions = {}): Promise<Derainer> {
  return createDerainer(opts, readWeights, bundledWeightsPath);
}
