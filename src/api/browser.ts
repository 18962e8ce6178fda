// Browser side of the library API: weights fetched from a URL (the bundled ones are an asset next to the package).
import { createDerainer, type Derainer, type DerainerOptions } from './derainer.js';

/** URL of the bundled weights: bundlers that understand `new URL(..., import.meta.url)` copy it as an asset. */
export function bundledWeightsUrl(): URL {
  return new URL('../weights/semi-drdnet-tiny.safetensors', import.meta.url);
}

async function fetchWeights(w: string | URL): Promise<Uint8Array> {
  const res = await fetch(w).catch((e: unknown) => {
    throw new Error(`cannot fetch weights '${w}': ${(e as Error).message}`);
  });
  if (!res.ok) throw new Error(`cannot fetch weights '${w}': HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Loads a derainer: `weights` is a URL or safetensors bytes (default: the bundled tiny weights);
 * runs on `engine`, on your `device`, or on a device of its own (navigator.gpu).
 */
export function loadDerainer(opts: DerainerOptions = {}): Promise<Derainer> {
  return createDerainer(opts, fetchWeights, bundledWeightsUrl);
}
