// conv2d kernels (no autograd), the family's public surface (the parts live in kernels/conv/): forward with a bias/activation epilogue, input gradient (dgrad),
// weight gradient (wgrad, split-K plus a reduction pass) and bias gradient; multi-branch forms for
// multiDilationConv; tile configurations chosen per adapter, optionally autotuned.
//
// Layouts: activations NCHW, weights OIHW, zero padding, PyTorch's output size
// floor((H + 2p - d(k-1) - 1) / s) + 1.
//
// Tiling (see shaders/lib/conv_direct.wgsl and shaders/lib/conv_wgrad.wgsl for the kernels themselves):
//  * software adapters (lavapipe, SwiftShader): register tiles, no workgroup memory. Forward and
//    dgrad use 32 lanes over output pixels with TM = 16 channels x TN = 16 pixels per lane (the
//    weights are then uniform across the workgroup); where the device has subgroups of 8
//    (lavapipe), 64 lanes x 16 channels x 8 pixels with each weight loaded by one lane and
//    broadcast (shaders/conv2d_subgroup.wgsl, `subgroups: true`; a tuner candidate wherever
//    subgroups exist). wgrad works on NHWC copies of x and dy with
//    8 lanes over input channels, one tap per workgroup and a 16x8 (output x input channel) tile
//    per lane ('nhwc'; its dy values subgroup-shared likewise, shaders/conv2d_wgrad_subgroup.wgsl);
//    1x1 and narrow layers use 8 lanes over output pixels instead ('pixels').
//  * real GPUs: workgroup-memory tiles, 16x16 invocations of 4x4 outputs (64x64 per workgroup),
//    16-deep reduction slices; wgrad is the same GEMM with pixels as the reduction.
//  * Winograd F(2x2,3x3) (conv/winograd.ts, shaders/conv2d_winograd.wgsl) for stride-1 3x3 forward
//    and dgrad, dilated and multi-branch too: a config with `algo: 'winograd'`, offered to the tuner
//    for eligible shapes and used where it measured faster (or where a caller passes it).
//  * vec4 rows (entry `conv_rows` in shaders/lib/conv_direct.wgsl) for stride-1 forward and dgrad: 4 to 16
//    channels x 4 or 8 pixels of a row per invocation in named vec4 accumulators, `algo: 'vec4'`,
//    offered to the tuner likewise (on SwiftShader 3-4x faster than the other kernels).
// `autotuneConv` times a few candidates per shape class and caches the winner in the engine's `convTuning`.
// Self-tuning (conv/selftune.ts): kernels note the shape classes they run untuned; `tunePending`,
// called where waiting is allowed (derain tiles, training steps, bench warm-ups), times them and
// saves the winners in the engine's TuningStore; `prepareTuning` loads them before first use.
//
// Binding limits: a convolution whose activations exceed maxStorageBufferBindingSize is run over
// groups of images, each bound as an aligned window of the batch; when one image alone does not
// fit, the call is refused with an error naming the tensor and the limit.
export type { PerAxis } from './util.js';
export { convOutputSize, pair, type Activation, type Conv2dParams, type ConvBranch, type Geometry } from './conv/geometry.js';
export { checkConvConfig, checkWgradConfig, convTuning, defaultConvConfig, defaultVec4Config, defaultWgradConfig, defaultWinogradConfig, recordConvConfigs, registerDefault, subgroupShare, vec4Eligible, winogradEligible, type ConvKind, type ConvTileConfig, type WgradTileConfig } from './conv/config.js';
export { composeFusedBias, foldAffine, type FoldBn } from './conv/pack.js';
export {
  conv2dBackwardData, conv2dForward, conv2dMultiBackwardData, conv2dMultiForward,
  type ConvBackwardOptions, type ConvEpilogue, type ConvForwardOptions, type MultiConvOptions,
} from './conv/forward.js';
export { conv2dBackwardBias, conv2dBackwardFilter, conv2dBackwardFilterMulti, type WgradOptions } from './conv/wgrad.js';
export { autotuneConv, convCandidates, vec4Candidates, wgradCandidates, winogradCandidates, type AutotuneOptions, type ConvShape } from './conv/autotune.js';
export { adapterId, prepareTuning, tunePending, tuneStats, type TuneStats } from './conv/selftune.js';
