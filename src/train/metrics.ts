// Image quality metrics (platform-neutral, float64 arithmetic) and the 3x3 median-filter baseline.
//
// Conventions (shared/contracts.md, "Metrics"):
//  - 'rgb' (default, reported as "rgb-float"): float images clamped to [0,1], data range 1. PSNR
//    from the MSE over all three channels; SSIM per channel, then the mean of the channels.
//  - 'y' ("y-float"): the same on ITU-R BT.601 luma Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255
//    of the clamped RGB (so Y lies in [16/255, 235/255]), data range 1.
//  - 'authors' ("authors"): what the authors' pixel_metric.py measures: both images clamped and
//    quantised by truncation, uint8(255 x) with the product taken in float32 as PyTorch/numpy do,
//    then skimage's compare_psnr / compare_ssim defaults on uint8: data range 255, SSIM with a 7x7
//    uniform window and sample covariance (N/(N-1), N = 49), mean over channels.
// SSIM is scikit-image's structural_similarity: K1 0.01, K2 0.03; the float conventions use
// gaussian_weights=True, sigma=1.5 (truncate 3.5: an 11x11 window) and population covariance;
// the local statistics are computed only where the whole window lies inside the image, which is
// exactly the area skimage averages (it crops (win_size-1)//2 pixels at each border), so no
// boundary mode is involved.
import type { Image } from '../io/image.js';

/** How PSNR/SSIM read images: RGB floats, luma, or the authors' 8-bit RGB (see the file header). */
export type Convention = 'rgb' | 'y' | 'authors';

export const CONVENTIONS: readonly Convention[] = ['rgb', 'y', 'authors'];

/** The label `eval --json` reports for each convention. */
export const CONVENTION_LABEL: Readonly<Record<Convention, string>> = {
  rgb: 'rgb-float',
  y: 'y-float',
  authors: 'authors',
};

/** One channel plane in float64. */
interface Plane {
  width: number;
  height: number;
  data: Float64Array;
}

function checkPair(a: Image, b: Image): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(`metrics: image sizes differ (${a.width}x${a.height} vs ${b.width}x${b.height})`);
  }
  const n = 3 * a.width * a.height;
  if (a.data.length !== n || b.data.length !== n) throw new Error(`metrics: images must hold 3*${a.height}*${a.width} values`);
}

function clamp01(v: number): number {
  // NaN becomes 0, like toByte, so a broken output scores badly instead of poisoning the mean.
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

/** floor(255 * clamp(x)) with the multiply rounded to float32, as uint8(255 * x) on float32 tensors. */
function truncate8(v: number): number {
  return Math.floor(Math.fround(255 * Math.fround(clamp01(v))));
}

/** The planes a convention measures, and its data range. */
function planes(img: Image, convention: Convention): { planes: Plane[]; range: number } {
  const { width, height, data } = img;
  const n = width * height;
  if (convention === 'y') {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = (16 + 65.481 * clamp01(data[i]) + 128.553 * clamp01(data[n + i]) + 24.966 * clamp01(data[2 * n + i])) / 255;
    }
    return { planes: [{ width, height, data: y }], range: 1 };
  }
  const f = convention === 'authors' ? truncate8 : clamp01;
  const out: Plane[] = [];
  for (let c = 0; c < 3; c++) {
    const p = new Float64Array(n);
    for (let i = 0; i < n; i++) p[i] = f(data[c * n + i]);
    out.push({ width, height, data: p });
  }
  return { planes: out, range: convention === 'authors' ? 255 : 1 };
}

/** PSNR in dB (Infinity for identical images under the convention). */
export function psnr(a: Image, b: Image, convention: Convention = 'rgb'): number {
  checkPair(a, b);
  const pa = planes(a, convention);
  const pb = planes(b, convention);
  let sum = 0;
  let count = 0;
  for (let c = 0; c < pa.planes.length; c++) {
    const x = pa.planes[c].data;
    const y = pb.planes[c].data;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      sum += d * d;
    }
    count += x.length;
  }
  const mse = sum / count;
  return mse === 0 ? Infinity : 10 * Math.log10((pa.range * pa.range) / mse);
}

interface Window {
  /** Separable 1-D weights (sum 1), length 2r+1. */
  w: Float64Array;
  r: number;
  /** skimage's cov_norm: N/(N-1) for sample covariance, else 1. */
  covNorm: number;
}

function gaussianWindow(sigma: number, truncate: number): Window {
  // scipy.ndimage.gaussian_filter's kernel: radius int(truncate*sigma + 0.5), exp(-x^2 / 2 sigma^2), normalised.
  const r = Math.floor(truncate * sigma + 0.5);
  const w = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += w[i + r] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < w.length; i++) w[i] /= s;
  return { w, r, covNorm: 1 };
}

function uniformWindow(size: number, sampleCovariance: boolean): Window {
  const w = new Float64Array(size).fill(1 / size);
  const n = size * size;
  return { w, r: (size - 1) / 2, covNorm: sampleCovariance ? n / (n - 1) : 1 };
}

/**
 * Separable filtering evaluated only where the whole window lies inside the image: the result is
 * (H-2r) x (W-2r), the area skimage keeps after crop(S, (win_size-1)//2).
 */
function filterValid(src: Float64Array, width: number, height: number, win: Window): Float64Array {
  const { w, r } = win;
  const k = w.length;
  const ow = width - 2 * r;
  const oh = height - 2 * r;
  const tmp = new Float64Array(height * ow);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += w[i] * src[row + x + i];
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += w[i] * tmp[(y + i) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

function ssimPlane(x: Plane, y: Plane, win: Window, range: number): number {
  const { width, height } = x;
  const size = 2 * win.r + 1;
  if (width < size || height < size) {
    throw new Error(`metrics: SSIM needs images of at least ${size}x${size} pixels, got ${width}x${height}`);
  }
  const n = width * height;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = x.data[i];
    const b = y.data[i];
    xx[i] = a * a;
    yy[i] = b * b;
    xy[i] = a * b;
  }
  const ux = filterValid(x.data, width, height, win);
  const uy = filterValid(y.data, width, height, win);
  const uxx = filterValid(xx, width, height, win);
  const uyy = filterValid(yy, width, height, win);
  const uxy = filterValid(xy, width, height, win);
  const c1 = (0.01 * range) ** 2;
  const c2 = (0.03 * range) ** 2;
  const cn = win.covNorm;
  let sum = 0;
  for (let i = 0; i < ux.length; i++) {
    const mx = ux[i];
    const my = uy[i];
    const vx = cn * (uxx[i] - mx * mx);
    const vy = cn * (uyy[i] - my * my);
    const vxy = cn * (uxy[i] - mx * my);
    sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  return sum / ux.length;
}

const ssimWindow = (convention: Convention): Window => (convention === 'authors' ? uniformWindow(7, true) : gaussianWindow(1.5, 3.5));

/** The smallest width and height SSIM accepts under a convention (its window's side). */
export function ssimMinSide(convention: Convention = 'rgb'): number {
  return 2 * ssimWindow(convention).r + 1;
}

/** Mean SSIM (1 for identical images); RGB conventions average the three channels. */
export function ssim(a: Image, b: Image, convention: Convention = 'rgb'): number {
  checkPair(a, b);
  const pa = planes(a, convention);
  const pb = planes(b, convention);
  const win = ssimWindow(convention);
  let s = 0;
  for (let c = 0; c < pa.planes.length; c++) s += ssimPlane(pa.planes[c], pb.planes[c], win, pa.range);
  return s / pa.planes.length;
}

/** Median of nine values: Devillard's 19-exchange sorting network (opt_med9). */
function median9(v: Float64Array): number {
  let p0 = v[0], p1 = v[1], p2 = v[2], p3 = v[3], p4 = v[4], p5 = v[5], p6 = v[6], p7 = v[7], p8 = v[8];
  let t: number;
  if (p1 > p2) { t = p1; p1 = p2; p2 = t; }
  if (p4 > p5) { t = p4; p4 = p5; p5 = t; }
  if (p7 > p8) { t = p7; p7 = p8; p8 = t; }
  if (p0 > p1) { t = p0; p0 = p1; p1 = t; }
  if (p3 > p4) { t = p3; p3 = p4; p4 = t; }
  if (p6 > p7) { t = p6; p6 = p7; p7 = t; }
  if (p1 > p2) { t = p1; p1 = p2; p2 = t; }
  if (p4 > p5) { t = p4; p4 = p5; p5 = t; }
  if (p7 > p8) { t = p7; p7 = p8; p8 = t; }
  if (p0 > p3) { t = p0; p0 = p3; p3 = t; }
  if (p5 > p8) { t = p5; p5 = p8; p8 = t; }
  if (p4 > p7) { t = p4; p4 = p7; p7 = t; }
  if (p3 > p6) { t = p3; p3 = p6; p6 = t; }
  if (p1 > p4) { t = p1; p1 = p4; p4 = t; }
  if (p2 > p5) { t = p2; p2 = p5; p5 = t; }
  if (p4 > p7) { t = p4; p4 = p7; p7 = t; }
  if (p4 > p2) { t = p4; p4 = p2; p2 = t; }
  if (p6 > p4) { t = p6; p6 = p4; p4 = t; }
  if (p4 > p2) { p4 = p2; }
  return p4;
}

/**
 * 3x3 median filter per channel, the no-learning baseline. Borders replicate the edge pixel
 * (the window is clamped to the image), so a constant image stays constant.
 */
export function medianFilter3x3(img: Image): Image {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(data.length);
  const v = new Float64Array(9);
  for (let c = 0; c < 3; c++) {
    const base = c * w * h;
    for (let y = 0; y < h; y++) {
      const rows = [Math.max(0, y - 1), y, Math.min(h - 1, y + 1)];
      for (let x = 0; x < w; x++) {
        const xl = x > 0 ? x - 1 : 0;
        const xr = x < w - 1 ? x + 1 : w - 1;
        for (let k = 0; k < 3; k++) {
          const r = base + rows[k] * w;
          v[3 * k] = data[r + xl];
          v[3 * k + 1] = data[r + x];
          v[3 * k + 2] = data[r + xr];
        }
        out[base + y * w + x] = median9(v);
      }
    }
  }
  return { width: w, height: h, data: out };
}

/** Clamps every sample to [0,1] (NaN to 0), e.g. network outputs before measuring or saving. */
export function clampImage(img: Image): Image {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = clamp01(img.data[i]);
  return { ...img, data };
}
