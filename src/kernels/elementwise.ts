// Elementwise kernels (no autograd): broadcasting binary ops, unary maps and their gradients.
import code from '../../shaders/elementwise.wgsl';
import { Tensor } from '../core/tensor.js';
import { broadcastShapes, broadcastStrides, grid, pad4 } from './util.js';

const WG = 256;
export const BINARY = { add: 0, sub: 1, mul: 2, div: 3, max: 4, expand: 5 } as const;
export const UNARY = { affine: 0, relu: 1, sigmoid: 2, exp: 3, log: 4, abs: 5, sign: 6, leakyRelu: 7, square: 8, sqrt: 9 } as const;
export type BinaryOp = keyof typeof BINARY;
export type UnaryOp = keyof typeof UNARY;

export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = Tensor.empty(a.engine, shape);
  if (out.size === 0) return out;
  const s = pad4(shape, op);
  const sa = broadcastStrides(a.shape, s);
  const sb = broadcastStrides(b.shape, s);
  // Same-sized operands (no broadcast) in whole vec4s take the flat entry.
  const flat = a.size === out.size && b.size === out.size && out.size % 4 === 0;
  a.engine.dispatch({
    label: op,
    code,
    entry: flat ? 'binary_flat' : 'binary',
    constants: { OP: BINARY[op], WG },
    uniforms: { n: out.size, s1: s[1], s2: s[2], s3: s[3], a0: sa[0], a1: sa[1], a2: sa[2], a3: sa[3], b0: sb[0], b1: sb[1], b2: sb[2], b3: sb[3] },
    bindings: [a.binding(), b.binding(), out.binding()],
    workgroups: grid(a.engine, Math.ceil(out.size / (flat ? 4 * WG : WG))),
  });
  return out;
}

/** y = f(x); `alpha`/`beta` parameterise affine (alpha*x+beta) and leakyRelu (alpha). */
export function unary(op: UnaryOp, x: Tensor, alpha = 1, beta = 0): Tensor {
  const out = Tensor.empty(x.engine, x.shape);
  if (out.size === 0) return out;
  x.engine.dispatch({
    label: op,
    code,
    entry: 'unary',
    constants: { OP: UNARY[op], WG },
    uniforms: { n: out.size, alpha, beta },
    bindings: [x.binding(), out.binding()],
    workgroups: grid(x.engine, Math.ceil(out.size / WG)),
  });
  return out;
}

/** dx = dy * f'(v) for relu/abs/leakyRelu (v = x) and sigmoid (v = y). */
export function unaryGrad(op: 'relu' | 'sigmoid' | 'abs' | 'leakyRelu', v: Tensor, dy: Tensor, alpha = 0): Tensor {
  const out = Tensor.empty(v.engine, v.shape);
  if (out.size === 0) return out;
  v.engine.dispatch({
    label: `${op}.grad`,
    code,
    entry: 'unary_grad',
    constants: { OP: UNARY[op], WG },
    uniforms: { n: out.size, alpha, beta: 0 },
    bindings: [v.binding(), dy.binding(), out.binding()],
    workgroups: grid(v.engine, Math.ceil(out.size / WG)),
  });
  return out;
}

export function fill(x: Tensor, value: number): void {
  if (x.size === 0) return;
  x.engine.dispatch({
    label: 'fill',
    code,
    entry: 'fill',
    constants: { WG },
    uniforms: { n: x.size, alpha: 0, beta: value },
    bindings: [x.binding()],
    workgroups: grid(x.engine, Math.ceil(x.size / WG)),
  });
}
