// Small-sample statistics for experiment tables: mean, sample std, and a paired t-test over seeds.

/** Arithmetic mean (NaN for no values). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Sample standard deviation (n - 1 in the denominator; 0 for a single value, which has no spread to estimate). */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative, far below what a p-value needs). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz), valid for x < (a+1)/(a+b+2). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [(m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)), (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast only on one side of the mode; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) on the other.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** Two-sided p-value of Student's t statistic with `df` degrees of freedom. */
export function studentTwoSidedP(t: number, df: number): number {
  if (!Number.isFinite(t)) return Number.isNaN(t) ? Number.NaN : 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/** The outcome of a paired t-test of b against a. */
export interface PairedTest {
  /** Mean of b - a over the pairs. */
  meanDiff: number;
  t: number;
  df: number;
  /** Two-sided p-value; NaN with fewer than 2 pairs (no spread to test against). */
  p: number;
}

/**
 * Paired t-test: are the per-seed differences b_i - a_i centred away from zero? Pairing by seed
 * removes what the seeds share (data order, crops, initialisation of the common layers), so it is
 * more sensitive than comparing two means. All differences equal and non-zero gives p = 0.
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTest {
  if (a.length !== b.length) throw new Error(`pairedTTest: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => b[i] - x);
  const n = d.length;
  const meanDiff = mean(d);
  if (n < 2) return { meanDiff, t: Number.NaN, df: 0, p: Number.NaN };
  const se = sampleStd(d) / Math.sqrt(n);
  const t = se === 0 ? (meanDiff === 0 ? 0 : Math.sign(meanDiff) * Infinity) : meanDiff / se;
  return { meanDiff, t, df: n - 1, p: studentTwoSidedP(t, n - 1) };
}
