// conv2d kernels (no autograd): forward with a bias/activation epilogue, input gradient (dgrad),
// weight gradient (wgrad, split-K plus a reduction pass) and bias gradient; multi-branch forms for
// multiDilationConv; tile configurations chosen per adapter, optionally autotuned.
//
// Layouts: activations NCHW, weights OIHW, zero padding, PyTorch's output size
// floor((H + 2p - d(k-1) - 1) / s) + 1.
//
// Tiling (see shaders/conv2d.wgsl and shaders/conv2d_wgrad.wgsl for the kernels themselves):
//  * software adapters (lavapipe, SwiftShader): register tiles, no workgroup memory. Forward and
//    dgrad use 32 lanes over output pixels with TM = 16 channels x TN = 16 pixels per lane (the
//    weights are then uniform across the workgroup). wgrad works on NHWC copies of x and dy with
//    8 lanes over input channels, one tap per workgroup and a 16x8 (output x input channel) tile
//    per lane ('nhwc'); 1x1 and narrow layers use 8 lanes over output pixels instead ('pixels').
//  * real GPUs: workgroup-memory tiles, 16x16 invocations of 4x4 outputs (64x64 per workgroup),
//    16-deep reduction slices; wgrad is the same GEMM with pixels as the reduction.
// `autotuneConv` times a few candidates per shape class and caches the winner in the engine's `convTuning`.
//
// Binding limits: a convolution whose activations exceed maxStorageBufferBindingSize is run over
// groups of images, each bound as an aligned window of the batch; when one image alone does not
// fit, the call is refused with an error naming the tensor and the limit.
import code from '../../shaders/conv2d.wgsl';
import wgradCode from '../../shaders/conv2d_wgrad.wgsl';
import type { BufferBinding, Engine } from '../gpu/runtime.js';
import { Tensor, shapeStr, type Shape } from '../core/tensor.js';
import { grid } from './util.js';

export type Pair = number | readonly [number, number];
export type Activation = 'none' | 'relu' | 'leakyRelu';

export interface Conv2dParams {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}

/** Tiles of the forward/dgrad kernel (entry `conv`). */
export interface ConvTileConfig {
  /** Stage tiles in workgroup memory (real GPUs) or keep register tiles only (software). */
  smem: boolean;
  /** Workgroup size; wgY must be 1 without smem. */
  wgX: number;
  wgY: number;
  /** Output channels per invocation (multiple of 4, <= 16). */
  tm: number;
  /** Output pixels per invocation (<= 32); tm * tn <= 256. */
  tn: number;
  /** Reduction depth staged per step (smem only). */
  bk: number;
}

/** Tiles of the weight-gradient kernel. */
export interface WgradTileConfig {
  /**
   * Software adapters: 'nhwc' (wide layers): NHWC copies of x and dy, lanes over input channels,
   * dy uniform across the workgroup; 'pixels' (narrow layers): lanes over output pixels, per-lane
   * partials. Real GPUs: 'tiled', a workgroup-memory GEMM with pixels as the reduction.
   */
  kernel: 'nhwc' | 'pixels' | 'tiled';
  /** Workgroup size; wgY must be 1 for 'pixels'. */
  wgX: number;
  wgY: number;
  /** 'nhwc', 'pixels': output channels (a multiple of 4, <= 16) x input channels (<= 16) per invocation. */
  tu: number;
  tv: number;
  /** 'tiled': outputs per invocation (<= 8 each) and pixels per staged slice. */
  tm: number;
  tn: number;
  bk: number;
  /** Aim for about this many workgroups in total when choosing the number of splits. */
  targetWorkgroups: number;
  /** Most output pixels one split reduces (bounds the serial part of the reduction). */
  maxSplitPixels: number;
}

export interface ConvForwardOptions extends Conv2dParams {
  activation?: Activation;
  /** Slope of leakyRelu for negative inputs (default 0.01). */
  negativeSlope?: number;
  config?: ConvTileConfig;
}

export interface ConvBackwardOptions extends Conv2dParams {
  config?: ConvTileConfig;
}

export interface WgradOptions extends Conv2dParams {
  config?: WgradTileConfig;
}

/** One branch of a multi-branch convolution: OIHW weight (all the same shape) and its geometry. */
export interface ConvBranch {
  weight: Tensor;
  padding: [number, number];
  dilation: [number, number];
}

const ACT = { none: 0, relu: 1, leakyRelu: 2 } as const;

export function pair(v: Pair | undefined, dflt: number, what: string): [number, number] {
  const r: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!r.every((d) => Number.isInteger(d))) throw new Error(`conv2d: ${what} must be integers, got ${String(v)}`);
  return r;
}

/** PyTorch's output size for one axis. */
export function convOutputSize(size: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

/** A convolution's sizes: input, weight, output, stride, padding, dilation. */
export interface Geometry {
  N: number; Ci: number; H: number; W: number;
  Co: number; KH: number; KW: number; Ho: number; Wo: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

function geometry(op: string, xShape: Shape, wShape: Shape, p: Conv2dParams): Geometry {
  if (xShape.length !== 4) throw new Error(`${op}: input must be NCHW (rank 4), got ${shapeStr(xShape)}`);
  if (wShape.length !== 4) throw new Error(`${op}: weight must be OIHW (rank 4), got ${shapeStr(wShape)}`);
  const [N, Ci, H, W] = xShape;
  const [Co, wc, KH, KW] = wShape;
  if (wc !== Ci) throw new Error(`${op}: weight ${shapeStr(wShape)} expects ${wc} input channels, input ${shapeStr(xShape)} has ${Ci}`);
  const [sh, sw] = pair(p.stride, 1, 'stride');
  const [ph, pw] = pair(p.padding, 0, 'padding');
  const [dh, dw] = pair(p.dilation, 1, 'dilation');
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0) {
    throw new Error(`${op}: stride and dilation must be >= 1 and padding >= 0 (stride ${sh}x${sw}, padding ${ph}x${pw}, dilation ${dh}x${dw})`);
  }
  const Ho = convOutputSize(H, KH, sh, ph, dh);
  const Wo = convOutputSize(W, KW, sw, pw, dw);
  if (Ho <= 0 || Wo <= 0 || KH === 0 || KW === 0) {
    throw new Error(`${op}: empty output for input ${shapeStr(xShape)}, weight ${shapeStr(wShape)} (stride ${sh}x${sw}, padding ${ph}x${pw}, dilation ${dh}x${dw})`);
  }
  return { N, Ci, H, W, Co, KH, KW, Ho, Wo, sh, sw, ph, pw, dh, dw };
}

// ---- configurations ---------------------------------------------------------------------------

export type ConvKind = 'fwd' | 'dgrad' | 'wgrad';

const TUNING = Symbol('conv2d tuning');

/** This engine's tuned choices, keyed by `${adapter}|${kind}|${shape class}`; persist with JSON.stringify([...map]). */
export function convTuning(e: Engine): Map<string, ConvTileConfig | WgradTileConfig> {
  return e.local(TUNING, () => new Map<string, ConvTileConfig | WgradTileConfig>());
}

function adapterKey(e: Engine): string {
  const a = e.adapter;
  return `${a.vendor}/${a.architecture}/${a.device}`;
}

const bucket = (v: number) => 2 ** Math.round(Math.log2(Math.max(1, v)));

/** The shape class: channels and kernel exactly, pixel count to the nearest power of two. */
function shapeClass(kind: ConvKind, g: Geometry): string {
  const strided = g.sh > 1 || g.sw > 1 ? 's' : '';
  return `${kind}:${g.Ci}->${g.Co}:k${g.KH}x${g.KW}${strided}:px${bucket(g.N * g.Ho * g.Wo)}`;
}

function tuningKey(e: Engine, kind: ConvKind, g: Geometry): string {
  return `${adapterKey(e)}|${shapeClass(kind, g)}`;
}

/**
 * The forward/dgrad defaults for a pass with `M` output channels, `pixels` output pixels per
 * image and a reduction of `K` (input channels x taps). Software: 32 lanes over pixels, TM channels by TN pixels each (16x16 for wide layers,
 * TM = 4 or 8 for narrow ones; small images get fewer pixels per lane, so less of the tile is
 * wasted and the kernel compiles faster). GPU: 64x64 workgroup tiles in workgroup memory.
 */
export function defaultConvConfig(e: Engine, M: number, pixels = Infinity, K = Infinity): ConvTileConfig {
  if (e.adapter.software) {
    const tm = M <= 4 ? 4 : M <= 8 ? 8 : 16;
    const perLane = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(pixels / 32))));
    // A short reduction (K = input channels x taps, e.g. 3 -> 64) runs better on 8 pixels per lane.
    return { smem: false, wgX: 32, wgY: 1, tm, tn: Math.min(K < 64 ? 8 : 16, perLane), bk: 16 };
  }
  // 16x16 invocations of 4x4 outputs; narrow passes (M < 64) shrink the channel side.
  const wgY = Math.min(16, Math.ceil(M / 4));
  const wgX = wgY === 16 ? 16 : 64;
  const fits = (bk: number) => bk * (wgY * 4 + wgX * 4) * 4 <= e.limits.maxComputeWorkgroupStorageSize;
  return { smem: true, wgX, wgY, tm: 4, tn: 4, bk: fits(16) ? 16 : 8 };
}

export function defaultWgradConfig(e: Engine, g: Geometry): WgradTileConfig {
  if (!e.adapter.software) {
    return { kernel: 'tiled', wgX: 16, wgY: 16, tu: 16, tv: 8, tm: 4, tn: 4, bk: 16, targetWorkgroups: 1024, maxSplitPixels: 4096 };
  }
  const tu = g.Co <= 4 ? 4 : g.Co <= 8 ? 8 : 16;
  const base = { wgY: 1, tu, tm: 4, tn: 4, bk: 16, targetWorkgroups: 64, maxSplitPixels: 8192 };
  // Wide layers: one SIMD row of 8 lanes over input channels, 8 channels each (64 per workgroup).
  // A 1x1 kernel does too little per pixel to pay for the NHWC copies.
  if (g.Ci >= 8 && g.Co >= 8 && g.KH * g.KW > 1) return { ...base, kernel: 'nhwc', wgX: 8, tv: Math.min(8, Math.ceil(g.Ci / 8)) };
  // Otherwise (1x1, 3 -> 64, 64 -> 3): lanes over pixels, at most 128 accumulators per lane
  // (16x16 is no faster here and takes lavapipe several times longer to compile).
  return { ...base, kernel: 'pixels', wgX: 8, tv: Math.min(g.Ci, 128 / tu, 16) };
}

function convConfig(e: Engine, kind: 'fwd' | 'dgrad', g: Geometry, given?: ConvTileConfig): ConvTileConfig {
  const c = given ?? (convTuning(e).get(tuningKey(e, kind, g)) as ConvTileConfig | undefined) ?? (kind === 'fwd' ? defaultConvConfig(e, g.Co, g.Ho * g.Wo, g.Ci * g.KH * g.KW) : defaultConvConfig(e, g.Ci, g.H * g.W, g.Co * g.KH * g.KW));
  if (c.tm % 4 !== 0 || c.tm < 4 || c.tm > 16 || c.tn < 1 || c.tn > 32 || c.tm * c.tn > 256 || (!c.smem && c.wgY !== 1)) {
    throw new Error(`conv2d: invalid tile config ${JSON.stringify(c)} (tm a multiple of 4 up to 16, tn <= 32, tm*tn <= 256, wgY = 1 without smem)`);
  }
  checkWorkgroup(e, 'conv2d', c, c.smem ? c.bk * (c.wgY * c.tm + c.wgX * c.tn) : 0);
  return c;
}

function wgradConfig(e: Engine, g: Geometry, given?: WgradTileConfig): WgradTileConfig {
  const c = given ?? (convTuning(e).get(tuningKey(e, 'wgrad', g)) as WgradTileConfig | undefined) ?? defaultWgradConfig(e, g);
  const bad = c.kernel === 'tiled'
    ? c.tm < 1 || c.tm > 8 || c.tn < 1 || c.tn > 8
    : c.tu % 4 !== 0 || c.tu < 4 || c.tu > 16 || c.tv < 1 || c.tv > 16 || c.wgY !== 1;
  if (bad) throw new Error(`conv2d.wgrad: invalid tile config ${JSON.stringify(c)}`);
  checkWorkgroup(e, 'conv2d.wgrad', c, c.kernel === 'tiled' ? c.bk * (c.wgY * c.tm + c.wgX * c.tn) : 0);
  return c;
}

function checkWorkgroup(e: Engine, op: string, c: { wgX: number; wgY: number }, sharedFloats: number): void {
  const l = e.limits;
  if (c.wgX * c.wgY > l.maxComputeInvocationsPerWorkgroup || sharedFloats * 4 > l.maxComputeWorkgroupStorageSize) {
    throw new Error(`${op}: tile config needs ${c.wgX}x${c.wgY} invocations and ${sharedFloats * 4} bytes of workgroup memory; the device allows ${l.maxComputeInvocationsPerWorkgroup} and ${l.maxComputeWorkgroupStorageSize}`);
  }
}

// ---- binding windows and batch groups --------------------------------------------------------

/** Binds elements [start, start+count) of `t` at an aligned offset; `off` is where `start` lands. */
function windowOf(t: Tensor, start: number, count: number): { binding: BufferBinding; off: number } {
  const align = t.engine.device.limits.minStorageBufferOffsetAlignment;
  const byteStart = t.byteOffset + start * 4;
  const aligned = Math.floor(byteStart / align) * align;
  return { binding: { buffer: t.buffer, offset: aligned, size: byteStart - aligned + Math.max(1, count) * 4 }, off: (byteStart - aligned) / 4 };
}

interface PerImage {
  name: string;
  /** The whole tensor's shape (for messages). */
  shape: Shape;
  /** Elements per image, and the byte offset of image 0 in its buffer. */
  elems: number;
  byteOffset: number;
}

const perImage = (name: string, t: Tensor, elems: number): PerImage => ({ name, shape: t.shape, elems, byteOffset: t.byteOffset });

/**
 * Splits the batch into groups of images whose slices of every listed tensor fit one binding
 * (an aligned window, see `windowOf`). One group when everything fits as it is.
 */
function batchGroups(e: Engine, op: string, N: number, tensors: PerImage[]): Array<[number, number]> {
  const limit = e.limits.maxStorageBufferBindingSize;
  const maxZ = e.limits.maxComputeWorkgroupsPerDimension;
  if (N <= maxZ && tensors.every((t) => N * t.elems * 4 <= limit)) return [[0, N]];
  const align = e.device.limits.minStorageBufferOffsetAlignment;
  const bytes = (t: PerImage, n0: number, n1: number) => ((t.byteOffset + n0 * t.elems * 4) % align) + (n1 - n0) * t.elems * 4;
  const groups: Array<[number, number]> = [];
  for (let n0 = 0; n0 < N; ) {
    const big = tensors.find((t) => bytes(t, n0, n0 + 1) > limit);
    if (big) {
      throw new Error(`${op}: one image of ${big.name} ${shapeStr(big.shape)} takes ${big.elems * 4} bytes, more than maxStorageBufferBindingSize (${limit}) allows; use smaller images`);
    }
    let n1 = n0 + 1;
    while (n1 < N && n1 - n0 < maxZ && tensors.every((t) => bytes(t, n0, n1 + 1) <= limit)) n1++;
    groups.push([n0, n1]);
    n0 = n1;
  }
  return groups;
}

function checkFits(e: Engine, op: string, name: string, shape: Shape, elems: number): void {
  const limit = e.limits.maxStorageBufferBindingSize;
  if (elems * 4 > limit) throw new Error(`${op}: ${name} ${shapeStr(shape)} takes ${elems * 4} bytes, more than maxStorageBufferBindingSize (${limit})`);
}

// ---- forward and dgrad -----------------------------------------------------------------------

/**
 * Packs OIHW branch weights into Wp[branch][c*KK + tap][m] with m padded to `MP`. With `fuse`
 * ([Cout, sum C_k] as any shape), branch k is composed with its column block first.
 */
function packWeights(weights: Tensor[], transposed: boolean, MP: number, op: string, fuse: Tensor | null): Tensor {
  const e = weights[0].engine;
  const [C0, Ci, KH, KW] = weights[0].shape;
  const KK = KH * KW;
  const Co = fuse ? fuse.shape[0] : C0;
  const fStride = fuse ? fuse.size / Co : 0;
  const per = (transposed ? Co : Ci) * KK * MP;
  checkFits(e, op, 'packed weight', [weights.length, per], weights.length * per);
  const out = Tensor.empty(e, [weights.length * per]);
  let fOff = 0;
  weights.forEach((w, b) => {
    checkFits(e, op, 'weight', w.shape, w.size);
    e.dispatch({
      label: `${op}.pack`,
      code,
      entry: 'pack',
      uniforms: { Co, Ci, KK, MP, dst: b * per, transposed: transposed ? 1 : 0, total: per, compose: fuse ? 1 : 0, C: w.shape[0], fStride, fOff },
      bindings: [w.binding(), (fuse ?? w).binding(), out.binding()],
      workgroups: grid(e, Math.ceil(per / 64)),
    });
    fOff += w.shape[0];
  });
  return out;
}

/**
 * b' = fuseBias + sum_k Wf_k b_k ([Cout]) for multiDilationConv; null when there are no biases.
 * `fuse` is [Cout, sum C_k(, 1, 1)], `biases[k]` is [C_k] or null.
 */
export function composeFusedBias(fuse: Tensor, branchChannels: number[], biases: Array<Tensor | null>, fuseBias: Tensor | null): Tensor | null {
  if (!fuseBias && biases.every((b) => !b)) return null;
  const e = fuse.engine;
  const Co = fuse.shape[0];
  const fStride = fuse.size / Co;
  const out = Tensor.empty(e, [Co]);
  let first = true;
  const add = (b: Tensor, C: number, fOff: number, identity: boolean) => {
    e.dispatch({
      label: 'multiDilationConv.bias',
      code,
      entry: 'fuse_bias',
      uniforms: { Co, C, fStride, fOff, accumulate: first ? 0 : 1, identity: identity ? 1 : 0 },
      bindings: [fuse.binding(), b.binding(), out.binding()],
      workgroups: [Math.ceil(Co / 64)],
    });
    first = false;
  };
  if (fuseBias) add(fuseBias, Co, 0, true);
  let off = 0;
  biases.forEach((b, k) => {
    if (b) add(b, branchChannels[k], off, false);
    off += branchChannels[k];
  });
  return out;
}

interface ConvRun {
  op: string;
  input: Tensor;
  /** Per-branch OIHW weights (same shape). */
  weights: Tensor[];
  /** A 1x1 fuse weight each branch is composed with (multiDilationConv), or null. */
  fuse: Tensor | null;
  /** Per-branch padding/dilation. */
  branches: Array<{ ph: number; pw: number; dh: number; dw: number }>;
  transposed: boolean;
  /** Kernel geometry: input operand [N, Cin, Hi, Wi] -> output [N, M, Hq, Wq]. */
  Cin: number; Hi: number; Wi: number; M: number; Hq: number; Wq: number; KH: number; KW: number;
  sh: number; sw: number;
  bias: Tensor | null;
  act: Activation;
  alpha: number;
  cfg: ConvTileConfig;
}

function runConv(r: ConvRun): Tensor {
  const e = r.input.engine;
  const N = r.input.shape[0];
  const cfg = r.cfg;
  const tileM = cfg.smem ? cfg.wgY * cfg.tm : cfg.tm;
  const MP = Math.ceil(r.M / tileM) * tileM;
  const out = Tensor.empty(e, [N, r.M, r.Hq, r.Wq]);
  if (out.size === 0) return out;
  if (r.branches.length > 4) throw new Error(`${r.op}: at most 4 branches, got ${r.branches.length}`);
  if (r.bias && r.bias.size !== r.M) throw new Error(`${r.op}: bias ${shapeStr(r.bias.shape)} does not match ${r.M} output channels`);
  const packed = packWeights(r.weights, r.transposed, MP, r.op, r.fuse);
  const inImg = r.Cin * r.Hi * r.Wi;
  const outImg = r.M * r.Hq * r.Wq;
  const groups = batchGroups(e, r.op, N, [perImage(r.transposed ? 'dy' : 'x', r.input, inImg), perImage(r.transposed ? 'dx' : 'y', out, outImg)]);
  const vec = (f: (b: { ph: number; pw: number; dh: number; dw: number }) => number) => [0, 1, 2, 3].map((i) => (r.branches[i] ? f(r.branches[i]) : 0));
  const sgn = r.transposed ? -1 : 1;
  const constants: Record<string, number> = {
    WG_X: cfg.wgX, WG_Y: cfg.wgY, TM: cfg.tm, TN: cfg.tn, BK: cfg.bk, SMEM: cfg.smem ? 1 : 0,
    SA: cfg.smem ? cfg.bk * cfg.wgY * cfg.tm : 1, SB: cfg.smem ? cfg.bk * cfg.wgX * cfg.tn : 1,
    DIV: r.transposed && (r.sh > 1 || r.sw > 1) ? 1 : 0,
    // The 1x1 fast path: output pixel q reads input pixel q (forward and dgrad alike).
    POINTWISE: r.KH === 1 && r.KW === 1 && r.sh === 1 && r.sw === 1 && r.branches.every((b) => b.ph === 0 && b.pw === 0) && r.Hi === r.Hq && r.Wi === r.Wq ? 1 : 0,
  };
  const bn = cfg.wgX * cfg.tn;
  for (const [n0, n1] of groups) {
    const single = groups.length === 1;
    const xin = single ? { binding: r.input.binding(), off: 0 } : windowOf(r.input, n0 * inImg, (n1 - n0) * inImg);
    const yout = single ? { binding: out.binding(), off: 0 } : windowOf(out, n0 * outImg, (n1 - n0) * outImg);
    e.dispatch({
      label: r.op,
      code,
      entry: 'conv',
      constants,
      uniforms: {
        Ci: r.Cin, Hi: r.Hi, Wi: r.Wi, Co: r.M, Hq: r.Hq, Wq: r.Wq, KH: r.KH, KW: r.KW,
        CoP: MP, NB: r.branches.length, xOff: xin.off, yOff: yout.off,
        sh: r.transposed ? 1 : r.sh, sw: r.transposed ? 1 : r.sw, divh: r.transposed ? r.sh : 1, divw: r.transposed ? r.sw : 1,
        ph: vec((b) => sgn * b.ph), pw: vec((b) => sgn * b.pw), dh: vec((b) => sgn * b.dh), dw: vec((b) => sgn * b.dw),
        alpha: r.alpha, act: ACT[r.act], hasBias: r.bias ? 1 : 0,
      },
      bindings: [xin.binding, packed.binding(), (r.bias ?? packed).binding(), yout.binding],
      workgroups: [Math.ceil(r.M / tileM), Math.ceil((r.Hq * r.Wq) / bn), n1 - n0],
    });
  }
  packed.dispose();
  return out;
}

/** y = act(conv2d(x, w) + bias): x [N,Ci,H,W], w [Co,Ci,KH,KW], bias [Co] or null. */
export function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvForwardOptions = {}): Tensor {
  const g = geometry('conv2d', x.shape, w.shape, opts);
  return runConv({
    op: 'conv2d.fwd', input: x, weights: [w], fuse: null, branches: [{ ph: g.ph, pw: g.pw, dh: g.dh, dw: g.dw }], transposed: false,
    Cin: g.Ci, Hi: g.H, Wi: g.W, M: g.Co, Hq: g.Ho, Wq: g.Wo, KH: g.KH, KW: g.KW, sh: g.sh, sw: g.sw,
    bias, act: opts.activation ?? 'none', alpha: opts.negativeSlope ?? 0.01, cfg: convConfig(x.engine, 'fwd', g, opts.config),
  });
}

/** dx of conv2d: dy [N,Co,Ho,Wo], w [Co,Ci,KH,KW] -> [N,Ci,H,W] (xShape). */
export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: Shape, opts: ConvBackwardOptions = {}): Tensor {
  const g = geometry('conv2d.dgrad', xShape, w.shape, opts);
  checkDy('conv2d.dgrad', dy, g);
  return runConv({
    op: 'conv2d.dgrad', input: dy, weights: [w], fuse: null, branches: [{ ph: g.ph, pw: g.pw, dh: g.dh, dw: g.dw }], transposed: true,
    Cin: g.Co, Hi: g.Ho, Wi: g.Wo, M: g.Ci, Hq: g.H, Wq: g.W, KH: g.KH, KW: g.KW, sh: g.sh, sw: g.sw,
    bias: null, act: 'none', alpha: 0, cfg: convConfig(dy.engine, 'dgrad', g, opts.config),
  });
}

function checkDy(op: string, dy: Tensor, g: Geometry): void {
  const want = [g.N, g.Co, g.Ho, g.Wo];
  if (dy.shape.join() !== want.join()) throw new Error(`${op}: dy ${shapeStr(dy.shape)} does not match the output shape ${shapeStr(want)}`);
}

function branchGeometry(op: string, x: Shape, branches: ConvBranch[], fuse: Tensor | null): Geometry[] {
  if (branches.length === 0 || branches.length > 4) throw new Error(`${op}: 1 to 4 branches, got ${branches.length}`);
  const gs = branches.map((b) => geometry(op, x, b.weight.shape, { padding: b.padding, dilation: b.dilation }));
  for (const g of gs) {
    if (g.Ho !== gs[0].Ho || g.Wo !== gs[0].Wo || g.KH !== gs[0].KH || g.KW !== gs[0].KW || (!fuse && g.Co !== gs[0].Co)) {
      throw new Error(`${op}: branches must share the kernel size${fuse ? '' : ', output channels'} and output size (got ${gs.map((q) => `[${q.Co},${q.KH}x${q.KW}] -> ${q.Ho}x${q.Wo}`).join(', ')})`);
    }
  }
  if (fuse) {
    const total = gs.reduce((s, g) => s + g.Co, 0);
    if (fuse.size !== fuse.shape[0] * total) throw new Error(`${op}: fuse weight ${shapeStr(fuse.shape)} must be [Cout, ${total}, 1, 1]`);
    return gs.map((g) => ({ ...g, Co: fuse.shape[0] }));
  }
  return gs;
}

export interface MultiConvOptions {
  /**
   * A 1x1 weight [Cout, sum C_k, 1, 1] applied to the channel concat of the branches; it is
   * folded into the branch weights (W'_k = Wf_k . W_k) when they are packed.
   */
  fuse?: Tensor | null;
  activation?: Activation;
  negativeSlope?: number;
  config?: ConvTileConfig;
}

/** sum_b conv2d(x, W_b; pad_b, dil_b) (+ bias, activation) in one kernel (stride 1). */
export function conv2dMultiForward(x: Tensor, branches: ConvBranch[], bias: Tensor | null, opts: MultiConvOptions = {}): Tensor {
  const fuse = opts.fuse ?? null;
  const gs = branchGeometry('multiDilationConv', x.shape, branches, fuse);
  const g = gs[0];
  return runConv({
    op: 'multiDilationConv.fwd', input: x, weights: branches.map((b) => b.weight), fuse, branches: gs.map((q) => ({ ph: q.ph, pw: q.pw, dh: q.dh, dw: q.dw })),
    transposed: false, Cin: g.Ci, Hi: g.H, Wi: g.W, M: g.Co, Hq: g.Ho, Wq: g.Wo, KH: g.KH, KW: g.KW, sh: 1, sw: 1,
    bias, act: opts.activation ?? 'none', alpha: opts.negativeSlope ?? 0.01, cfg: convConfig(x.engine, 'fwd', g, opts.config),
  });
}

/** dx of conv2dMultiForward: sum_b dgrad(dy, W'_b) in one kernel. */
export function conv2dMultiBackwardData(dy: Tensor, branches: ConvBranch[], xShape: Shape, opts: { fuse?: Tensor | null; config?: ConvTileConfig } = {}): Tensor {
  const fuse = opts.fuse ?? null;
  const gs = branchGeometry('multiDilationConv', xShape, branches, fuse);
  const g = gs[0];
  checkDy('multiDilationConv.dgrad', dy, g);
  return runConv({
    op: 'multiDilationConv.dgrad', input: dy, weights: branches.map((b) => b.weight), fuse, branches: gs.map((q) => ({ ph: q.ph, pw: q.pw, dh: q.dh, dw: q.dw })),
    transposed: true, Cin: g.Co, Hi: g.Ho, Wi: g.Wo, M: g.Ci, Hq: g.H, Wq: g.W, KH: g.KH, KW: g.KW, sh: 1, sw: 1,
    bias: null, act: 'none', alpha: 0, cfg: convConfig(dy.engine, 'dgrad', g, opts.config),
  });
}

// ---- wgrad and bias grad ---------------------------------------------------------------------

/** Splits per batch group so that the total is about `want` and each covers at most `maxPix` pixels. */
function planSplits(groups: Array<[number, number]>, Ho: number, Wo: number, want: number, maxPix: number, maxTotal: number, maxZ: number) {
  const N = groups.reduce((a, [n0, n1]) => a + n1 - n0, 0);
  const plans = groups.map(([n0, n1]) => {
    const rows = (n1 - n0) * Ho;
    const byTarget = Math.ceil((want * (n1 - n0)) / N);
    const byLength = Math.ceil((rows * Wo) / maxPix);
    let splits = Math.min(rows, maxZ, Math.max(1, byTarget, byLength));
    const rowsPerSplit = Math.ceil(rows / splits);
    splits = Math.ceil(rows / rowsPerSplit);
    return { n0, n1, rows, rowsPerSplit, splits, first: 0 };
  });
  let total = 0;
  for (const p of plans) {
    p.first = total;
    total += p.splits;
  }
  if (total > maxTotal) {
    // Partials would not fit one binding: fewer, longer splits (still one per group at least).
    const scale = maxTotal / total;
    total = 0;
    for (const p of plans) {
      const s = Math.max(1, Math.floor(p.splits * scale));
      p.rowsPerSplit = Math.ceil(p.rows / s);
      p.splits = Math.ceil(p.rows / p.rowsPerSplit);
      p.first = total;
      total += p.splits;
    }
  }
  return { plans, total };
}

/** Sums partials [rows, len] over the rows (the second pass of split-K), shaped as `shape`. */
function sumSplits(part: Tensor, rows: number, shape: Shape): Tensor {
  if (rows === 1) {
    const v = part.view(shape);
    part.dispose();
    return v;
  }
  const e = part.engine;
  const len = part.size / rows;
  const out = Tensor.empty(e, shape);
  e.dispatch({
    label: 'conv2d.sum_splits',
    code: wgradCode,
    entry: 'sum_parts',
    uniforms: { len, rows },
    bindings: [part.binding(), out.binding()],
    workgroups: grid(e, Math.ceil(len / 64)),
  });
  part.dispose();
  return out;
}

/** dW of conv2d: x [N,Ci,H,W], dy [N,Co,Ho,Wo] -> wShape [Co,Ci,KH,KW]. */
export function conv2dBackwardFilter(x: Tensor, dy: Tensor, wShape: Shape, opts: WgradOptions = {}): Tensor {
  return conv2dBackwardFilterMulti(x, dy, wShape, [opts], opts.config)[0];
}

/**
 * dW for several convolutions of the same x whose outputs share dy's shape (the branches of
 * multiDilationConv): one weight gradient per entry of `branches` (its stride/padding/dilation),
 * sharing the batch split and the NHWC copies of x and dy.
 */
export function conv2dBackwardFilterMulti(x: Tensor, dy: Tensor, wShape: Shape, branches: Conv2dParams[], config?: WgradTileConfig): Tensor[] {
  const op = 'conv2d.wgrad';
  const e = x.engine;
  const gs = branches.map((b) => geometry(op, x.shape, wShape, b));
  for (const g of gs) checkDy(op, dy, g);
  const g = gs[0];
  const KK = g.KH * g.KW;
  const len = g.Co * g.Ci * KK;
  let cfg = wgradConfig(e, g, config);
  if (cfg.kernel === 'pixels' && len * 4 * cfg.wgX > e.limits.maxStorageBufferBindingSize) {
    // One partial per lane would not fit a binding: the tiled kernel keeps one per split.
    cfg = { ...cfg, kernel: 'tiled', wgX: 8, wgY: 8, tm: 4, tn: 4, bk: 8 };
  }
  const tiled = cfg.kernel === 'tiled';
  const nhwc = cfg.kernel === 'nhwc';
  const xImg = g.Ci * g.H * g.W;
  const dyImg = g.Co * g.Ho * g.Wo;
  const CoP = Math.ceil(g.Co / cfg.tu) * cfg.tu;
  const tensors = [perImage('x', x, xImg), perImage('dy', dy, dyImg)];
  if (nhwc) tensors.push({ name: 'the NHWC copy of dy', shape: [g.N, g.Ho, g.Wo, CoP], elems: g.Ho * g.Wo * CoP, byteOffset: 0 });
  const groups = batchGroups(e, op, g.N, tensors);
  const ciTiles = Math.ceil(g.Ci / (nhwc ? cfg.wgX * cfg.tv : cfg.tv));
  const gx = tiled ? Math.ceil((g.Ci * KK) / (cfg.wgX * cfg.tn)) : ciTiles * KK;
  const gy = tiled ? Math.ceil(g.Co / (cfg.wgY * cfg.tm)) : Math.ceil(g.Co / cfg.tu);
  checkFits(e, op, 'dW', wShape, len);
  // The pixel-lane kernel leaves one partial per lane as well as per split.
  const perSplit = cfg.kernel === 'pixels' ? cfg.wgX : 1;
  const maxTotal = Math.max(1, Math.floor(e.limits.maxStorageBufferBindingSize / (len * 4 * perSplit)));
  const { plans, total } = planSplits(groups, g.Ho, g.Wo, Math.ceil(cfg.targetWorkgroups / (gx * gy)), cfg.maxSplitPixels, maxTotal, e.limits.maxComputeWorkgroupsPerDimension);
  const parts = gs.map(() => Tensor.empty(e, [total * perSplit, len]));
  const constants: Record<string, number> = tiled
    ? { WG_X: cfg.wgX, WG_Y: cfg.wgY, TM: cfg.tm, TN: cfg.tn, BK: cfg.bk, SA: cfg.bk * cfg.wgY * cfg.tm, SB: cfg.bk * cfg.wgX * cfg.tn }
    : { WG_X: cfg.wgX, TU: cfg.tu, TV: cfg.tv };
  for (const pl of plans) {
    const single = plans.length === 1;
    const imgs = pl.n1 - pl.n0;
    let xw = single ? { binding: x.binding(), off: 0 } : windowOf(x, pl.n0 * xImg, imgs * xImg);
    let dw = single ? { binding: dy.binding(), off: 0 } : windowOf(dy, pl.n0 * dyImg, imgs * dyImg);
    const temps: Tensor[] = [];
    if (nhwc) {
      // NHWC copies of this group: x as it is, dy padded to CoP channels (whole vec4 tiles).
      const xt = toNhwc(x, xw, g.Ci, g.H * g.W, g.Ci, imgs, op);
      const dyt = toNhwc(dy, dw, g.Co, g.Ho * g.Wo, CoP, imgs, op);
      temps.push(xt, dyt);
      xw = { binding: xt.binding(), off: 0 };
      dw = { binding: dyt.binding(), off: 0 };
    }
    gs.forEach((b, k) => {
      e.dispatch({
        label: op,
        code: wgradCode,
        entry: tiled ? 'wgrad_tiled' : nhwc ? 'wgrad_nhwc' : 'wgrad',
        constants,
        uniforms: {
          Ci: b.Ci, H: b.H, W: b.W, Co: b.Co, Ho: b.Ho, Wo: b.Wo, KH: b.KH, KW: b.KW,
          sh: b.sh, sw: b.sw, ph: b.ph, pw: b.pw, dh: b.dh, dw: b.dw, rows: pl.rows, rowsPerSplit: pl.rowsPerSplit,
          xOff: xw.off, dyOff: dw.off, partOff: pl.first * perSplit * len, ciTiles, CoP,
        },
        bindings: [xw.binding, dw.binding, parts[k].binding()],
        workgroups: [gx, gy, pl.splits],
      });
    });
    for (const t of temps) t.dispose();
  }
  return parts.map((part) => sumSplits(part, total * perSplit, wShape));
}

/** NHWC copy [imgs, HW, CP] of a window of an NCHW tensor (channels past C are zero). */
function toNhwc(src: Tensor, w: { binding: BufferBinding; off: number }, C: number, HW: number, CP: number, imgs: number, op: string): Tensor {
  const e = src.engine;
  checkFits(e, op, 'NHWC copy', [imgs, HW, CP], imgs * HW * CP);
  const out = Tensor.empty(e, [imgs, HW, CP]);
  const [gx, gy] = grid(e, Math.ceil(HW / 64));
  e.dispatch({
    label: `${op}.nhwc`,
    code: wgradCode,
    entry: 'to_nhwc',
    uniforms: { C, HW, CP, inOff: w.off },
    bindings: [w.binding, out.binding()],
    workgroups: [gx, gy, imgs],
  });
  return out;
}

/** Bias gradient: dy [N,C,H,W] summed over N, H, W -> [C] (split over rows, then reduced). */
export function conv2dBackwardBias(dy: Tensor): Tensor {
  const op = 'conv2d.bgrad';
  const e = dy.engine;
  if (dy.shape.length !== 4) throw new Error(`${op}: dy must be NCHW, got ${shapeStr(dy.shape)}`);
  const [N, C, Ho, Wo] = dy.shape;
  const img = C * Ho * Wo;
  const groups = batchGroups(e, op, N, [perImage('dy', dy, img)]);
  const maxTotal = Math.max(1, Math.floor(e.limits.maxStorageBufferBindingSize / (C * 4)));
  const { plans, total } = planSplits(groups, Ho, Wo, Math.ceil(256 / Math.max(1, C)), 1024, maxTotal, Infinity);
  const part = Tensor.empty(e, [total, C]);
  for (const pl of plans) {
    const single = plans.length === 1;
    const dw = single ? { binding: dy.binding(), off: 0 } : windowOf(dy, pl.n0 * img, (pl.n1 - pl.n0) * img);
    e.dispatch({
      label: op,
      code: wgradCode,
      entry: 'bias_grad',
      uniforms: { Co: C, Ho, Wo, rows: pl.rows, rowsPerSplit: pl.rowsPerSplit, dyOff: dw.off, partOff: pl.first * C },
      bindings: [dw.binding, part.binding()],
      workgroups: [Math.ceil((pl.splits * C) / 64)],
    });
  }
  return sumSplits(part, total, [C]);
}

// ---- autotuning ------------------------------------------------------------------------------

export interface ConvShape {
  /** Input shape [N, Ci, H, W]. */
  x: Shape;
  /** Weight shape [Co, Ci, KH, KW]. */
  w: Shape;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /** Passes to tune (default all three). */
  kinds?: ConvKind[];
}

function convCandidates(e: Engine, M: number): ConvTileConfig[] {
  if (e.adapter.software) {
    const tms = M <= 4 ? [4] : M <= 8 ? [4, 8] : [8, 16];
    const out: ConvTileConfig[] = [];
    // tn = 32 is left out: no faster here, and lavapipe takes tens of seconds to compile it.
    for (const tm of tms) for (const tn of [8, 16]) for (const wgX of [32, 64]) out.push({ smem: false, wgX, wgY: 1, tm, tn, bk: 16 });
    return out;
  }
  const out: ConvTileConfig[] = [defaultConvConfig(e, M)];
  for (const [wgX, wgY] of [[16, 16], [32, 8], [64, 4]]) {
    for (const [tm, tn] of [[4, 4], [4, 8], [8, 4]]) {
      for (const bk of [8, 16]) {
        if (bk * (wgY * tm + wgX * tn) * 4 <= e.limits.maxComputeWorkgroupStorageSize) out.push({ smem: true, wgX, wgY, tm, tn, bk });
      }
    }
  }
  return out;
}

function wgradCandidates(e: Engine, g: Geometry): WgradTileConfig[] {
  const base = defaultWgradConfig(e, g);
  const out: WgradTileConfig[] = [base];
  if (!e.adapter.software) {
    for (const [wgX, wgY] of [[16, 16], [32, 8], [8, 32]]) {
      for (const [tm, tn] of [[4, 4], [8, 4], [4, 8]]) {
        if (base.bk * (wgY * tm + wgX * tn) * 4 > e.limits.maxComputeWorkgroupStorageSize) continue;
        for (const targetWorkgroups of [256, 1024]) out.push({ ...base, wgX, wgY, tm, tn, targetWorkgroups });
      }
    }
    return out;
  }
  for (const tu of [4, 8, 16]) {
    if (tu > Math.max(4, g.Co)) continue;
    for (const tv of [4, 8, 16]) {
      if (tv > Math.max(4, g.Ci)) continue;
      out.push({ ...base, kernel: 'pixels', wgX: 8, tu, tv });
      if (g.Ci >= 8 && tu * tv <= 128) for (const wgX of [8, 16]) out.push({ ...base, kernel: 'nhwc', wgX, tu, tv: Math.min(tv, Math.ceil(g.Ci / wgX)) });
    }
  }
  return out;
}

async function timeIt(e: Engine, run: () => Tensor, reps: number): Promise<number> {
  run().dispose(); // compile and warm up
  await e.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run().dispose();
    await e.sync();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Options of `autotuneConv`. */
export interface AutotuneOptions {
  /** Timed runs per candidate (median taken; default 3). */
  reps?: number;
  /** Only the first this many candidates of each list. */
  maxCandidates?: number;
  /** Candidate lists to use instead of the built-in ones. */
  candidates?: { conv?: ConvTileConfig[]; wgrad?: WgradTileConfig[] };
}

/**
 * Times candidate tile configurations for each shape and pass, and records the fastest in
 * `convTuning` (used by every later call of that shape class on this adapter). Optional: the
 * defaults are used for untuned shapes. Returns the choices made, keyed like `convTuning`.
 */
export async function autotuneConv(engine: Engine, shapes: ConvShape[], opts: AutotuneOptions = {}): Promise<Map<string, ConvTileConfig | WgradTileConfig>> {
  const reps = opts.reps ?? 3;
  const chosen = new Map<string, ConvTileConfig | WgradTileConfig>();
  const rand = (shape: Shape) => Tensor.fromData(engine, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 12.9898) * 0.5), shape);
  for (const s of shapes) {
    const g = geometry('autotuneConv', s.x, s.w, s);
    const p = { stride: s.stride, padding: s.padding, dilation: s.dilation };
    const x = rand(s.x);
    const w = rand(s.w);
    const dy = rand([g.N, g.Co, g.Ho, g.Wo]);
    try {
      for (const kind of s.kinds ?? (['fwd', 'dgrad', 'wgrad'] as ConvKind[])) {
        const key = tuningKey(engine, kind, g);
        let best: { t: number; c: ConvTileConfig | WgradTileConfig } | null = null;
        const cands: Array<ConvTileConfig | WgradTileConfig> =
          kind === 'wgrad' ? (opts.candidates?.wgrad ?? wgradCandidates(engine, g)) : (opts.candidates?.conv ?? convCandidates(engine, kind === 'fwd' ? g.Co : g.Ci));
        for (const c of cands.slice(0, opts.maxCandidates ?? Infinity)) {
          const run =
            kind === 'fwd' ? () => conv2dForward(x, w, null, { ...p, config: c as ConvTileConfig })
            : kind === 'dgrad' ? () => conv2dBackwardData(dy, w, s.x, { ...p, config: c as ConvTileConfig })
            : () => conv2dBackwardFilter(x, dy, s.w, { ...p, config: c as WgradTileConfig });
          let t: number;
          try {
            t = await timeIt(engine, run, reps);
          } catch {
            continue; // a candidate this device cannot run (limits) is skipped
          }
          if (!best || t < best.t) best = { t, c };
        }
        if (best) {
          convTuning(engine).set(key, best.c);
          chosen.set(key, best.c);
        }
      }
    } finally {
      x.dispose();
      w.dispose();
      dy.dispose();
    }
  }
  return chosen;
}
