// Node entry point: the public API with dawn.node registered as the GPU, plus file IO and bundled weights.
import { dawnGpu, useDawn } from './gpu/node.js';

useDawn();
export * from './index.js';
export { dawnGpu, useDawn };
export { loadDerainer, bundledWeightsPath } from './api/node.js';
export { readImage, writeImage, decodeImage, encodeImage, pixelBudget, type DecodeOptions } from './io/image-node.js';
export { fileTuningStore, tuningCacheDir, type FileTuningStoreOptions } from './io/tuning-store-node.js';
export { runExperiment, type RunExperimentOptions, type RunInfo } from './train/experiment-node.js';
export { loadVariantModule } from './train/variant-module.js';
