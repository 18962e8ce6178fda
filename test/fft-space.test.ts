// The frequency-domain contrastive space (src/train/fft-space.ts): the patch DFT against a float64
// DFT, the ratio's forward and gradient against a float64 reference with central differences, its
// direction on synthetic streaks, and adaptation / the CLI with --space fft.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseSafetensors } from '../src/io/safetensors.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { adaptToPhotos } from '../src/train/adapt.js';
import { fftContrastiveLoss, fftContrastiveRatio, patchDft, type FftSpaceOptions } from '../src/train/fft-space.js';
import { checkOp } from './gradcheck-gpu.js';
import { adaptCliSetup, adaptOnce, tinyAdaptCase } from './adapt-space.js';
import { engine } from './helpers.js';
import { allclose, mulberry32, refTensor, uniform, type RefTensor } from './ref/tensor.js';
import { assertCliError, runCli } from './run-cli.js';

const rng = mulberry32(314);

const hann = (p: number, n: number) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / p);

/** float64 patch DFT straight from the definition, in patchDft's [N, C*nh, P, nw*P] layout. */
function refDft(x: RefTensor, p: number, window: 'hann' | 'none'): { re: Float64Array; im: Float64Array; shape: number[] } {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const nh = Math.floor(h / p);
  const nw = Math.floor(w / p);
  const shape = [n, c * nh, p, nw * p];
  const re = new Float64Array(n * c * nh * p * nw * p);
  const im = new Float64Array(re.length);
  const win = (m: number) => (window === 'hann' ? hann(p, m) : 1);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < nh; i++)
        for (let j = 0; j < nw; j++)
          for (let u = 0; u < p; u++)
            for (let v = 0; v < p; v++) {
              let sr = 0;
              let si = 0;
              for (let m = 0; m < p; m++)
                for (let q = 0; q < p; q++) {
                  const val = x.data[((b * c + ch) * h + i * p + m) * w + j * p + q]! * win(m) * win(q);
                  const a = (-2 * Math.PI * (u * m + v * q)) / p;
                  sr += val * Math.cos(a);
                  si += val * Math.sin(a);
                }
              const idx = (((b * c + ch) * nh + i) * p + u) * nw * p + j * p + v;
              re[idx] = sr / p;
              im[idx] = si / p;
            }
  return { re, im, shape };
}

test('patchDft matches a float64 DFT (Hann and no window, remainders dropped, several planes)', async () => {
  const e = await engine();
  for (const [shape, p, window] of [
    [[2, 3, 10, 13], 4, 'none'],
    [[1, 3, 16, 16], 16, 'hann'],
    [[2, 2, 20, 36], 8, 'hann'],
  ] as const) {
    const x = uniform(shape, 0, 1, rng);
    const ref = refDft(x, p, window);
    const [re, im] = await tidy(async () => {
      const d = patchDft(Tensor.fromData(e, Float32Array.from(x.data), [...shape]), p, window);
      assert.equal([...d.re.shape], ref.shape);
      return [await d.re.read(), await d.im.read()];
    });
    for (const [name, got, want] of [['re', re, ref.re], ['im', im, ref.im]] as const) {
      const r = allclose(got!, want, 1e-4, 2e-5);
      assert.ok(r.ok, `${shape} P${p} ${window} ${name}: ${r.message}`);
    }
  }
});

test('patchDft: refuses a patch that does not fit', async () => {
  const e = await engine();
  tidy(() => {
    const x = Tensor.fromData(e, new Float32Array(3 * 6 * 8), [1, 3, 6, 8]);
    assert.throws(() => patchDft(x, 7), /does not fit/);
    assert.throws(() => patchDft(Tensor.fromData(e, new Float32Array(6), [6]), 2), /\[N,C,H,W\]/);
  });
});

/** float64 fftContrastiveRatio (the header's formula, written out independently). */
function refRatio(anchor: RefTensor, positives: RefTensor, photo: RefTensor, negatives: RefTensor[], o: Required<Pick<FftSpaceOptions, 'patch' | 'cutoff' | 'phaseWeight' | 'eps'>>): number {
  const p = o.patch;
  const rad = (u: number, v: number) => Math.hypot(Math.min(u, p - u), Math.min(v, p - v));
  const spec = (t: RefTensor) => {
    const d = refDft(t, p, 'hann');
    const [n, cn, , k] = d.shape as [number, number, number, number];
    const nw = k / p;
    const s = new Float64Array(n * p * p);
    for (let b = 0; b < n; b++)
      for (let r = 0; r < cn; r++)
        for (let u = 0; u < p; u++)
          for (let j = 0; j < nw; j++)
            for (let v = 0; v < p; v++) {
              const idx = ((b * cn + r) * p + u) * k + j * p + v;
              s[(b * p + u) * p + v] += (0.5 * Math.log(d.re[idx]! ** 2 + d.im[idx]! ** 2 + 1e-4)) / (cn * nw);
            }
    return { s, n, d, cn, k };
  };
  const hi: number[] = [];
  for (let u = 0; u < p; u++) for (let v = 0; v < p; v++) if (rad(u, v) >= o.cutoff) hi.push(u * p + v);
  const sa = spec(anchor);
  const sp = spec(positives);
  const n = sa.n;
  const band = (other: Float64Array, otherN: number) => {
    let t = 0;
    for (let b = 0; b < n; b++)
      for (const f of hi) {
        // positives: the batch mean spectrum
        let ref = 0;
        if (otherN === -1) {
          for (let q = 0; q < sp.n; q++) ref += sp.s[q * p * p + f]! / sp.n;
        } else ref = other[b * p * p + f]!;
        t += Math.abs(sa.s[b * p * p + f]! - ref);
      }
    return t / (hi.length * n);
  };
  let num = band(sp.s, -1);
  if (o.phaseWeight > 0) {
    const ph = refDft(photo, p, 'hann');
    const { re, im } = sa.d;
    let t = 0;
    let cnt = 0;
    const lo: Array<[number, number]> = [];
    for (let u = 0; u < p; u++) for (let v = 0; v < p; v++) if (rad(u, v) > 0 && rad(u, v) < o.cutoff) lo.push([u, v]);
    const nw = sa.k / p;
    for (let row = 0; row < n * sa.cn; row++)
      for (let j = 0; j < nw; j++) {
        cnt++;
        for (const [u, v] of lo) {
          const idx = (row * p + u) * sa.k + j * p + v;
          const ma = Math.sqrt(re[idx]! ** 2 + im[idx]! ** 2 + 1e-4);
          const mp = Math.sqrt(ph.re[idx]! ** 2 + ph.im[idx]! ** 2 + 1e-4);
          t += (Math.abs(re[idx]! / ma - ph.re[idx]! / mp) + Math.abs(im[idx]! / ma - ph.im[idx]! / mp)) / lo.length;
        }
      }
    num += (o.phaseWeight * t) / cnt;
  }
  let den = 0;
  for (const ng of negatives) den += band(spec(ng).s, n) / negatives.length;
  return num / (den + o.eps);
}

for (const phaseWeight of [1, 0]) {
  test(`fftContrastiveRatio: forward and the anchor's gradient vs float64 + central differences (phase weight ${phaseWeight})`, async () => {
    const opts = { patch: 4, cutoff: 1.5, phaseWeight, eps: 1e-3 };
    const shape = [2, 3, 9, 8];
    const anchor = uniform(shape, 0, 1, rng);
    const pos = uniform(shape, 0, 1, rng);
    const photo = uniform(shape, 0, 1, rng);
    const rerain = uniform(shape, 0, 1, rng);
    await checkOp(await engine(), {
      name: `fft ratio phase ${phaseWeight}`,
      inputs: [anchor, pos, photo, rerain],
      noGrad: [1, 2, 3],
      gpu: ([a, b, c, d]) => fftContrastiveRatio(a!, b!, c!, [c!, d!], opts),
      ref: ([a, b, c, d]) => refTensor([], [refRatio(a!, b!, c!, [c!, d!], opts)]),
      fwdTol: { rtol: 1e-4, atol: 1e-5 },
      bwdTol: { rtol: 3e-3, atol: 3e-5 },
    });
  });
}

test('fftContrastiveRatio points the right way: removing oriented streaks lowers it, adding them raises it', async () => {
  const e = await engine();
  const s = 32;
  // A smooth scene; rain = thin bright diagonal streaks.
  const scene = Float32Array.from({ length: 3 * s * s }, (_, i) => {
    const x = i % s;
    const y = Math.floor(i / s) % s;
    return 0.4 + 0.2 * Math.sin(x / 5) * Math.cos(y / 7);
  });
  const rain = Float32Array.from({ length: 3 * s * s }, (_, i) => {
    const x = i % s;
    const y = Math.floor(i / s) % s;
    return (x + 2 * y) % 9 === 0 ? 0.35 : 0;
  });
  const mix = (a: number) => Float32Array.from(scene, (v, i) => v + a * rain[i]!);
  const clean = Float32Array.from({ length: 3 * s * s }, (_, i) => 0.5 + 0.1 * Math.cos((i % s) / 3 + Math.floor(i / s) / 4));
  const values = await tidy(async () => {
    const t = (d: Float32Array) => Tensor.fromData(e, d, [1, 3, s, s]);
    const photo = t(mix(1));
    const out = [];
    for (const a of [0, 0.5, 0.9]) out.push((await fftContrastiveLoss({ realRainy: photo, realFinal: t(mix(a)), realRain: photo, synthRainy: t(clean), synthClean: t(clean) }, { negatives: ['rainy'], weight: 1 }).bg.read())[0]!);
    return out;
  });
  assert.ok(values[0]! < values[1]! && values[1]! < values[2]!, `the ratio should grow with the rain left in the output: ${values.map((v) => v.toFixed(4)).join(', ')}`);
});

test('adaptToPhotos: contrastiveSpace fft trains, replays with the seed, refuses a bad weight', async () => {
  const e = await engine();
  const c = tinyAdaptCase('fft');
  const { pairs, photo, opts } = c;
  const a = await adaptOnce(e, c);
  const b = await adaptOnce(e, c);
  assert.is(a.r.records.length, 2);
  assert.ok(a.r.records.every((r) => Number.isFinite(r.loss_cr_bg) && r.loss_cr_bg > 0 && r.loss_cr_rain === 0 && r.grad_norm_cr > 0));
  assert.equal([...a.w], [...b.w], 'same seed, same weights');
  const m = new DrdNet(e, preset('micro'), 3);
  try {
    await adaptToPhotos(e, m, [photo], pairs, { ...opts, fftWeight: Number.NaN }).then(
      () => assert.unreachable('accepted a NaN weight'),
      (err: Error) => assert.match(err.message, /FFT-space weight must be a non-negative number/),
    );
  } finally {
    m.dispose();
  }
});

test('adapt --space fft writes weights; an unknown --space is a usage error naming fft', async () => {
  const { out, common } = await adaptCliSetup('semi-drdnet-fft-');
  const r = runCli(['adapt', ...common, '--space', 'fft']);
  assert.is(r.status, 0, r.errLines.join('\n'));
  assert.ok(parseSafetensors(readFileSync(out)).tensors.size > 0);
  assertCliError(runCli(['adapt', ...common, '--space', 'dct']), 2, /--space must be one of vgg, patchnce, fft, got 'dct'/);
});

test.run();
