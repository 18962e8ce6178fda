// Checks a GPU op against a float64 reference: forward values, and the autograd gradients of
// sum(out * W) against central differences of the same objective on the CPU reference.
import { backward } from '../src/graph/autograd.js';
import { mul, sum } from '../src/graph/ops.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import type { Engine } from '../src/gpu/runtime.js';
import { directionalCheck, numericGrad } from './ref/gradcheck.js';
import { BWD, FWD, allclose, mulberry32, randn, refTensor, type RefTensor, type Tolerance } from './ref/tensor.js';
import * as assert from 'uvu/assert';

export interface OpCase {
  name: string;
  inputs: RefTensor[];
  /** Inputs (by index) not differentiated (e.g. integer-like or a target). */
  noGrad?: number[];
  gpu: (xs: Tensor[]) => Tensor;
  ref: (xs: RefTensor[]) => RefTensor;
  fwdTol?: Tolerance;
  bwdTol?: Tolerance;
  /** Use a random-direction check instead of elementwise differences (large inputs). */
  directional?: boolean;
}

function objective(c: OpCase, weights: Float64Array, xs: RefTensor[]): number {
  const out = c.ref(xs).data;
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * weights[i];
  return s;
}

export async function checkOp(e: Engine, c: OpCase, seed = 1): Promise<void> {
  const rng = mulberry32(seed);
  const refOut = c.ref(c.inputs);
  const w = randn(refOut.shape, rng);
  const grads: Float32Array[] = [];
  let fwd: Float32Array = new Float32Array();
  await tidy(async () => {
    const xs = c.inputs.map((r, i) => {
      const t = Tensor.fromData(e, Float32Array.from(r.data), r.shape);
      t.requiresGrad = !(c.noGrad ?? []).includes(i);
      return t;
    });
    const out = c.gpu(xs);
    assert.equal([...out.shape], refOut.shape, `${c.name}: output shape`);
    const wt = Tensor.fromData(e, Float32Array.from(w.data), w.shape);
    const loss = sum(mul(out, wt));
    backward(loss);
    fwd = await out.read();
    for (const x of xs) {
      grads.push(x.grad ? await x.grad.read() : new Float32Array());
      x.grad?.dispose();
    }
  });
  const f = allclose(fwd, refOut.data, (c.fwdTol ?? FWD).rtol, (c.fwdTol ?? FWD).atol);
  assert.ok(f.ok, `${c.name} forward: ${f.message}`);
  c.inputs.forEach((x, i) => {
    if ((c.noGrad ?? []).includes(i)) return;
    const fn = (v: Float64Array) => objective(c, w.data, c.inputs.map((r, k) => (k === i ? refTensor(r.shape, v) : r)));
    if (c.directional) {
      const d = directionalCheck(fn, x.data, Float64Array.from(grads[i]), rng);
      assert.ok(d.relErr <= (c.bwdTol ?? BWD).rtol * 10, `${c.name} d/dinput${i}: directional relErr ${d.relErr.toExponential(3)} (analytic ${d.analytic}, numeric ${d.numeric})`);
    } else {
      const num = numericGrad(fn, x.data);
      const r = allclose(grads[i], num, (c.bwdTol ?? BWD).rtol, (c.bwdTol ?? BWD).atol);
      assert.ok(r.ok, `${c.name} d/dinput${i}: ${r.message}`);
    }
  });
}
