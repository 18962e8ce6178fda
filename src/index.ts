// Public API (platform-neutral): engine, tensors, autograd, ops, modules.
export { Engine, F32, f32, setGpuProvider } from './gpu/runtime.js';
export type { AdapterSummary, BufferBinding, DispatchSpec, EngineCounters, EngineLimits, EngineOptions, UniformValue } from './gpu/runtime.js';
export type { MemoryStats } from './gpu/pool.js';
export { Tensor, tidy, numel, type Shape } from './graph/tensor.js';
export { backward, defineOp, isGradEnabled, noGrad, zeroGrad } from './graph/autograd.js';
export type { BackwardContext, BackwardOptions, ForwardContext, Op, OpDefinition } from './graph/autograd.js';
export * from './graph/ops.js';
export { Module } from './graph/module.js';
export { Adam, SGD, multiStepLr, type Optimizer } from './train/optim.js';
export { grid } from './kernels/util.js';
export * from './graph/conv.js';
export * from './graph/norm.js';
export { BatchNorm2d, Conv2d, Linear, PReLU } from './graph/layers.js';
