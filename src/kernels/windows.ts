// Binding windows: run a kernel over groups of images when a batch exceeds maxStorageBufferBindingSize, each group bound as an aligned window.
import type { BufferBinding, Engine } from '../gpu/runtime.js';
import { shapeStr, type Shape, type Tensor } from '../core/tensor.js';

/** Binds elements [start, start+count) of `t` at an aligned offset; `off` is where `start` lands. */
export function windowOf(t: Tensor, start: number, count: number): { binding: BufferBinding; off: number } {
  const align = t.engine.device.limits.minStorageBufferOffsetAlignment;
  const byteStart = t.byteOffset + start * 4;
  const aligned = Math.floor(byteStart / align) * align;
  return { binding: { buffer: t.buffer, offset: aligned, size: byteStart - aligned + Math.max(1, count) * 4 }, off: (byteStart - aligned) / 4 };
}

export interface PerImage {
  name: string;
  /** The whole tensor's shape (for messages). */
  shape: Shape;
  /** Elements per image, and the byte offset of image 0 in its buffer. */
  elems: number;
  byteOffset: number;
}

export const perImage = (name: string, t: Tensor, elems: number): PerImage => ({ name, shape: t.shape, elems, byteOffset: t.byteOffset });

/**
 * Splits the batch into groups of images whose slices of every listed tensor fit one binding
 * (an aligned window, see `windowOf`). One group when everything fits as it is.
 */
export function batchGroups(e: Engine, op: string, N: number, tensors: PerImage[]): Array<[number, number]> {
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

export function checkFits(e: Engine, op: string, name: string, shape: Shape, elems: number): void {
  const limit = e.limits.maxStorageBufferBindingSize;
  if (elems * 4 > limit) throw new Error(`${op}: ${name} ${shapeStr(shape)} takes ${elems * 4} bytes, more than maxStorageBufferBindingSize (${limit})`);
}
