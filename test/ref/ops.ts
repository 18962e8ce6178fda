// Float64 CPU forward/backward reference ops (NCHW activations, OIHW conv weights, [out,in] linear weights) used as golden values.
//
// Conventions: multi-dimensional values are RefTensor; per-channel vectors (bias, gamma, beta,
// running stats, PReLU slopes) are plain ArrayLike<number> in and Float64Array out. Backward
// functions take the forward inputs plus the upstream gradient and return vector-Jacobian
// products; they recompute what they need rather than relying on cached forward state so each
// one can be called on its own from a kernel test.

import { numel, refTensor, type RefTensor } from './tensor';

export type PerAxis = number | readonly [number, number];

// ---------------------------------------------------------------------------------------------
// Shape utilities

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function expectShape(t: RefTensor, shape: readonly number[], what: string): void {
  if (!sameShape(t.shape, shape)) throw new Error(`${what}: expected shape ${fmt(shape)}, got ${fmt(t.shape)}`);
}

function expectRank(t: RefTensor, rank: number, what: string): void {
  if (t.shape.length !== rank) throw new Error(`${what}: expected rank ${rank}, got shape ${fmt(t.shape)}`);
}

function pair(p: PerAxis): [number, number] {
  return typeof p === 'number' ? [p, p] : [p[0], p[1]];
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

export function reshape(t: RefTensor, shape: readonly number[]): RefTensor {
  if (numel(shape) !== t.data.length) throw new Error(`reshape: cannot view ${fmt(t.shape)} as ${fmt(shape)}`);
  return { shape: [...shape], data: t.data.slice() };
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`dot: length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting (NumPy rules)

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`broadcast: incompatible shapes ${fmt(a)} and ${fmt(b)}`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** For every flat index of `outShape`, the flat index of the element of `inShape` it reads under broadcasting. */
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const rank = outShape.length;
  const offset = rank - inShape.length;
  if (offset < 0) throw new Error(`broadcast: ${fmt(inShape)} has more dims than ${fmt(outShape)}`);
  const inStrides = stridesOf(inShape);
  // A stride of zero on broadcast dims makes the odometer below revisit the same input element.
  const step = new Array<number>(rank).fill(0);
  for (let d = 0; d < inShape.length; d++) {
    const od = d + offset;
    if (inShape[d] === outShape[od]) step[od] = inStrides[d];
    else if (inShape[d] !== 1) throw new Error(`broadcast: cannot expand ${fmt(inShape)} to ${fmt(outShape)}`);
  }
  const n = numel(outShape);
  const map = new Int32Array(n);
  const idx = new Array<number>(rank).fill(0);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    map[i] = pos;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      pos += step[d];
      if (idx[d] < outShape[d]) break;
      pos -= step[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return map;
}

export function broadcastTo(x: RefTensor, shape: readonly number[]): RefTensor {
  const map = broadcastIndex(x.shape, shape);
  const out = refTensor(shape);
  for (let i = 0; i < map.length; i++) out.data[i] = x.data[map[i]];
  return out;
}

/** Adjoint of broadcastTo: sums a gradient of the broadcast shape back onto `shape`. */
export function sumToShape(g: RefTensor, shape: readonly number[]): RefTensor {
  const map = broadcastIndex(shape, g.shape);
  const out = refTensor(shape);
  for (let i = 0; i < map.length; i++) out.data[map[i]] += g.data[i];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary ops with broadcasting

export interface BinaryGrads {
  da: RefTensor;
  db: RefTensor;
}

function binary(a: RefTensor, b: RefTensor, fn: (p: number, q: number) => number): RefTensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const out = refTensor(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = fn(a.data[ia[i]], b.data[ib[i]]);
  return out;
}

function binaryBackward(
  a: RefTensor,
  b: RefTensor,
  dy: RefTensor,
  dfda: (p: number, q: number) => number,
  dfdb: (p: number, q: number) => number,
): BinaryGrads {
  const shape = broadcastShapes(a.shape, b.shape);
  expectShape(dy, shape, 'binary backward dy');
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const da = refTensor(a.shape);
  const db = refTensor(b.shape);
  for (let i = 0; i < dy.data.length; i++) {
    const p = a.data[ia[i]];
    const q = b.data[ib[i]];
    const g = dy.data[i];
    da.data[ia[i]] += g * dfda(p, q);
    db.data[ib[i]] += g * dfdb(p, q);
  }
  return { da, db };
}

export const add = (a: RefTensor, b: RefTensor): RefTensor => binary(a, b, (p, q) => p + q);
export const sub = (a: RefTensor, b: RefTensor): RefTensor => binary(a, b, (p, q) => p - q);
export const mul = (a: RefTensor, b: RefTensor): RefTensor => binary(a, b, (p, q) => p * q);
export const div = (a: RefTensor, b: RefTensor): RefTensor => binary(a, b, (p, q) => p / q);

export const addBackward = (a: RefTensor, b: RefTensor, dy: RefTensor): BinaryGrads =>
  binaryBackward(a, b, dy, () => 1, () => 1);
export const subBackward = (a: RefTensor, b: RefTensor, dy: RefTensor): BinaryGrads =>
  binaryBackward(a, b, dy, () => 1, () => -1);
export const mulBackward = (a: RefTensor, b: RefTensor, dy: RefTensor): BinaryGrads =>
  binaryBackward(a, b, dy, (_p, q) => q, (p) => p);
export const divBackward = (a: RefTensor, b: RefTensor, dy: RefTensor): BinaryGrads =>
  binaryBackward(a, b, dy, (_p, q) => 1 / q, (p, q) => -p / (q * q));

// ---------------------------------------------------------------------------------------------
// Elementwise unary ops

function unary(x: RefTensor, fn: (v: number) => number): RefTensor {
  const out = refTensor(x.shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = fn(x.data[i]);
  return out;
}

/** dx_i = dy_i * f'(x_i); f' is evaluated at the forward input. */
function unaryBackward(x: RefTensor, dy: RefTensor, dfdx: (v: number) => number, what: string): RefTensor {
  expectShape(dy, x.shape, what);
  const dx = refTensor(x.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[i] * dfdx(x.data[i]);
  return dx;
}

// Split by sign so exp never overflows for large |v|.
export function sigmoidScalar(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

export const relu = (x: RefTensor): RefTensor => unary(x, (v) => (v > 0 ? v : 0));
// PyTorch convention: the derivative at exactly 0 is 0.
export const reluBackward = (x: RefTensor, dy: RefTensor): RefTensor =>
  unaryBackward(x, dy, (v) => (v > 0 ? 1 : 0), 'reluBackward');

export const sigmoid = (x: RefTensor): RefTensor => unary(x, sigmoidScalar);
export const sigmoidBackward = (x: RefTensor, dy: RefTensor): RefTensor =>
  unaryBackward(
    x,
    dy,
    (v) => {
      const s = sigmoidScalar(v);
      return s * (1 - s);
    },
    'sigmoidBackward',
  );

export const exp = (x: RefTensor): RefTensor => unary(x, Math.exp);
export const expBackward = (x: RefTensor, dy: RefTensor): RefTensor =>
  unaryBackward(x, dy, Math.exp, 'expBackward');

export const log = (x: RefTensor): RefTensor => unary(x, Math.log);
export const logBackward = (x: RefTensor, dy: RefTensor): RefTensor =>
  unaryBackward(x, dy, (v) => 1 / v, 'logBackward');

export const leakyRelu = (x: RefTensor, slope = 0.01): RefTensor => unary(x, (v) => (v > 0 ? v : slope * v));
export const leakyReluBackward = (x: RefTensor, dy: RefTensor, slope = 0.01): RefTensor =>
  unaryBackward(x, dy, (v) => (v > 0 ? 1 : slope), 'leakyReluBackward');

export const addScalar = (x: RefTensor, c: number): RefTensor => unary(x, (v) => v + c);
export const addScalarBackward = (dy: RefTensor): RefTensor => unary(dy, (g) => g);
export const mulScalar = (x: RefTensor, c: number): RefTensor => unary(x, (v) => v * c);
export const mulScalarBackward = (dy: RefTensor, c: number): RefTensor => unary(dy, (g) => g * c);

/** Maps a flat NC... index to its channel (dim 1); rank-1 tensors are treated as a single channel axis. */
function channelOf(shape: readonly number[]): (i: number) => number {
  if (shape.length < 2) return (i) => i;
  const c = shape[1];
  const inner = numel(shape.slice(2));
  return (i) => Math.floor(i / inner) % c;
}

function preluSlopeIndex(x: RefTensor, slopes: ArrayLike<number>): (i: number) => number {
  if (slopes.length === 1) return () => 0;
  const channels = x.shape.length < 2 ? x.shape[0] : x.shape[1];
  if (slopes.length !== channels) {
    throw new Error(`prelu: ${slopes.length} slopes for ${channels} channels of ${fmt(x.shape)}`);
  }
  return channelOf(x.shape);
}

/** `positive` (1/0 per element) overrides which side of the kink each element is on (default x > 0). */
export function prelu(x: RefTensor, slopes: ArrayLike<number>, positive?: ArrayLike<number>): RefTensor {
  const slopeAt = preluSlopeIndex(x, slopes);
  const out = refTensor(x.shape);
  for (let i = 0; i < out.data.length; i++) {
    const v = x.data[i];
    out.data[i] = (positive ? positive[i] === 1 : v > 0) ? v : slopes[slopeAt(i)] * v;
  }
  return out;
}

export function preluBackward(
  x: RefTensor,
  slopes: ArrayLike<number>,
  dy: RefTensor,
  positive?: ArrayLike<number>,
): { dx: RefTensor; dslopes: Float64Array } {
  expectShape(dy, x.shape, 'preluBackward dy');
  const slopeAt = preluSlopeIndex(x, slopes);
  const dx = refTensor(x.shape);
  const dslopes = new Float64Array(slopes.length);
  for (let i = 0; i < dx.data.length; i++) {
    const v = x.data[i];
    const g = dy.data[i];
    if (positive ? positive[i] === 1 : v > 0) {
      dx.data[i] = g;
    } else {
      const k = slopeAt(i);
      dx.data[i] = slopes[k] * g;
      dslopes[k] += v * g;
    }
  }
  return { dx, dslopes };
}

// ---------------------------------------------------------------------------------------------
// Reductions

function normalizeAxes(axes: readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const norm = axes.map((a) => (a < 0 ? a + rank : a));
  for (const a of norm) if (a < 0 || a >= rank) throw new Error(`reduce: axis out of range for rank ${rank}`);
  return [...new Set(norm)].sort((p, q) => p - q);
}

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function reducedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

/** Sum over `axes` (all axes when omitted); a full reduction without keepdim has shape []. */
export function sum(x: RefTensor, axes?: readonly number[], keepdim = false): RefTensor {
  const ax = normalizeAxes(axes, x.shape.length);
  const kept = sumToShape(x, keptShape(x.shape, ax));
  return { shape: reducedShape(x.shape, ax, keepdim), data: kept.data };
}

export function mean(x: RefTensor, axes?: readonly number[], keepdim = false): RefTensor {
  const ax = normalizeAxes(axes, x.shape.length);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const s = sum(x, ax, keepdim);
  for (let i = 0; i < s.data.length; i++) s.data[i] /= count;
  return s;
}

export function sumBackward(
  xShape: readonly number[],
  dy: RefTensor,
  axes?: readonly number[],
  keepdim = false,
): RefTensor {
  const ax = normalizeAxes(axes, xShape.length);
  expectShape(dy, reducedShape(xShape, ax, keepdim), 'sumBackward dy');
  return broadcastTo({ shape: keptShape(xShape, ax), data: dy.data }, xShape);
}

export function meanBackward(
  xShape: readonly number[],
  dy: RefTensor,
  axes?: readonly number[],
  keepdim = false,
): RefTensor {
  const ax = normalizeAxes(axes, xShape.length);
  const count = ax.reduce((n, a) => n * xShape[a], 1);
  const dx = sumBackward(xShape, dy, ax, keepdim);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] /= count;
  return dx;
}

export const sumAll = (x: RefTensor): number => sum(x).data[0];
export const meanAll = (x: RefTensor): number => mean(x).data[0];

// ---------------------------------------------------------------------------------------------
// Matrix products

export function matmul(a: RefTensor, b: RefTensor): RefTensor {
  expectRank(a, 2, 'matmul a');
  expectRank(b, 2, 'matmul b');
  const [m, k] = a.shape;
  const [k2, n] = b.shape;
  if (k !== k2) throw new Error(`matmul: inner dims differ ${fmt(a.shape)} x ${fmt(b.shape)}`);
  const out = refTensor([m, n]);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a.data[i * k + p];
      for (let j = 0; j < n; j++) out.data[i * n + j] += av * b.data[p * n + j];
    }
  }
  return out;
}

export function transpose2d(a: RefTensor): RefTensor {
  expectRank(a, 2, 'transpose2d');
  const [r, c] = a.shape;
  const out = refTensor([c, r]);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out.data[j * r + i] = a.data[i * c + j];
  return out;
}

export function matmulBackward(a: RefTensor, b: RefTensor, dy: RefTensor): { da: RefTensor; db: RefTensor } {
  expectShape(dy, [a.shape[0], b.shape[1]], 'matmulBackward dy');
  return { da: matmul(dy, transpose2d(b)), db: matmul(transpose2d(a), dy) };
}

/** y = x @ w^T (+ bias), with w stored [out, in] like torch.nn.Linear. */
export function linear(x: RefTensor, w: RefTensor, bias: ArrayLike<number> | null = null): RefTensor {
  expectRank(w, 2, 'linear w');
  const y = matmul(x, transpose2d(w));
  if (bias !== null) {
    const out = w.shape[0];
    if (bias.length !== out) throw new Error(`linear: bias has ${bias.length} values for ${out} outputs`);
    for (let i = 0; i < y.data.length; i++) y.data[i] += bias[i % out];
  }
  return y;
}

export function linearBackward(
  x: RefTensor,
  w: RefTensor,
  dy: RefTensor,
): { dx: RefTensor; dw: RefTensor; db: Float64Array } {
  expectShape(dy, [x.shape[0], w.shape[0]], 'linearBackward dy');
  return {
    dx: matmul(dy, w),
    dw: matmul(transpose2d(dy), x),
    db: sum(dy, [0]).data,
  };
}

// ---------------------------------------------------------------------------------------------
// Channel concat / split (dim 1)

/** Views a rank>=2 tensor as [outer, channels, inner] so dim-1 slicing is plain block copies. */
function channelBlocks(shape: readonly number[]): { outer: number; channels: number; inner: number } {
  if (shape.length < 2) throw new Error(`channel op needs rank >= 2, got ${fmt(shape)}`);
  return { outer: shape[0], channels: shape[1], inner: numel(shape.slice(2)) };
}

export function concat(xs: readonly RefTensor[]): RefTensor {
  if (xs.length === 0) throw new Error('concat: no inputs');
  const first = xs[0].shape;
  for (const x of xs) {
    if (x.shape.length !== first.length || x.shape.some((d, i) => i !== 1 && d !== first[i])) {
      throw new Error(`concat: ${fmt(x.shape)} does not match ${fmt(first)} outside dim 1`);
    }
  }
  const total = xs.reduce((c, x) => c + x.shape[1], 0);
  const shape = [...first];
  shape[1] = total;
  const out = refTensor(shape);
  const { outer, inner } = channelBlocks(shape);
  let cOffset = 0;
  for (const x of xs) {
    const block = x.shape[1] * inner;
    for (let n = 0; n < outer; n++) {
      out.data.set(x.data.subarray(n * block, (n + 1) * block), (n * total + cOffset) * inner);
    }
    cOffset += x.shape[1];
  }
  return out;
}

export function split(x: RefTensor, sizes: readonly number[]): RefTensor[] {
  const { outer, channels, inner } = channelBlocks(x.shape);
  if (sizes.reduce((s, c) => s + c, 0) !== channels) {
    throw new Error(`split: sizes [${sizes.join(',')}] do not sum to ${channels} channels`);
  }
  const parts: RefTensor[] = [];
  let cOffset = 0;
  for (const c of sizes) {
    const shape = [...x.shape];
    shape[1] = c;
    const part = refTensor(shape);
    const block = c * inner;
    for (let n = 0; n < outer; n++) {
      const src = (n * channels + cOffset) * inner;
      part.data.set(x.data.subarray(src, src + block), n * block);
    }
    parts.push(part);
    cOffset += c;
  }
  return parts;
}

export const concatBackward = (dy: RefTensor, sizes: readonly number[]): RefTensor[] => split(dy, sizes);
export const splitBackward = (dys: readonly RefTensor[]): RefTensor => concat(dys);

// ---------------------------------------------------------------------------------------------
// Losses (mean reduction)

export interface LossGrads {
  dx: RefTensor;
  dtarget: RefTensor;
}

export function l1Loss(x: RefTensor, target: RefTensor): number {
  expectShape(target, x.shape, 'l1Loss target');
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += Math.abs(x.data[i] - target.data[i]);
  return s / x.data.length;
}

/** sign(0) = 0, matching torch.sign inside l1_loss backward. */
export function l1LossBackward(x: RefTensor, target: RefTensor, gout = 1): LossGrads {
  expectShape(target, x.shape, 'l1LossBackward target');
  const dx = refTensor(x.shape);
  const n = x.data.length;
  for (let i = 0; i < n; i++) dx.data[i] = (Math.sign(x.data[i] - target.data[i]) * gout) / n;
  return { dx, dtarget: mulScalar(dx, -1) };
}

export function mseLoss(x: RefTensor, target: RefTensor): number {
  expectShape(target, x.shape, 'mseLoss target');
  let s = 0;
  for (let i = 0; i < x.data.length; i++) {
    const d = x.data[i] - target.data[i];
    s += d * d;
  }
  return s / x.data.length;
}

export function mseLossBackward(x: RefTensor, target: RefTensor, gout = 1): LossGrads {
  expectShape(target, x.shape, 'mseLossBackward target');
  const dx = refTensor(x.shape);
  const n = x.data.length;
  for (let i = 0; i < n; i++) dx.data[i] = (2 * (x.data[i] - target.data[i]) * gout) / n;
  return { dx, dtarget: mulScalar(dx, -1) };
}

// ---------------------------------------------------------------------------------------------
// Conv2d (zero padding, no groups)

export interface Conv2dOptions {
  stride?: PerAxis;
  pad?: PerAxis;
  dilation?: PerAxis;
}

interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  ho: number;
  wo: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
}

export function conv2dOutputSize(
  h: number,
  w: number,
  kh: number,
  kw: number,
  opts: Conv2dOptions = {},
): [number, number] {
  const [sh, sw] = pair(opts.stride ?? 1);
  const [ph, pw] = pair(opts.pad ?? 0);
  const [dh, dw] = pair(opts.dilation ?? 1);
  return [
    Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1,
    Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1,
  ];
}

function convGeometry(x: RefTensor, weight: RefTensor, opts: Conv2dOptions): ConvGeometry {
  expectRank(x, 4, 'conv2d x');
  expectRank(weight, 4, 'conv2d w');
  const [n, c, h, w] = x.shape;
  const [o, wc, kh, kw] = weight.shape;
  if (wc !== c) throw new Error(`conv2d: weight ${fmt(weight.shape)} expects ${wc} input channels, x has ${c}`);
  const [ho, wo] = conv2dOutputSize(h, w, kh, kw, opts);
  if (ho <= 0 || wo <= 0) throw new Error(`conv2d: empty output for x ${fmt(x.shape)} w ${fmt(weight.shape)}`);
  const [sh, sw] = pair(opts.stride ?? 1);
  const [ph, pw] = pair(opts.pad ?? 0);
  const [dh, dw] = pair(opts.dilation ?? 1);
  return { n, c, h, w, o, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw };
}

/**
 * Visits every (output position, weight tap) pair that lands inside the unpadded input, so
 * forward and backward share one indexing definition. Padding taps contribute zero and are skipped.
 */
function forEachConvTap(
  g: ConvGeometry,
  visit: (outIdx: number, xIdx: number, wIdx: number) => void,
): void {
  for (let b = 0; b < g.n; b++) {
    for (let oc = 0; oc < g.o; oc++) {
      for (let oy = 0; oy < g.ho; oy++) {
        for (let ox = 0; ox < g.wo; ox++) {
          const outIdx = ((b * g.o + oc) * g.ho + oy) * g.wo + ox;
          for (let ic = 0; ic < g.c; ic++) {
            for (let ky = 0; ky < g.kh; ky++) {
              const iy = oy * g.sh - g.ph + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (let kx = 0; kx < g.kw; kx++) {
                const ix = ox * g.sw - g.pw + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                visit(outIdx, ((b * g.c + ic) * g.h + iy) * g.w + ix, ((oc * g.c + ic) * g.kh + ky) * g.kw + kx);
              }
            }
          }
        }
      }
    }
  }
}

export function conv2d(
  x: RefTensor,
  weight: RefTensor,
  bias: ArrayLike<number> | null = null,
  opts: Conv2dOptions = {},
): RefTensor {
  const g = convGeometry(x, weight, opts);
  const y = refTensor([g.n, g.o, g.ho, g.wo]);
  if (bias !== null) {
    if (bias.length !== g.o) throw new Error(`conv2d: bias has ${bias.length} values for ${g.o} outputs`);
    const plane = g.ho * g.wo;
    for (let i = 0; i < y.data.length; i++) y.data[i] = bias[Math.floor(i / plane) % g.o];
  }
  forEachConvTap(g, (oi, xi, wi) => {
    y.data[oi] += x.data[xi] * weight.data[wi];
  });
  return y;
}

export function conv2dBackward(
  x: RefTensor,
  weight: RefTensor,
  dy: RefTensor,
  opts: Conv2dOptions = {},
): { dx: RefTensor; dw: RefTensor; db: Float64Array } {
  const g = convGeometry(x, weight, opts);
  expectShape(dy, [g.n, g.o, g.ho, g.wo], 'conv2dBackward dy');
  const dx = refTensor(x.shape);
  const dw = refTensor(weight.shape);
  forEachConvTap(g, (oi, xi, wi) => {
    const gy = dy.data[oi];
    dx.data[xi] += gy * weight.data[wi];
    dw.data[wi] += gy * x.data[xi];
  });
  return { dx, dw, db: sum(dy, [0, 2, 3]).data };
}

/**
 * The fused detail block without biases, y = conv1x1(concat_k conv2d(x, W_k; pad = dilation = d_k), Wf),
 * and its input gradient for an upstream dy: each branch's dgrad of its slice of the fuse's dgrad.
 */
export function multiDilationConv2d(x: RefTensor, ws: readonly RefTensor[], wf: RefTensor, dil: readonly number[]): { y: RefTensor; dx: (dy: RefTensor) => RefTensor } {
  const parts = ws.map((w, k) => conv2d(x, w, null, { pad: dil[k], dilation: dil[k] }));
  const cat = concat(parts);
  const dx = (dy: RefTensor) => {
    const dyParts = split(conv2dBackward(cat, wf, dy, {}).dx, parts.map((p) => p.shape[1]));
    const out = refTensor(x.shape);
    ws.forEach((w, k) => conv2dBackward(x, w, dyParts[k], { pad: dil[k], dilation: dil[k] }).dx.data.forEach((v, i) => (out.data[i] += v)));
    return out;
  };
  return { y: conv2d(cat, wf, null), dx };
}

// ---------------------------------------------------------------------------------------------
// BatchNorm2d

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  /** Defaults to zeros, PyTorch's initial running mean. */
  runningMean?: ArrayLike<number>;
  /** Defaults to ones, PyTorch's initial running variance. */
  runningVar?: ArrayLike<number>;
}

export interface BatchNormTrainResult {
  y: RefTensor;
  batchMean: Float64Array;
  /** Biased (divide by N*H*W) variance: what normalization uses. */
  batchVar: Float64Array;
  runningMean: Float64Array;
  /** Updated with the unbiased batch variance, as PyTorch does. */
  runningVar: Float64Array;
}

export interface BatchNormGrads {
  dx: RefTensor;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

function expectChannelVector(v: ArrayLike<number>, c: number, what: string): void {
  if (v.length !== c) throw new Error(`${what}: expected ${c} channel values, got ${v.length}`);
}

/** Two-pass per-channel mean and biased variance over N, H, W (two passes avoid cancellation). */
function channelStats(x: RefTensor): { mean: Float64Array; variance: Float64Array; count: number } {
  expectRank(x, 4, 'batchnorm x');
  const [n, c, h, w] = x.shape;
  const plane = h * w;
  const count = n * plane;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (b * c + ch) * plane;
      for (let i = 0; i < plane; i++) mean[ch] += x.data[base + i];
    }
  }
  for (let ch = 0; ch < c; ch++) mean[ch] /= count;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (b * c + ch) * plane;
      for (let i = 0; i < plane; i++) {
        const d = x.data[base + i] - mean[ch];
        variance[ch] += d * d;
      }
    }
  }
  for (let ch = 0; ch < c; ch++) variance[ch] /= count;
  return { mean, variance, count };
}

/** y = gamma * (x - mean[c]) * invStd[c] + beta; shared by train and eval modes. */
function normalizeAffine(
  x: RefTensor,
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
): RefTensor {
  const channel = channelOf(x.shape);
  const y = refTensor(x.shape);
  for (let i = 0; i < y.data.length; i++) {
    const ch = channel(i);
    y.data[i] = gamma[ch] * (x.data[i] - mean[ch]) * invStd[ch] + beta[ch];
  }
  return y;
}

function invStdOf(variance: ArrayLike<number>, eps: number): Float64Array {
  return Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
}

export function batchNorm2dTrain(
  x: RefTensor,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  opts: BatchNormOptions = {},
): BatchNormTrainResult {
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const { mean, variance, count } = channelStats(x);
  const c = x.shape[1];
  expectChannelVector(gamma, c, 'batchNorm2dTrain gamma');
  expectChannelVector(beta, c, 'batchNorm2dTrain beta');
  // PyTorch refuses this too: the unbiased running variance would divide by zero.
  if (count < 2) throw new Error('batchNorm2dTrain: need more than one value per channel');
  const prevMean = opts.runningMean ?? new Float64Array(c);
  const prevVar = opts.runningVar ?? new Float64Array(c).fill(1);
  expectChannelVector(prevMean, c, 'batchNorm2dTrain runningMean');
  expectChannelVector(prevVar, c, 'batchNorm2dTrain runningVar');
  const runningMean = new Float64Array(c);
  const runningVar = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    runningMean[ch] = (1 - momentum) * prevMean[ch] + momentum * mean[ch];
    runningVar[ch] = (1 - momentum) * prevVar[ch] + momentum * variance[ch] * (count / (count - 1));
  }
  const y = normalizeAffine(x, mean, invStdOf(variance, eps), gamma, beta);
  return { y, batchMean: mean, batchVar: variance, runningMean, runningVar };
}

export function batchNorm2dEval(
  x: RefTensor,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  eps = 1e-5,
): RefTensor {
  expectRank(x, 4, 'batchNorm2dEval x');
  const c = x.shape[1];
  for (const [v, what] of [
    [gamma, 'gamma'],
    [beta, 'beta'],
    [runningMean, 'runningMean'],
    [runningVar, 'runningVar'],
  ] as const) {
    expectChannelVector(v, c, `batchNorm2dEval ${what}`);
  }
  return normalizeAffine(x, runningMean, invStdOf(runningVar, eps), gamma, beta);
}

/**
 * Gradient through the batch statistics:
 * dx = gamma * invStd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)), m = N*H*W.
 */
export function batchNorm2dTrainBackward(
  x: RefTensor,
  gamma: ArrayLike<number>,
  dy: RefTensor,
  eps = 1e-5,
): BatchNormGrads {
  expectShape(dy, x.shape, 'batchNorm2dTrainBackward dy');
  const { mean, variance, count } = channelStats(x);
  const c = x.shape[1];
  expectChannelVector(gamma, c, 'batchNorm2dTrainBackward gamma');
  const invStd = invStdOf(variance, eps);
  const channel = channelOf(x.shape);
  const xhat = (i: number, ch: number): number => (x.data[i] - mean[ch]) * invStd[ch];

  const dbeta = new Float64Array(c);
  const dgamma = new Float64Array(c);
  for (let i = 0; i < x.data.length; i++) {
    const ch = channel(i);
    dbeta[ch] += dy.data[i];
    dgamma[ch] += dy.data[i] * xhat(i, ch);
  }
  const dx = refTensor(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const ch = channel(i);
    dx.data[i] =
      ((gamma[ch] * invStd[ch]) / count) * (count * dy.data[i] - dbeta[ch] - xhat(i, ch) * dgamma[ch]);
  }
  return { dx, dgamma, dbeta };
}

/** Eval mode normalizes with constants, so dx is a per-channel scale of dy. */
export function batchNorm2dEvalBackward(
  x: RefTensor,
  gamma: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  dy: RefTensor,
  eps = 1e-5,
): BatchNormGrads {
  expectShape(dy, x.shape, 'batchNorm2dEvalBackward dy');
  const c = x.shape[1];
  expectChannelVector(gamma, c, 'batchNorm2dEvalBackward gamma');
  const invStd = invStdOf(runningVar, eps);
  const channel = channelOf(x.shape);
  const dx = refTensor(x.shape);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let i = 0; i < x.data.length; i++) {
    const ch = channel(i);
    const g = dy.data[i];
    dx.data[i] = g * gamma[ch] * invStd[ch];
    dgamma[ch] += g * (x.data[i] - runningMean[ch]) * invStd[ch];
    dbeta[ch] += g;
  }
  return { dx, dgamma, dbeta };
}

// ---------------------------------------------------------------------------------------------
// Pooling

export function globalAvgPool(x: RefTensor): RefTensor {
  expectRank(x, 4, 'globalAvgPool x');
  return mean(x, [2, 3], true);
}

export function globalAvgPoolBackward(xShape: readonly number[], dy: RefTensor): RefTensor {
  return meanBackward(xShape, dy, [2, 3], true);
}

interface PoolGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ho: number;
  wo: number;
}

function poolGeometry(shape: readonly number[], kernel: PerAxis, stride: PerAxis): PoolGeometry {
  if (shape.length !== 4) throw new Error(`pool: expected NCHW input, got ${fmt(shape)}`);
  const [n, c, h, w] = shape;
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(stride);
  const ho = Math.floor((h - kh) / sh) + 1;
  const wo = Math.floor((w - kw) / sw) + 1;
  if (ho <= 0 || wo <= 0) throw new Error(`pool: kernel ${kh}x${kw} larger than input ${fmt(shape)}`);
  return { n, c, h, w, kh, kw, sh, sw, ho, wo };
}

/** Flat input index of the window maximum for each output; strict '>' keeps the first max in row-major order. */
function maxPoolArgmax(x: RefTensor, g: PoolGeometry): Int32Array {
  const arg = new Int32Array(g.n * g.c * g.ho * g.wo);
  let o = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * g.h * g.w;
    for (let oy = 0; oy < g.ho; oy++) {
      for (let ox = 0; ox < g.wo; ox++) {
        let best = base + oy * g.sh * g.w + ox * g.sw;
        for (let ky = 0; ky < g.kh; ky++) {
          for (let kx = 0; kx < g.kw; kx++) {
            const idx = base + (oy * g.sh + ky) * g.w + ox * g.sw + kx;
            if (x.data[idx] > x.data[best]) best = idx;
          }
        }
        arg[o++] = best;
      }
    }
  }
  return arg;
}

export function maxPool2d(x: RefTensor, kernel: PerAxis = 2, stride: PerAxis = kernel): RefTensor {
  const g = poolGeometry(x.shape, kernel, stride);
  const arg = maxPoolArgmax(x, g);
  const y = refTensor([g.n, g.c, g.ho, g.wo]);
  for (let i = 0; i < arg.length; i++) y.data[i] = x.data[arg[i]];
  return y;
}

export function maxPool2dBackward(x: RefTensor, dy: RefTensor, kernel: PerAxis = 2, stride: PerAxis = kernel): RefTensor {
  const g = poolGeometry(x.shape, kernel, stride);
  expectShape(dy, [g.n, g.c, g.ho, g.wo], 'maxPool2dBackward dy');
  const arg = maxPoolArgmax(x, g);
  const dx = refTensor(x.shape);
  for (let i = 0; i < arg.length; i++) dx.data[arg[i]] += dy.data[i];
  return dx;
}

function forEachPoolTap(g: PoolGeometry, visit: (outIdx: number, xIdx: number) => void): void {
  let o = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * g.h * g.w;
    for (let oy = 0; oy < g.ho; oy++) {
      for (let ox = 0; ox < g.wo; ox++) {
        for (let ky = 0; ky < g.kh; ky++) {
          for (let kx = 0; kx < g.kw; kx++) visit(o, base + (oy * g.sh + ky) * g.w + ox * g.sw + kx);
        }
        o++;
      }
    }
  }
}

export function avgPool2d(x: RefTensor, kernel: PerAxis = 2, stride: PerAxis = kernel): RefTensor {
  const g = poolGeometry(x.shape, kernel, stride);
  const y = refTensor([g.n, g.c, g.ho, g.wo]);
  const scale = 1 / (g.kh * g.kw);
  forEachPoolTap(g, (oi, xi) => {
    y.data[oi] += x.data[xi] * scale;
  });
  return y;
}

export function avgPool2dBackward(
  xShape: readonly number[],
  dy: RefTensor,
  kernel: PerAxis = 2,
  stride: PerAxis = kernel,
): RefTensor {
  const g = poolGeometry(xShape, kernel, stride);
  expectShape(dy, [g.n, g.c, g.ho, g.wo], 'avgPool2dBackward dy');
  const dx = refTensor(xShape);
  const scale = 1 / (g.kh * g.kw);
  forEachPoolTap(g, (oi, xi) => {
    dx.data[xi] += dy.data[oi] * scale;
  });
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Squeeze-and-excitation: y = x * sigmoid(relu(mean_hw(x) @ w1^T) @ w2^T), gate per (n, c)

export interface SqueezeExciteForward {
  y: RefTensor;
  /** [N, C] channel means. */
  s: RefTensor;
  /** [N, hidden] pre-ReLU. */
  z1: RefTensor;
  /** [N, hidden] post-ReLU. */
  h: RefTensor;
  /** [N, C] pre-sigmoid. */
  z2: RefTensor;
  /** [N, C] gate. */
  gate: RefTensor;
}

export function squeezeExciteForward(x: RefTensor, w1: RefTensor, w2: RefTensor): SqueezeExciteForward {
  expectRank(x, 4, 'squeezeExcite x');
  const [n, c] = x.shape;
  expectRank(w1, 2, 'squeezeExcite w1');
  const hidden = w1.shape[0];
  expectShape(w1, [hidden, c], 'squeezeExcite w1');
  expectShape(w2, [c, hidden], 'squeezeExcite w2');
  const s = reshape(globalAvgPool(x), [n, c]);
  const z1 = linear(s, w1);
  const h = relu(z1);
  const z2 = linear(h, w2);
  const gate = sigmoid(z2);
  const y = mul(x, reshape(gate, [n, c, 1, 1]));
  return { y, s, z1, h, z2, gate };
}

export const squeezeExcite = (x: RefTensor, w1: RefTensor, w2: RefTensor): RefTensor =>
  squeezeExciteForward(x, w1, w2).y;

export function squeezeExciteBackward(
  x: RefTensor,
  w1: RefTensor,
  w2: RefTensor,
  dy: RefTensor,
): { dx: RefTensor; dw1: RefTensor; dw2: RefTensor } {
  expectShape(dy, x.shape, 'squeezeExciteBackward dy');
  const [n, c] = x.shape;
  const f = squeezeExciteForward(x, w1, w2);
  // x feeds y twice: directly through the product, and through the gate via the channel means.
  const { da: dxDirect, db: dgate4 } = mulBackward(x, reshape(f.gate, [n, c, 1, 1]), dy);
  const dz2 = sigmoidBackward(f.z2, reshape(dgate4, [n, c]));
  const back2 = linearBackward(f.h, w2, dz2);
  const dz1 = reluBackward(f.z1, back2.dx);
  const back1 = linearBackward(f.s, w1, dz1);
  const dxSqueeze = globalAvgPoolBackward(x.shape, reshape(back1.dx, [n, c, 1, 1]));
  return { dx: add(dxDirect, dxSqueeze), dw1: back1.dw, dw2: back2.dw };
}
