// Browser side of the library API: weights fetched from a URL (the bundled ones are an asset next to the package).
import { createDerainer, fetchWeights, type Derainer, type DerainerOptions } from './derainer.js';

/** URL of the bundled weights: bundlers that understand `new URL(..., import.meta.url)` copy it as an asset. */
export function bundledWeightsUrl(): URL {
  return new URL('../weights/semi-drdnet-tiny.safetensors', import.meta.url);
}

/**
 * Loads a derainer: `weights` is a URL or safetensors bytes (default: the bundled tiny weights);
 * runs on `engine`, on your `device`, or on a device of its own (navigator.gpu).
 */
export function loadDerainer(opts: DerainerOptions = {}): Promise<Derainer> {
  return createDerainer(opts, fetchWeights, bundledWeightsUrl);
}
