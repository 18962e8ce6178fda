// Shared helpers for kernel modules: per-axis sizes, dispatch grids and broadcasting shapes.
import type { Engine } from '../gpu/runtime.js';
import { type Shape, shapeStr } from '../core/tensor.js';

/** A size per spatial axis: one number for both, or [height, width] (kernel, stride, padding, dilation). */
export type PerAxis = number | readonly [number, number];

/** Folds a 1-D workgroup count into x*y <= maxComputeWorkgroupsPerDimension^2 (kernels use num_workgroups). */
export function grid(engine: Engine, workgroups: number): [number, number] {
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  return [Math.ceil(workgroups / y), y];
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` read as a tensor of rank `rank` padded on the left, 0 on broadcast axes of `outShape`. */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const rank = outShape.length;
  const padded = [...Array(rank - shape.length).fill(1), ...shape];
  const strides = new Array(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = padded[i] === 1 && outShape[i] !== 1 ? 0 : s;
    s *= padded[i];
  }
  return strides;
}

/** Pads a shape on the left to rank 4 (kernels index rank-4 tensors). */
export function pad4(shape: Shape, what: string): number[] {
  if (shape.length > 4) throw new Error(`${what}: tensors of rank ${shape.length} are not supported (max 4)`);
  return [...Array(4 - shape.length).fill(1), ...shape];
}
