// A frequency-domain contrastive term for adaptation (issue 14 item 3b): the dual contrastive
// ratio in the amplitude and phase of patch-wise 2-D DFTs, built from matmuls with fixed cos/sin
// matrices so that autograd gives the backward. Needs no download and no network copy.
//
// Design (this project's, not the paper's):
// - Transform: every colour plane is cut into non-overlapping P x P patches (P = 16, or the crop
//   side when smaller; a remainder at the right/bottom is dropped), each multiplied by a periodic
//   Hann window (so a patch's edges do not show as false horizontal/vertical frequencies), and
//   transformed by the 2-D DFT, scaled by 1/P. Separable: x [rows, W] @ [cos|sin along W], then a
//   block-diagonal [cos|sin along H] from the left, one block per plane. No transpose op needed.
// - Amplitude statistic S(x) [N, P, P]: log |X(u,v)| (0.5 log(re^2 + im^2 + 1e-4), no sqrt)
//   averaged over channels and patches: the image's mean log power spectrum. Averaging over
//   positions makes it comparable between different images (the positives are other scenes) while
//   keeping orientation: oriented streaks put a ridge through the origin perpendicular to them,
//   strongest at high frequencies, where natural images have little energy.
// - Phase u(x) = (re, im) / |X| per patch, at the same positions in output and photo.
// - The ratio, per batch (gradients reach the output B^_r only):
//       bg = ( mean_HF |S(B^_r) - mean_b S(B_s)|  +  mean_LF |u(B^_r) - u(O_r)| )
//            / ( mean_neg mean_HF |S(B^_r) - S(neg)| + eps )
//   HF = frequencies with radius >= P/4 (in cycles per patch; rain's band), LF = 0 < radius < P/4.
//   Positives: the bundled clean images' mean high-frequency spectrum (what clean high frequencies
//   look like), and the photo's own low-frequency phase (where the scene's structure lives and
//   which rain barely moves; phase rather than re/im so dehazing may still change contrast, and
//   normalised re/im rather than an angle, so no atan2 branch cut). Negatives: the rainy photo O_r
//   and, by default, re-rained outputs B^_r + R_s (detached; R_s = O_s - B_s, the synthetic rain
//   layers: sample augmentation, as the VGG terms do), both in the high band.
//   The low band's amplitude is in no term: coarse content and tone are left to the supervised loss
//   and to the network's output itself.
// - total = weight * bg; rain = 0 (only a background branch, as PatchNCE). Weight 3e-3 by default:
//   at weight 1 the term's gradient norm at the output is ~100 on a 48 px batch (the VGG terms at
//   0.1: ~0.8; PatchNCE at 1e-3: ~0.5), so the sweep was 1e-3, 3e-3, 1e-2 (experiments/adapt-fft.md).
// - The Hann window weights a patch's border rows and columns by ~0, so those pixels get almost no
//   gradient from this term in a given step; the real batch's crops move every step, so the grid does too.
import { noGrad } from '../graph/autograd.js';
import { abs, add, addScalar, div, exp, log, matmul, mean, mul, mulScalar, reshape, split, sub, sum, zeros } from '../graph/ops.js';
import { Tensor, shapeStr, tidy } from '../core/tensor.js';
import type { Engine } from '../gpu/runtime.js';
import type { DualContrastiveInputs, DualContrastiveLoss } from './contrastive.js';

/** The DFT patch side used when the crop allows it. */
export const FFT_PATCH = 16;
/** Inside the log of the power: amplitudes below ~0.01 count as 0.01 (bounds d log|X| / dX by 50). */
const POWER_EPS = 1e-4;

export type FftNegative = 'rainy' | 'rerain';

export interface FftSpaceOptions {
  /** DFT patch side (default min(16, H, W)). */
  patch?: number;
  /** Radius (cycles per patch) from which a frequency counts as high (default patch / 4). */
  cutoff?: number;
  /** Negatives in the high band: the photo O_r, re-rained outputs B^_r + R_s (default both). */
  negatives?: readonly FftNegative[];
  /** Weight of the low-band phase positive in the numerator (default 1; 0 leaves it out). */
  phaseWeight?: number;
  /** Added to the negative distance (default 1e-3; log-amplitude distances are O(0.1-1)). */
  eps?: number;
  /** Weight of the term in `total` (default: adaptation's measured choice, AdaptOptions.fftWeight). */
  weight?: number;
}

/** Periodic Hann window of length p (all ones for 'none'). */
function taper(p: number, window: 'hann' | 'none'): Float64Array {
  return Float64Array.from({ length: p }, (_, n) => (window === 'hann' ? 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / p) : 1));
}

const CONSTANTS = Symbol('fft-space constant matrices');

/** A constant matrix or mask, made once per engine (the engine owns it, as its other per-engine state). */
function cached(engine: Engine, key: string, make: () => { data: Float32Array; shape: number[] }): Tensor {
  const m = engine.local(CONSTANTS, () => new Map<string, Tensor>());
  let t = m.get(key);
  if (!t || t.disposed) {
    const { data, shape } = make();
    t = Tensor.fromData(engine, data, shape).keep();
    m.set(key, t);
  }
  return t;
}

/**
 * The right factor along W: [W, 2 * nw * P], columns (j, v) of cos then (j, v) of sin:
 * M[w, j*P+v] = win(w - jP) * cos(2 pi v (w - jP) / P) / sqrt(P) for w in patch j (sin likewise).
 */
function rightFactor(engine: Engine, w: number, p: number, window: 'hann' | 'none'): Tensor {
  return cached(engine, `R${w}/${p}/${window}`, () => {
    const nw = Math.floor(w / p);
    const k = nw * p;
    const win = taper(p, window);
    const d = new Float32Array(w * 2 * k);
    for (let j = 0; j < nw; j++) {
      for (let n = 0; n < p; n++) {
        for (let v = 0; v < p; v++) {
          const a = (2 * Math.PI * ((v * n) % p)) / p;
          const row = (j * p + n) * 2 * k;
          d[row + j * p + v] = (win[n]! * Math.cos(a)) / Math.sqrt(p);
          d[row + k + j * p + v] = (win[n]! * Math.sin(a)) / Math.sqrt(p);
        }
      }
    }
    return { data: d, shape: [w, 2 * k] };
  });
}

/** The left factor along H for `planes` planes: block-diagonal [planes * nh * P, planes * H] of cos or sin. */
function leftFactor(engine: Engine, planes: number, h: number, p: number, window: 'hann' | 'none', kind: 'cos' | 'sin'): Tensor {
  return cached(engine, `L${planes}/${h}/${p}/${window}/${kind}`, () => {
    const nh = Math.floor(h / p);
    const rows = planes * nh * p;
    const cols = planes * h;
    const win = taper(p, window);
    const d = new Float32Array(rows * cols);
    for (let c = 0; c < planes; c++) {
      for (let i = 0; i < nh; i++) {
        for (let u = 0; u < p; u++) {
          for (let n = 0; n < p; n++) {
            const a = (2 * Math.PI * ((u * n) % p)) / p;
            d[(c * nh * p + i * p + u) * cols + c * h + i * p + n] = (win[n]! * (kind === 'cos' ? Math.cos(a) : Math.sin(a))) / Math.sqrt(p);
          }
        }
      }
    }
    return { data: d, shape: [rows, cols] };
  });
}

/**
 * Patch-wise 2-D DFT of x [N,C,H,W]: re and im of shape [N, C*nh, P, nw*P] (row (c, i, u), column
 * (j, v): patch (i, j), frequency (u, v)), nh = floor(H/P), nw = floor(W/P), with the window
 * applied and a 1/P scale: X(u,v) = (1/P) sum_{m,n} win(m) win(n) x(iP+m, jP+n) e^{-2 pi i (um + vn)/P}.
 * Differentiable (matmuls with constant matrices).
 */
export function patchDft(x: Tensor, p: number, window: 'hann' | 'none' = 'hann'): { re: Tensor; im: Tensor } {
  if (x.shape.length !== 4) throw new Error(`patchDft: x must be [N,C,H,W], got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (!Number.isInteger(p) || p < 2 || p > h || p > w) throw new Error(`patchDft: patch ${p} does not fit ${h}x${w} planes (2 <= patch <= min(H, W))`);
  const nh = Math.floor(h / p);
  const k = Math.floor(w / p) * p;
  return tidy(() => {
    const e = x.engine;
    // Along W: [N*C*H, W] @ [W, 2k] -> cos part | sin part.
    const y = matmul(reshape(x, [n * c * h, w]), rightFactor(e, w, p, window));
    const [yc, ys] = split(y, [k, k], 1) as [Tensor, Tensor];
    const lc = leftFactor(e, n * c, h, p, window, 'cos');
    const ls = leftFactor(e, n * c, h, p, window, 'sin');
    // e^{-i(a+b)} = (cos a cos b - sin a sin b) - i (sin a cos b + cos a sin b)
    const re = sub(matmul(lc, yc), matmul(ls, ys));
    const im = mulScalar(add(matmul(ls, yc), matmul(lc, ys)), -1);
    const shape = [n, c * nh, p, k];
    return { re: reshape(re, shape), im: reshape(im, shape) };
  });
}

/** 0.5 * log(re^2 + im^2 + eps) = log |X| with a floor. */
function logAmplitude(re: Tensor, im: Tensor): Tensor {
  return mulScalar(log(addScalar(add(mul(re, re), mul(im, im)), POWER_EPS)), 0.5);
}

/** Mean over channels and patches of log|X|: [N, P, P] from the [N, C*nh, P, nw*P] layout. */
export function amplitudeStatistic(re: Tensor, im: Tensor, p: number): Tensor {
  const [n, cn, , k] = re.shape as [number, number, number, number];
  const nw = k / p;
  return tidy(() => {
    const la = reshape(logAmplitude(re, im), [n, cn * p, nw, p]);
    const overJ = reshape(sum(la, [2]), [n, cn, p, p]);
    return mulScalar(sum(overJ, [1]), 1 / (cn * nw));
  });
}

/** Frequency radius in cycles per patch of (u, v) (aliased: u and P - u are the same frequency). */
function radius(u: number, v: number, p: number): number {
  const fu = Math.min(u, p - u);
  const fv = Math.min(v, p - v);
  return Math.hypot(fu, fv);
}

/** The [P, P] high-band mask (radius >= cutoff), scaled to mean 1 over its ones. */
function highMask(engine: Engine, p: number, cutoff: number): Tensor {
  return cached(engine, `H${p}/${cutoff}`, () => {
    const d = new Float32Array(p * p);
    for (let u = 0; u < p; u++) for (let v = 0; v < p; v++) d[u * p + v] = radius(u, v, p) >= cutoff ? 1 : 0;
    const count = d.reduce((a, b) => a + b, 0);
    if (count === 0) throw new Error(`fft space: no frequency of a ${p}x${p} patch reaches the cutoff ${cutoff}`);
    return { data: d.map((x) => x / count), shape: [p, p] };
  });
}

/** The low-band mask [P, 1, P] (0 < radius < cutoff) over (u, ·, v), scaled to sum 1. */
function lowMask(engine: Engine, p: number, cutoff: number): Tensor {
  return cached(engine, `Lo${p}/${cutoff}`, () => {
    const d = new Float32Array(p * p);
    for (let u = 0; u < p; u++) for (let v = 0; v < p; v++) d[u * p + v] = radius(u, v, p) > 0 && radius(u, v, p) < cutoff ? 1 : 0;
    const count = d.reduce((a, b) => a + b, 0);
    return { data: count ? d.map((x) => x / count) : d, shape: [p, 1, p] };
  });
}

/** sum_k mask_k |a_k - b_k|, mean over the batch (a: [N,P,P]; b: [N,P,P] or [1,P,P]). */
function bandL1(a: Tensor, b: Tensor, mask: Tensor): Tensor {
  return mulScalar(sum(mul(abs(sub(a, b)), mask)), 1 / a.shape[0]!);
}

/** The unit phasor (re, im) / |X| of the patch coefficients. */
function phasor(re: Tensor, im: Tensor): { cr: Tensor; ci: Tensor } {
  const inv = exp(mulScalar(log(addScalar(add(mul(re, re), mul(im, im)), POWER_EPS)), -0.5));
  return { cr: mul(re, inv), ci: mul(im, inv) };
}

/**
 * The ratio of the header from the DFTs: `anchor` with gradient; `positives` the clean images
 * (detached), `photo` the rainy photo (detached), `negatives` the high-band negatives (detached;
 * the photo among them when wanted). All [N,C,H,W] of one size. Returns a scalar (shape []).
 */
export function fftContrastiveRatio(anchor: Tensor, positives: Tensor, photo: Tensor, negatives: readonly Tensor[], opts: FftSpaceOptions = {}): Tensor {
  const [, , h, w] = anchor.shape as [number, number, number, number];
  const p = opts.patch ?? Math.min(FFT_PATCH, h, w);
  const cutoff = opts.cutoff ?? p / 4;
  const phaseWeight = opts.phaseWeight ?? 1;
  const eps = opts.eps ?? 1e-3;
  if (negatives.length === 0) throw new Error('fftContrastiveRatio: needs at least one negative');
  for (const [name, t] of [['positives', positives], ['photo', photo], ...negatives.map((t, i) => [`negatives[${i}]`, t] as const)] as const) {
    if (t.shape.length !== 4 || t.shape[1] !== anchor.shape[1] || t.shape[2] !== h || t.shape[3] !== w) throw new Error(`fftContrastiveRatio: ${name} ${shapeStr(t.shape)} does not match the anchor ${shapeStr(anchor.shape)}`);
  }
  if (photo.shape[0] !== anchor.shape[0]) throw new Error(`fftContrastiveRatio: the photo batch ${shapeStr(photo.shape)} must pair with the anchor ${shapeStr(anchor.shape)}`);
  return tidy(() => {
    const e = anchor.engine;
    const hi = highMask(e, p, cutoff);
    const a = patchDft(anchor, p);
    const sa = amplitudeStatistic(a.re, a.im, p);
    const det = noGrad(() => {
      const pos = patchDft(positives, p);
      const sPos = mean(amplitudeStatistic(pos.re, pos.im, p), [0], true);
      const sNeg = negatives.map((t) => {
        const d = patchDft(t, p);
        return amplitudeStatistic(d.re, d.im, p);
      });
      let ph: { cr: Tensor; ci: Tensor } | null = null;
      if (phaseWeight > 0) {
        const d = patchDft(photo, p);
        ph = phasor(d.re, d.im);
      }
      return { sPos, sNeg, ph };
    });
    let num = bandL1(sa, det.sPos, hi);
    if (det.ph) {
      const lo = lowMask(e, p, cutoff);
      const pa = phasor(a.re, a.im);
      const [n, cn, , k] = a.re.shape as [number, number, number, number];
      const view = (t: Tensor) => reshape(t, [n * cn, p, k / p, p]);
      const d = add(abs(sub(view(pa.cr), view(det.ph.cr))), abs(sub(view(pa.ci), view(det.ph.ci))));
      // Mean over planes-patches (n * cn * nw of them) of the low-band mean.
      const phase = mulScalar(sum(mul(d, lo)), 1 / (n * cn * (k / p)));
      num = add(num, mulScalar(phase, phaseWeight));
    }
    let den: Tensor | null = null;
    for (const s of det.sNeg) {
      const d = bandL1(sa, s, hi);
      den = den ? add(den, d) : d;
    }
    return reshape(div(num, addScalar(mulScalar(den!, 1 / det.sNeg.length), eps)), []);
  });
}

/**
 * The frequency-space term in the shape the Trainer expects: bg = fftContrastiveRatio(B^_r;
 * positives B_s and O_r's phase; negatives O_r and/or B^_r + R_s), rain = 0, total = weight * bg.
 */
export function fftContrastiveLoss(inputs: DualContrastiveInputs, opts: FftSpaceOptions = {}): DualContrastiveLoss {
  const { realRainy, realFinal, synthRainy, synthClean } = inputs;
  if (realRainy.shape.join() !== realFinal.shape.join()) throw new Error(`fftContrastiveLoss: realRainy [${realRainy.shape}] and realFinal [${realFinal.shape}] differ`);
  const weight = opts.weight ?? 3e-3;
  const which = opts.negatives ?? ['rainy', 'rerain'];
  for (const k of which) if (k !== 'rainy' && k !== 'rerain') throw new Error(`fftContrastiveLoss: unknown negative '${k}' (one of rainy, rerain)`);
  return tidy(() => {
    const negatives = noGrad(() =>
      which.map((k) => {
        if (k === 'rainy') return realRainy;
        // B^_r + R_s: the output re-rained with the synthetic batch's rain (batch sizes must match).
        if (synthRainy.shape.join() !== realFinal.shape.join()) throw new Error(`fftContrastiveLoss: the 'rerain' negative needs the synthetic batch ${shapeStr(synthRainy.shape)} to match the real one ${shapeStr(realFinal.shape)}`);
        return add(realFinal, sub(synthRainy, synthClean));
      }),
    );
    const bg = fftContrastiveRatio(realFinal, synthClean, realRainy, negatives, opts);
    return { total: mulScalar(bg, weight), bg, rain: zeros(realRainy.engine, []) };
  });
}
