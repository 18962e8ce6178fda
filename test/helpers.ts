// Shared test helpers: one engine per test process, tensors from reference data, tolerance asserts.
import * as assert from 'uvu/assert';
import { useDawn } from '../src/gpu/node.js';
import { Engine, type EngineOptions } from '../src/gpu/runtime.js';
import { Tensor } from '../src/core/tensor.js';
import { allclose, relL2, type RefTensor, type Tolerance } from './ref/tensor.js';

useDawn();
let shared: Promise<Engine> | undefined;

/**
 * The process-wide test engine. A missing adapter fails the test, never skips it. Tuning is off
 * (default tiles, no cache file), so results and timings do not depend on earlier runs.
 */
export function engine(): Promise<Engine> {
  return (shared ??= Engine.create({ tune: false }));
}

/** A fresh engine with its own options (e.g. lowered limits); destroy it after use. */
export function engineWith(opts: EngineOptions): Promise<Engine> {
  return Engine.create({ tune: false, ...opts });
}

export function gpu(e: Engine, r: RefTensor, requiresGrad = false): Tensor {
  const t = Tensor.fromData(e, Float32Array.from(r.data), r.shape);
  t.requiresGrad = requiresGrad;
  return t;
}

export async function assertClose(got: Tensor | Float32Array, ref: ArrayLike<number>, tol: Tolerance, what: string): Promise<void> {
  const data = got instanceof Tensor ? await got.read() : got;
  const r = allclose(data, ref, tol.rtol, tol.atol);
  assert.ok(r.ok, `${what}: ${r.message}`);
}

export async function assertRelL2(got: Tensor | Float32Array, ref: ArrayLike<number>, max: number, what: string): Promise<void> {
  const data = got instanceof Tensor ? await got.read() : got;
  const e = relL2(data, ref);
  assert.ok(e <= max, `${what}: relative L2 error ${e.toExponential(3)} > ${max}`);
}
