// Browser entry point: the public API on navigator.gpu, plus weights by URL and canvas image helpers.
export * from './index.js';
export { loadDerainer, bundledWeightsUrl } from './api/browser.js';
export { decodeImageBlob, encodeImageBlob, imageToImageData } from './io/image-browser.js';
