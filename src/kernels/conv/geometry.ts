// Convolution geometry: parameter types, PyTorch's output size, shape checks for single and multi-branch convolutions.
import type { Tensor } from '../../core/tensor.js';
import { shapeStr, type Shape } from '../../core/tensor.js';
import type { PerAxis } from '../util.js';

/** An activation a conv can apply in its epilogue. */
export type Activation = 'none' | 'relu' | 'leakyRelu';

export interface Conv2dParams {
  stride?: PerAxis;
  padding?: PerAxis;
  dilation?: PerAxis;
}

/** One branch of a multi-branch convolution: OIHW weight (all the same shape) and its geometry. */
export interface ConvBranch {
  weight: Tensor;
  padding: [number, number];
  dilation: [number, number];
}

/** A convolution's sizes: input, weight, output, stride, padding, dilation. */
export function pair(v: PerAxis | undefined, dflt: number, what: string): [number, number] {
  const r: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!r.every((d) => Number.isInteger(d))) throw new Error(`conv2d: ${what} must be integers, got ${String(v)}`);
  return r;
}

/** PyTorch's output size for one axis. */
export function convOutputSize(size: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

export interface Geometry {
  N: number; Ci: number; H: number; W: number;
  Co: number; KH: number; KW: number; Ho: number; Wo: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

export function geometry(op: string, xShape: Shape, wShape: Shape, p: Conv2dParams): Geometry {
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

export function checkDy(op: string, dy: Tensor, g: Geometry): void {
  const want = [g.N, g.Co, g.Ho, g.Wo];
  if (dy.shape.join() !== want.join()) throw new Error(`${op}: dy ${shapeStr(dy.shape)} does not match the output shape ${shapeStr(want)}`);
}

export function branchGeometry(op: string, x: Shape, branches: ConvBranch[], fuse: Tensor | null): Geometry[] {
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
