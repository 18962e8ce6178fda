// Synthetic rain: the public Photoshop recipe the benchmark sets (Rain100/200, Rain800, DDN) were
// made with (research spec section 8), in float64, deterministic for a seed. Platform-neutral.
//
// One streak layer:
//   1. a monochrome gaussian noise layer n ~ N(0,1) (Photoshop: Add Noise, Gaussian, Monochromatic);
//   2. an optional slight gaussian blur (sigma `blur` px: thicker, softer streaks);
//   3. a motion blur of `length` px along the streak direction: an anti-aliased line kernel built by
//      rotating a vertical segment with a wgpu-matrix rotation and splatting it bilinearly;
//   4. levels: the blurred noise is divided by its exact standard deviation (sqrt of the sum of
//      the squared combined kernel), so the black point is a quantile: it is set where a fraction
//      `density` of the pixels stays above it; the white point lies `levelsWidth` standard
//      deviations higher. r = opacity * clamp((z - black) / levelsWidth, 0, 1). An optional
//      low-frequency "clouds" field (Photoshop: Render > Clouds) shifts the black point per pixel,
//      so the density varies across the image.
// Layers are combined and composited onto the background B with the layer blend mode:
//   'screen' (Photoshop's Screen, the default):  O = 1 - (1 - B)(1 - R1)(1 - R2)...
//   'add' (additive with clip):                   O = min(1, B + R1 + R2 + ...)
// With `haze`, B is first veiled by an airlight A: B' = B (1 - a) + a A (the atmospheric scattering
// model with constant transmission 1 - a); rain = O - B is then negative where B > A.
// The streak layer is grey (the same R in every channel). Lengths and blurs are in pixels of the
// image being rained on; the presets are tuned for photos of about 256 px (data/photos).
import { mat3d, vec2d } from 'wgpu-matrix';
import type { Image } from '../io/image.js';
import { Rng } from '../util/rng.js';

export type Range = readonly [number, number];

export interface StreakLayer {
  /** Fraction of pixels above the levels black point (streak density), drawn per image. */
  density: Range;
  /** White point minus black point, in standard deviations of the blurred noise (smaller: harder streaks). */
  levelsWidth: number;
  /** Motion-blur distance in px (streak length), drawn per image. */
  length: Range;
  /** Degrees added to the image's base angle for this layer, drawn per image. */
  angleOffset: Range;
  /** Gaussian blur sigma (px) applied to the noise before the motion blur; 0 = none. */
  blur: number;
  /** Peak streak intensity (the layer's opacity), drawn per image. */
  opacity: Range;
  /** Spatially varying density: amplitude (in noise standard deviations) and feature size (px) of a smooth random field added to the black point. */
  clouds?: { amount: number; scale: number };
}

/** A rain recipe's parameters (the values of `RAIN_PRESETS`): streak angle range and streak layers. */
export interface RainParams {
  /** Base streak angle in degrees from vertical, drawn per image; positive leans the top of a streak to the right ('/'). */
  angle: Range;
  layers: readonly StreakLayer[];
  blend: 'screen' | 'add';
  /** Veil B' = B (1 - a) + a A applied before the streaks; a and A drawn per image. */
  haze?: { amount: Range; airlight: Range };
}

/** A rain recipe of `synthesizeRain` (see `RAIN_PRESETS`). */
export type RainPreset = 'light' | 'heavy' | 'real';

export const RAIN_PRESET_NAMES: readonly RainPreset[] = ['light', 'heavy', 'real'];

// Mean PSNR (rgb-float convention, against the clean photo) over the 8 held-out photos in
// data/photos/heldout, rained as `synth --clean data/photos/heldout --seed 1` does (rngFor(1, name))
// and quantised to 8 bits as the PNGs it writes:
//   preset   rainy input   3x3 median filter of the input
//   light    23.06 dB      25.54 dB
//   heavy    16.28 dB      17.78 dB
//   real     16.93 dB      17.17 dB
// test/data.test.ts ('presets keep their documented PSNR') re-measures these to 0.01 dB.
/** The rain recipes of `synth` and the data pipeline: light, heavy and real (denser streaks plus haze). */
export const RAIN_PRESETS: Readonly<Record<RainPreset, RainParams>> = {
  // Rain100L/Rain200L-like: one sparse layer of thin streaks, one direction.
  light: {
    angle: [-25, 25],
    blend: 'screen',
    layers: [{ density: [0.08, 0.12], levelsWidth: 1.2, length: [14, 24], angleOffset: [0, 0], blur: 0.5, opacity: [0.75, 0.9] }],
  },
  // Rain100H/Rain200H-like: several denser layers of longer streaks in different directions.
  heavy: {
    angle: [-30, 30],
    blend: 'screen',
    layers: [
      { density: [0.1, 0.15], levelsWidth: 1.0, length: [25, 40], angleOffset: [-4, 4], blur: 0.7, opacity: [0.8, 0.95] },
      { density: [0.08, 0.12], levelsWidth: 1.0, length: [20, 35], angleOffset: [-15, 15], blur: 0.6, opacity: [0.7, 0.9] },
      { density: [0.08, 0.12], levelsWidth: 1.2, length: [15, 30], angleOffset: [-25, 25], blur: 0.5, opacity: [0.6, 0.85] },
      { density: [0.06, 0.1], levelsWidth: 1.5, length: [30, 50], angleOffset: [-10, 10], blur: 1.0, opacity: [0.55, 0.75] },
    ],
  },
  // Stand-in for real rain (Real200-like): a veil of haze, soft wide defocused streaks of uneven
  // density (clouds) and fine near-vertical drizzle, fainter and more varied than the synthetic sets.
  real: {
    angle: [-15, 15],
    blend: 'screen',
    haze: { amount: [0.2, 0.35], airlight: [0.7, 0.9] },
    layers: [
      { density: [0.1, 0.16], levelsWidth: 2.0, length: [8, 16], angleOffset: [-5, 5], blur: 1.6, opacity: [0.35, 0.55], clouds: { amount: 0.8, scale: 48 } },
      { density: [0.1, 0.15], levelsWidth: 1.5, length: [4, 9], angleOffset: [-20, 20], blur: 0.4, opacity: [0.45, 0.6], clouds: { amount: 0.6, scale: 32 } },
      { density: [0.02, 0.04], levelsWidth: 2.5, length: [20, 40], angleOffset: [-8, 8], blur: 2.5, opacity: [0.3, 0.45] },
    ],
  },
};

export function rainParams(preset: RainPreset | RainParams): RainParams {
  if (typeof preset !== 'string') return preset;
  const p = RAIN_PRESETS[preset];
  if (!p) throw new Error(`unknown rain preset '${String(preset)}' (one of ${RAIN_PRESET_NAMES.join(', ')})`);
  return p;
}

/**
 * The generator `synth` uses for one image: a function of the seed and the image's name only, so
 * adding or removing files never changes the rain on the others.
 */
export function rngFor(seed: number, name: string): Rng {
  // FNV-1a of the name (UTF-16 code units), then both words through the Rng's splitmix seeding.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  const a = new Rng(seed >>> 0).state;
  const b = new Rng(h).state;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) s[i] = (a[i] ^ Math.imul(b[i], 0x9e3779b1)) >>> 0;
  if (s.every((v) => v === 0)) s[0] = 1;
  return new Rng(s);
}

/** A square kernel (odd side) and its weights in row-major order. */
export interface Kernel {
  size: number;
  data: Float64Array;
}

/**
 * Motion-blur kernel: a segment of `length` px through the kernel centre at `angleDeg` from
 * vertical (positive: top leans right), anti-aliased by bilinear splatting of points every 1/8 px,
 * normalised to sum 1. Length <= 1 gives the identity.
 */
export function lineKernel(length: number, angleDeg: number): Kernel {
  const half = Math.max(0, length) / 2;
  const r = Math.ceil(half) + 1;
  const size = 2 * r + 1;
  const data = new Float64Array(size * size);
  // Kernel pixel (r, r) is the origin; the segment runs along +y (down) before the rotation.
  const m = mat3d.multiply(mat3d.translation([r, r]), mat3d.rotation((angleDeg * Math.PI) / 180));
  const steps = Math.max(1, Math.ceil(length * 8));
  const p = vec2d.create();
  for (let i = 0; i <= steps; i++) {
    const t = length <= 0 ? 0 : -half + (2 * half * i) / steps;
    vec2d.transformMat3([0, t], m, p);
    const x0 = Math.floor(p[0]);
    const y0 = Math.floor(p[1]);
    const fx = p[0] - x0;
    const fy = p[1] - y0;
    // Trapezoid weights so the segment's two ends count half, as a continuous line would.
    const w = i === 0 || i === steps ? 0.5 : 1;
    data[y0 * size + x0] += w * (1 - fx) * (1 - fy);
    data[y0 * size + x0 + 1] += w * fx * (1 - fy);
    data[(y0 + 1) * size + x0] += w * (1 - fx) * fy;
    data[(y0 + 1) * size + x0 + 1] += w * fx * fy;
  }
  let s = 0;
  for (const v of data) s += v;
  for (let i = 0; i < data.length; i++) data[i] /= s;
  return { size, data };
}

function gaussianKernel1d(sigma: number): Float64Array {
  if (!(sigma > 0)) return Float64Array.of(1);
  const r = Math.ceil(3 * sigma);
  const g = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += g[i + r] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < g.length; i++) g[i] /= s;
  return g;
}

/** Full 2-D convolution of the line kernel with a separable gaussian: the combined streak kernel. */
function blurKernel(k: Kernel, sigma: number): Kernel {
  const g = gaussianKernel1d(sigma);
  const rg = (g.length - 1) / 2;
  const size = k.size + 2 * rg;
  const data = new Float64Array(size * size);
  for (let y = 0; y < k.size; y++) {
    for (let x = 0; x < k.size; x++) {
      const v = k.data[y * k.size + x];
      if (v === 0) continue;
      for (let i = 0; i < g.length; i++) {
        for (let j = 0; j < g.length; j++) data[(y + i) * size + x + j] += v * g[i] * g[j];
      }
    }
  }
  return { size, data };
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must lie in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** A smooth zero-mean field: N(0,1) values on a grid `scale` px apart, bicubic (smoothstep) interpolated. */
function cloudsField(width: number, height: number, scale: number, rng: Rng): Float64Array {
  const s = Math.max(1, scale);
  const gw = Math.ceil(width / s) + 2;
  const gh = Math.ceil(height / s) + 2;
  const grid = new Float64Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.normal();
  const out = new Float64Array(width * height);
  const smooth = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < height; y++) {
    const gy = y / s;
    const iy = Math.floor(gy);
    const ty = smooth(gy - iy);
    for (let x = 0; x < width; x++) {
      const gx = x / s;
      const ix = Math.floor(gx);
      const tx = smooth(gx - ix);
      const v00 = grid[iy * gw + ix];
      const v01 = grid[iy * gw + ix + 1];
      const v10 = grid[(iy + 1) * gw + ix];
      const v11 = grid[(iy + 1) * gw + ix + 1];
      out[y * width + x] = (v00 * (1 - tx) + v01 * tx) * (1 - ty) + (v10 * (1 - tx) + v11 * tx) * ty;
    }
  }
  return out;
}

function draw(rng: Rng, r: Range): number {
  return r[0] === r[1] ? r[0] : rng.uniform(r[0], r[1]);
}

/** Non-zero kernel taps as offsets into a row-major buffer `stride` wide, and their weights. */
function tapsOf(k: Kernel, stride: number): { offsets: Int32Array; weights: Float64Array } {
  const o: number[] = [];
  const w: number[] = [];
  for (let i = 0; i < k.data.length; i++) {
    if (k.data[i] === 0) continue;
    o.push(Math.floor(i / k.size) * stride + (i % k.size));
    w.push(k.data[i]);
  }
  return { offsets: Int32Array.from(o), weights: Float64Array.from(w) };
}

/** One streak layer in [0, opacity], width*height, row-major. */
function streakLayer(width: number, height: number, layer: StreakLayer, baseAngle: number, rng: Rng): Float64Array {
  // Draw order is part of the determinism contract: length, angle, density, opacity, noise, clouds.
  const length = draw(rng, layer.length);
  const angle = baseAngle + draw(rng, layer.angleOffset);
  const density = draw(rng, layer.density);
  const opacity = draw(rng, layer.opacity);
  const line = lineKernel(length, angle);
  const g = gaussianKernel1d(layer.blur);
  const rg = (g.length - 1) / 2;
  // Standard deviation of unit white noise after both blurs: the L2 norm of the combined kernel.
  let energy = 0;
  for (const v of blurKernel(line, layer.blur).data) energy += v * v;
  const invStd = 1 / Math.sqrt(energy);
  // Noise over the image plus the kernels' margins: the blurs never see a border.
  const lw = width + line.size - 1;
  const lh = height + line.size - 1;
  const nw = lw + 2 * rg;
  const nh = lh + 2 * rg;
  const noise = new Float64Array(nw * nh);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
  const black = normalQuantile(1 - density);
  const clouds = layer.clouds && layer.clouds.amount > 0 ? cloudsField(width, height, layer.clouds.scale, rng) : null;
  const cloudAmount = layer.clouds?.amount ?? 0;
  // The slight gaussian blur, separably (valid region only): rows, then columns.
  let soft = noise;
  if (rg > 0) {
    const rows = new Float64Array(nh * lw);
    for (let y = 0; y < nh; y++) {
      for (let x = 0; x < lw; x++) {
        let s = 0;
        for (let i = 0; i < g.length; i++) s += g[i] * noise[y * nw + x + i];
        rows[y * lw + x] = s;
      }
    }
    soft = new Float64Array(lh * lw);
    for (let y = 0; y < lh; y++) {
      for (let x = 0; x < lw; x++) {
        let s = 0;
        for (let i = 0; i < g.length; i++) s += g[i] * rows[(y + i) * lw + x];
        soft[y * lw + x] = s;
      }
    }
  }
  // The motion blur (sparse line taps), then levels.
  const { offsets, weights } = tapsOf(line, lw);
  const nt = offsets.length;
  const invWidth = 1 / layer.levelsWidth;
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const base = y * lw + x;
      let s = 0;
      for (let t = 0; t < nt; t++) s += weights[t] * soft[base + offsets[t]];
      const i = y * width + x;
      const b = clouds ? black - cloudAmount * clouds[i] : black;
      const v = (s * invStd - b) * invWidth;
      out[i] = v <= 0 ? 0 : v >= 1 ? opacity : opacity * v;
    }
  }
  return out;
}

/**
 * Rains on a clean image. Returns the rainy image (in [0,1]) and rain = rainy - clean (negative
 * where haze darkens). Deterministic: the same clean image, parameters and generator state give
 * the same result; the generator advances.
 */
export function synthesizeRain(clean: Image, preset: RainPreset | RainParams, rng: Rng): { rainy: Image; rain: Image } {
  const p = rainParams(preset);
  const { width, height, data } = clean;
  const n = width * height;
  if (data.length !== 3 * n) throw new Error(`synthesizeRain: image data must hold 3*${height}*${width} values`);
  const baseAngle = draw(rng, p.angle);
  const hazeA = p.haze ? draw(rng, p.haze.amount) : 0;
  const airlight = p.haze ? draw(rng, p.haze.airlight) : 0;
  // 'screen' accumulates prod(1 - Ri); 'add' accumulates sum(Ri).
  const acc = new Float64Array(n).fill(p.blend === 'screen' ? 1 : 0);
  for (const layer of p.layers) {
    const r = streakLayer(width, height, layer, baseAngle, rng);
    if (p.blend === 'screen') for (let i = 0; i < n; i++) acc[i] *= 1 - r[i];
    else for (let i = 0; i < n; i++) acc[i] += r[i];
  }
  const rainy = new Float32Array(3 * n);
  const rain = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const j = c * n + i;
      const b = Math.min(1, Math.max(0, data[j]));
      const veiled = b * (1 - hazeA) + hazeA * airlight;
      const o = p.blend === 'screen' ? 1 - (1 - veiled) * acc[i] : Math.min(1, veiled + acc[i]);
      rainy[j] = o;
      rain[j] = rainy[j] - data[j];
    }
  }
  return { rainy: { width, height, data: rainy }, rain: { width, height, data: rain } };
}
