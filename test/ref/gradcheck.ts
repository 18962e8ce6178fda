// Finite-difference gradient checks in float64 for validating analytic backward passes.

import { allclose, BWD, gaussian, type AllcloseResult, type Tolerance } from './tensor';

export type ScalarFn = (x: Float64Array) => number;

/**
 * Central differences, one coordinate at a time. The probe works on a private copy so `f`
 * always sees a consistent buffer and the caller's `x` is never touched.
 */
export function numericGrad(f: ScalarFn, x: Float64Array, h = 1e-6): Float64Array {
  const probe = x.slice();
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const orig = probe[i];
    probe[i] = orig + h;
    const fPlus = f(probe);
    probe[i] = orig - h;
    const fMinus = f(probe);
    probe[i] = orig;
    grad[i] = (fPlus - fMinus) / (2 * h);
  }
  return grad;
}

export interface DirectionalCheckResult {
  analytic: number;
  numeric: number;
  relErr: number;
}

/**
 * Checks <grad, v> along one random unit direction: two evaluations of f regardless of size,
 * so it scales to whole-network gradients where per-coordinate differencing is too slow.
 */
export function directionalCheck(
  f: ScalarFn,
  x: Float64Array,
  analyticGrad: ArrayLike<number>,
  rng: () => number,
  h = 1e-4,
): DirectionalCheckResult {
  if (analyticGrad.length !== x.length) {
    throw new Error(`directionalCheck: gradient has ${analyticGrad.length} values for ${x.length} inputs`);
  }
  const v = new Float64Array(x.length);
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] = gaussian(rng);
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm);
  let analytic = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] /= norm;
    analytic += analyticGrad[i] * v[i];
  }
  const plus = Float64Array.from(x, (xi, i) => xi + h * v[i]);
  const minus = Float64Array.from(x, (xi, i) => xi - h * v[i]);
  const numeric = (f(plus) - f(minus)) / (2 * h);
  const scale = Math.max(Math.abs(analytic), Math.abs(numeric));
  const relErr = scale === 0 ? 0 : Math.abs(analytic - numeric) / scale;
  return { analytic, numeric, relErr };
}

/** Elementwise comparison of an analytic gradient against central differences (BWD tolerance by default). */
export function checkGrad(
  f: ScalarFn,
  x: Float64Array,
  analyticGrad: ArrayLike<number>,
  tol: Tolerance = BWD,
  h = 1e-6,
): AllcloseResult {
  return allclose(analyticGrad, numericGrad(f, x, h), tol.rtol, tol.atol);
}
