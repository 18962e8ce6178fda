// Float64 tensor container, seeded randomness and comparison helpers shared by the CPU reference and GPU tests.

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

// Project contract tolerances: elementwise kernel checks use FWD/BWD, whole-network checks use relative L2.
export const FWD: Tolerance = { rtol: 1e-4, atol: 1e-5 };
export const BWD: Tolerance = { rtol: 1e-3, atol: 1e-5 };
export const NET_OUT_RELL2 = 1e-4;
export const NET_GRAD_RELL2 = 2e-3;

export function numel(shapeOrTensor: readonly number[] | RefTensor): number {
  const shape = 'data' in shapeOrTensor ? shapeOrTensor.shape : shapeOrTensor;
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function refTensor(shape: readonly number[], data?: ArrayLike<number>): RefTensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`refTensor: bad shape [${shape.join(',')}]`);
  }
  const n = numel(shape);
  if (data === undefined) return { shape: [...shape], data: new Float64Array(n) };
  if (data.length !== n) {
    throw new Error(`refTensor: shape [${shape.join(',')}] needs ${n} values, got ${data.length}`);
  }
  // Always copy so callers can keep mutating their source buffer (e.g. a GPU readback) safely.
  return { shape: [...shape], data: Float64Array.from(data) };
}

export function cloneTensor(t: RefTensor): RefTensor {
  return { shape: [...t.shape], data: t.data.slice() };
}

/** Small, fast, well-distributed 32-bit PRNG; deterministic across platforms so golden values are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample via Box-Muller; 1 - u keeps the log argument away from zero. */
export function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function randn(shape: readonly number[], rng: () => number): RefTensor {
  const t = refTensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = gaussian(rng);
  return t;
}

export function uniform(shape: readonly number[], lo: number, hi: number, rng: () => number): RefTensor {
  const t = refTensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = lo + (hi - lo) * rng();
  return t;
}

export interface AllcloseResult {
  ok: boolean;
  /** max over elements of |got - ref| - (atol + rtol * |ref|); <= 0 means every element passed. */
  worst: number;
  index: number;
  got: number;
  ref: number;
  message: string;
}

export function allclose(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  rtol: number = FWD.rtol,
  atol: number = FWD.atol,
): AllcloseResult {
  if (got.length !== ref.length) {
    return {
      ok: false,
      worst: Infinity,
      index: -1,
      got: NaN,
      ref: NaN,
      message: `length mismatch: got ${got.length} values, ref has ${ref.length}`,
    };
  }
  let worst = -Infinity;
  let index = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const r = ref[i];
    let excess = Math.abs(g - r) - (atol + rtol * Math.abs(r));
    // NaN compares false against everything, so it must be forced to count as the worst possible miss.
    if (Number.isNaN(excess)) excess = Infinity;
    if (excess > worst) {
      worst = excess;
      index = i;
    }
  }
  if (index < 0) {
    return { ok: true, worst: 0, index: -1, got: NaN, ref: NaN, message: 'allclose: empty arrays' };
  }
  const ok = worst <= 0;
  const g = got[index];
  const r = ref[index];
  const message =
    `${ok ? 'ok' : 'MISMATCH'} worst at [${index}] of ${got.length}: got ${g}, ref ${r}, ` +
    `|diff| ${Math.abs(g - r).toExponential(3)} vs allowed ${(atol + rtol * Math.abs(r)).toExponential(3)} ` +
    `(rtol ${rtol}, atol ${atol})`;
  return { ok, worst, index, got: g, ref: r, message };
}

export function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`relL2: length mismatch ${got.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

/** Normal values pushed at least `margin` away from 0, so finite differences never straddle a kink (relu, abs, PReLU). */
export function randnAwayFromZero(shape: readonly number[], rng: () => number, margin = 0.1): RefTensor {
  const r = randn(shape, rng);
  r.data.forEach((v, i) => (r.data[i] = v + Math.sign(v || 1) * margin));
  return r;
}
