// Matrix multiply kernels (no autograd): C = op(A) op(B), optional transposes, batched.
import code from '../../shaders/matmul.wgsl';
import { Tensor, shapeStr } from '../graph/tensor.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** 2-D [M,K]x[K,N] (or transposed operands) -> [M,N]. */
export function matmul2d(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`matmul: expected 2-D tensors, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
  const [M, Ka] = opts.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [Kb, N] = opts.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (Ka !== Kb) {
    throw new Error(`matmul: inner dimensions differ: ${shapeStr(a.shape)}${opts.transA ? 'ᵀ' : ''} x ${shapeStr(b.shape)}${opts.transB ? 'ᵀ' : ''}`);
  }
  const out = Tensor.empty(a.engine, [M, N]);
  if (out.size === 0) return out;
  a.engine.dispatch({
    label: 'matmul',
    code,
    constants: { TA: opts.transA ? 1 : 0, TB: opts.transB ? 1 : 0, ACC: 0, WG_X: 8, WG_Y: 8 },
    uniforms: [M, N, Ka, 0, 0, 0],
    bindings: [a.binding(), b.binding(), out.binding()],
    workgroups: [Math.ceil(N / 32), Math.ceil(M / 32), 1],
  });
  return out;
}
