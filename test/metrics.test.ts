// Tests for src/train/metrics.ts (PSNR/SSIM conventions vs scikit-image, median baseline).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as evalCli } from '../src/cli/commands/eval.js';
import { encodeImage } from '../src/io/image-node.js';
import { preset } from '../src/model/config.js';
import { derainImage } from '../src/model/derain.js';
import { DrdNet } from '../src/model/drdnet.js';
import { weightsToBytes } from '../src/model/weights.js';
import { engine } from './helpers.js';
import type { Image } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { clampImage, CONVENTIONS, medianFilter3x3, psnr, ssim, type Convention } from '../src/train/metrics.js';
import { Rng } from '../src/util/rng.js';

const FIX = 'test/fixtures/metrics';

interface Case {
  files?: [string, string];
  width?: number;
  height?: number;
  a?: number[];
  b?: number[];
  [metric: string]: unknown;
}

const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as { cases: Record<string, Case> };

async function images(c: Case): Promise<[Image, Image]> {
  if (c.files) return [await readImage(join(FIX, c.files[0])), await readImage(join(FIX, c.files[1]))];
  const { width, height } = c as { width: number; height: number };
  return [
    { width, height, data: Float32Array.from(c.a!) },
    { width, height, data: Float32Array.from(c.b!) },
  ];
}

function randomImage(w: number, h: number, seed: number): Image {
  const rng = new Rng(seed);
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => rng.next()) };
}

for (const [name, c] of Object.entries(expected.cases)) {
  test(`matches scikit-image on '${name}' in every convention`, async () => {
    const [a, b] = await images(c);
    for (const conv of CONVENTIONS) {
      const p = psnr(a, b, conv);
      const s = ssim(a, b, conv);
      const ep = c[`psnr_${conv}`] as number;
      const es = c[`ssim_${conv}`] as number;
      assert.ok(Math.abs(p - ep) <= 1e-4, `${name} psnr ${conv}: ${p} vs skimage ${ep}`);
      assert.ok(Math.abs(s - es) <= 1e-4, `${name} ssim ${conv}: ${s} vs skimage ${es}`);
    }
  });
}

test('identical images: infinite PSNR and SSIM 1 in every convention', () => {
  const a = randomImage(20, 15, 3);
  const b = { ...a, data: Float32Array.from(a.data) };
  for (const conv of CONVENTIONS) {
    assert.is(psnr(a, b, conv), Infinity, conv);
    assert.ok(Math.abs(ssim(a, b, conv) - 1) < 1e-12, `${conv}: ${ssim(a, b, conv)}`);
  }
});

test('metrics are symmetric and default to the rgb convention', () => {
  const a = randomImage(16, 16, 1);
  const b = randomImage(16, 16, 2);
  assert.is(psnr(a, b), psnr(a, b, 'rgb'));
  assert.is(ssim(a, b), ssim(a, b, 'rgb'));
  assert.ok(Math.abs(psnr(a, b) - psnr(b, a)) < 1e-12);
  assert.ok(Math.abs(ssim(a, b) - ssim(b, a)) < 1e-12);
});

test('conventions differ where they should', () => {
  // Values clamp to [0,1] first: 1 and 7 (or 0 and -3) are the same pixel in every convention.
  const a = randomImage(16, 16, 4);
  const sat = { ...a, data: a.data.map((v) => (v > 0.8 ? 1 : v < 0.2 ? 0 : v)) };
  const over = { ...a, data: sat.data.map((v) => (v === 1 ? 7 : v === 0 ? -3 : v)) };
  for (const conv of CONVENTIONS) assert.is(psnr(sat, over, conv), Infinity, conv);
  // Sub-level differences vanish under the authors' truncation but not in float.
  const grid = { ...a, data: a.data.map((v) => Math.floor(v * 255) / 255 + 0.3 / 255) };
  const grid2 = { ...a, data: grid.data.map((v) => v + 0.5 / 255) };
  assert.is(psnr(grid, grid2, 'authors'), Infinity);
  assert.ok(Number.isFinite(psnr(grid, grid2, 'rgb')));
  // The window differs too: authors' 7x7 uniform SSIM != 11x11 gaussian SSIM.
  const b = randomImage(16, 16, 5);
  assert.ok(Math.abs(ssim(a, b, 'rgb') - ssim(a, b, 'authors')) > 1e-3);
  assert.ok(Math.abs(psnr(a, b, 'rgb') - psnr(a, b, 'y')) > 1e-3);
});

test('Y convention ignores a luma-preserving colour change', () => {
  const w = 12;
  const n = w * w;
  const a: Image = { width: w, height: w, data: new Float32Array(3 * n).fill(0.5) };
  const b: Image = { width: w, height: w, data: new Float32Array(3 * n) };
  // dR * 65.481 + dG * 128.553 + dB * 24.966 = 0
  const dR = 0.1;
  const dB = 0.1;
  const dG = -(dR * 65.481 + dB * 24.966) / 128.553;
  for (let i = 0; i < n; i++) {
    b.data[i] = 0.5 + dR;
    b.data[n + i] = 0.5 + dG;
    b.data[2 * n + i] = 0.5 + dB;
  }
  assert.ok(psnr(a, b, 'y') > 100, `${psnr(a, b, 'y')}`);
  assert.ok(psnr(a, b, 'rgb') < 25);
});

test('errors: size mismatch and images smaller than the SSIM window', () => {
  const a = randomImage(16, 16, 1);
  const b = randomImage(15, 16, 1);
  assert.throws(() => psnr(a, b), /sizes differ/);
  const tiny = randomImage(10, 20, 1);
  assert.throws(() => ssim(tiny, tiny), /at least 11x11/);
  assert.not.throws(() => ssim(tiny, tiny, 'authors')); // 7x7 window fits
});

test('median filter: removes an isolated streak pixel, keeps constants, replicates edges', () => {
  const w = 9;
  const h = 7;
  const n = w * h;
  const img: Image = { width: w, height: h, data: new Float32Array(3 * n).fill(0.25) };
  img.data[n + 3 * w + 4] = 1; // one bright pixel in the green plane
  img.data[0] = 0.9; // a corner pixel: with edge replication 4 of its 9 samples are itself
  const m = medianFilter3x3(img);
  assert.ok(m.data.every((v) => v === 0.25), 'isolated pixels are removed');
  // A vertical 1-px streak survives a 3x3 median only where 5 of 9 are streak: never.
  const s: Image = { width: w, height: h, data: new Float32Array(3 * n).fill(0.1) };
  for (let y = 0; y < h; y++) s.data[y * w + 2] = 0.8;
  assert.ok(medianFilter3x3(s).data.every((v) => Math.abs(v - 0.1) < 1e-7));
  // A 2x2 block in the corner: edge replication makes the corner pixel's window 9 x corner values... mostly.
  const c: Image = { width: w, height: h, data: new Float32Array(3 * n) };
  c.data[0] = c.data[1] = c.data[w] = c.data[w + 1] = 1;
  const mc = medianFilter3x3(c);
  assert.is(mc.data[0], 1, 'corner pixel of a 2x2 block survives with edge replication');
  assert.is(mc.data[w + 1], 0, 'interior pixel with 4 of 9 bright drops');
});

test('median filter equals a sorted 3x3 median (edge-replicated) on random data with ties', () => {
  const w = 13;
  const h = 9;
  const rng = new Rng(9);
  const img: Image = { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => rng.int(6) / 5) };
  const m = medianFilter3x3(img);
  const at = (c: number, y: number, x: number) =>
    img.data[c * w * h + Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v: number[] = [];
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) v.push(at(c, y + dy, x + dx));
        v.sort((p, q) => p - q);
        assert.is(m.data[c * w * h + y * w + x], v[4]);
      }
    }
  }
});

test('clampImage maps NaN to 0 and clips', () => {
  const img: Image = { width: 1, height: 1, data: Float32Array.from([NaN, -1, 2]) };
  assert.equal(Array.from(clampImage(img).data), [0, 0, 1]);
});

test('metrics are fast enough for eval (256x256 in well under a second)', () => {
  const a = randomImage(256, 256, 1);
  const b = randomImage(256, 256, 2);
  const t0 = performance.now();
  for (const conv of CONVENTIONS as Convention[]) {
    psnr(a, b, conv);
    ssim(a, b, conv);
  }
  medianFilter3x3(a);
  assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
});

test('eval --json: contract keys, input/median metrics, clamped output metrics, conventions', async () => {
  const e = await engine();
  const model = new DrdNet(e, preset('micro'), 3);
  const dir = mkdtempSync(join(tmpdir(), 'eval-test-'));
  const weights = join(dir, 'micro.safetensors');
  writeFileSync(weights, await weightsToBytes(model));
  mkdirSync(join(dir, 'pairs', 'rain'), { recursive: true });
  mkdirSync(join(dir, 'pairs', 'norain'));
  const clean = [randomImage(24, 20, 1), randomImage(17, 23, 2)];
  const rainy = clean.map((c, i) => ({ ...c, data: c.data.map((v, j) => (j % (5 + i) === 0 ? 1 : v)) }));
  const q = (img: Image): Image => ({ ...img, data: Float32Array.from(img.data, (v) => Math.round(v * 255) / 255) });
  for (let i = 0; i < 2; i++) {
    writeFileSync(join(dir, 'pairs', 'rain', `norain-${i + 1}x2.png`), encodeImage(rainy[i], 'png'));
    writeFileSync(join(dir, 'pairs', 'norain', `norain-${i + 1}.png`), encodeImage(clean[i], 'png'));
  }
  const capture = async (args: string[]) => {
    const lines: string[] = [];
    const log = console.log;
    const err = process.stderr.write;
    console.log = (...x: unknown[]) => void lines.push(x.join(' '));
    process.stderr.write = () => true;
    try {
      assert.is(await evalCli(args), 0);
    } finally {
      console.log = log;
      process.stderr.write = err;
    }
    return lines;
  };
  const base = ['--weights', weights, '--data', join(dir, 'pairs')];
  for (const conv of ['rgb', 'y', 'authors'] as const) {
    const out = await capture([...base, '--json', '--convention', conv]);
    assert.is(out.length, 1);
    const doc = JSON.parse(out[0]);
    assert.is(doc.convention, { rgb: 'rgb-float', y: 'y-float', authors: 'authors' }[conv]);
    assert.equal(doc.images.map((r: { name: string }) => r.name), ['norain-1x2.png', 'norain-2x2.png']);
    const keys = ['psnr_in', 'psnr_out', 'ssim_in', 'ssim_out', 'psnr_median', 'ssim_median'];
    assert.equal(Object.keys(doc.mean), keys);
    for (let i = 0; i < 2; i++) {
      const r = doc.images[i];
      assert.equal(Object.keys(r), ['name', ...keys]);
      const [ri, ci] = [q(rainy[i]), q(clean[i])];
      assert.ok(Math.abs(r.psnr_in - psnr(ri, ci, conv)) < 1e-9);
      assert.ok(Math.abs(r.ssim_in - ssim(ri, ci, conv)) < 1e-9);
      assert.ok(Math.abs(r.psnr_median - psnr(medianFilter3x3(ri), ci, conv)) < 1e-9);
      assert.ok(Math.abs(r.ssim_median - ssim(medianFilter3x3(ri), ci, conv)) < 1e-9);
      const d = clampImage(await derainImage(model, ri));
      assert.ok(Math.abs(r.psnr_out - psnr(d, ci, conv)) < 1e-3, `psnr_out ${r.psnr_out} vs ${psnr(d, ci, conv)}`);
      assert.ok(Math.abs(r.ssim_out - ssim(d, ci, conv)) < 1e-4);
    }
    for (const k of keys) assert.ok(Math.abs(doc.mean[k] - (doc.images[0][k] + doc.images[1][k]) / 2) < 1e-9, k);
  }
  const table = await capture(base);
  assert.ok(table[0].includes('rgb-float'));
  assert.ok(table.some((l) => l.startsWith('norain-2x2.png')) && table[table.length - 1].startsWith('mean'));
  model.dispose();
});

test.run();
