// Concatenation and splitting along an axis as strided block copies (no autograd).
import code from '../../shaders/copy.wgsl';
import { Tensor, shapeStr, type Shape } from '../core/tensor.js';
import { grid } from './util.js';

const WG = 256;

function blockCopy(src: Tensor, dst: Tensor, outer: number, len: number, sOff: number, sStride: number, dOff: number, dStride: number): void {
  if (outer * len === 0) return;
  src.engine.dispatch({
    label: 'copy',
    code,
    constants: { WG },
    uniforms: { outer, len, s_off: sOff, s_stride: sStride, d_off: dOff, d_stride: dStride },
    bindings: [src.binding(), dst.binding()],
    workgroups: grid(src.engine, Math.ceil((outer * len) / WG)),
  });
}

function splitAround(shape: Shape, axis: number): [number, number] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, inner];
}

export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new Error('concat: no tensors');
  const first = tensors[0];
  const rank = first.shape.length;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) throw new Error(`concat: axis out of range for ${shapeStr(first.shape)}`);
  for (const t of tensors) {
    const same = t.shape.length === rank && t.shape.every((d, i) => i === axis || d === first.shape[i]);
    if (!same) throw new Error(`concat: shapes ${shapeStr(first.shape)} and ${shapeStr(t.shape)} differ outside axis ${axis}`);
  }
  const total = tensors.reduce((a, t) => a + t.shape[axis], 0);
  const outShape = first.shape.map((d, i) => (i === axis ? total : d));
  const out = Tensor.empty(first.engine, outShape);
  const [outer, inner] = splitAround(outShape, axis);
  let off = 0;
  for (const t of tensors) {
    const len = t.shape[axis] * inner;
    blockCopy(t, out, outer, len, 0, len, off * inner, total * inner);
    off += t.shape[axis];
  }
  return out;
}

export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const rank = x.shape.length;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) throw new Error(`split: axis out of range for ${shapeStr(x.shape)}`);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== x.shape[axis]) throw new Error(`split: sizes [${sizes.join(',')}] do not add up to ${x.shape[axis]} (axis ${axis} of ${shapeStr(x.shape)})`);
  const [outer, inner] = splitAround(x.shape, axis);
  let off = 0;
  return sizes.map((s) => {
    const t = Tensor.empty(x.engine, x.shape.map((d, i) => (i === axis ? s : d)));
    blockCopy(x, t, outer, s * inner, off * inner, total * inner, 0, s * inner);
    off += s;
    return t;
  });
}
