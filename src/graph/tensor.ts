// Transitional re-export: Tensor and tidy moved to src/core/tensor.ts (the level below kernels).
export * from '../core/tensor.js';
