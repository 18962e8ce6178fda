// Browser entry point: the public API on navigator.gpu, plus weights by URL and canvas image helpers.
import { setTuningStore } from './gpu/tuning.js';
import { localTuningStore } from './io/tuning-store-browser.js';

// Tuned kernel choices persist in localStorage (the kernels themselves never touch storage).
setTuningStore(localTuningStore());
export * from './index.js';
export { loadDerainer, bundledWeightsUrl } from './api/browser.js';
export { decodeImageBlob, encodeImageBlob, imageToImageData } from './io/image-browser.js';
