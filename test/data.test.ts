// Tests for src/data: rain synthesis, paired/unlabelled loaders, the patch sampler, and `synth`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanCandidates, listImages, loadImages, loadPairs, matchPairs, naturalCompare } from '../src/data/dataset.js';
import { photosDir } from '../src/data/photos.js';
import { imageBatches, pairBatches, PatchSampler } from '../src/data/sampler.js';
import { lineKernel, normalQuantile, RAIN_PRESET_NAMES, rngFor, synthesizeRain, type RainPreset } from '../src/data/synth.js';
import { toByte, type Image } from '../src/io/image.js';
import { encodeImage, readImage } from '../src/io/image-node.js';
import { medianFilter3x3, psnr } from '../src/train/metrics.js';
import { Rng } from '../src/util/rng.js';
import { run as synthCli } from '../src/cli/commands/synth.js';
import { assertMessage, errorOf, rejectionOf } from './errors.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'data-test-'));


/** Every sample encodes its channel and position: data[i] = i / length. */
function coded(w: number, h: number, scale = 1): Image {
  const n = 3 * w * h;
  return { width: w, height: h, data: Float32Array.from({ length: n }, (_, i) => (scale * i) / n) };
}

function smooth(w: number, h: number): Image {
  const n = w * h;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      data[y * w + x] = 0.2 + 0.5 * (x / w);
      data[n + y * w + x] = 0.3 + 0.4 * (y / h);
      data[2 * n + y * w + x] = 0.5 + 0.3 * Math.sin(x / 7) * Math.cos(y / 5);
    }
  }
  return { width: w, height: h, data };
}

const quantised = (img: Image): Image => ({ ...img, data: img.data.map((v) => toByte(v) / 255) });

// ---------- synthesis ----------

test('lineKernel: sums to 1, is point-symmetric, and follows the angle', () => {
  for (const [len, ang] of [[10, 0], [15, 37], [7.5, -60], [0, 0]] as const) {
    const k = lineKernel(len, ang);
    const sum = k.data.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `sum ${sum}`);
    for (let i = 0; i < k.data.length; i++) assert.ok(Math.abs(k.data[i] - k.data[k.data.length - 1 - i]) < 1e-12, 'point symmetry');
  }
  const v = lineKernel(10, 0);
  const c = (v.size - 1) / 2;
  let onColumn = 0;
  for (let y = 0; y < v.size; y++) onColumn += v.data[y * v.size + c];
  assert.ok(onColumn > 0.999, 'angle 0 is a vertical streak');
  const h = lineKernel(10, 90);
  let onRow = 0;
  for (let x = 0; x < h.size; x++) onRow += h.data[c * h.size + x];
  assert.ok(onRow > 0.999, 'angle 90 is a horizontal streak');
  // Positive angles lean the top to the right: the top-right quadrant carries weight, top-left none.
  const d = lineKernel(12, 30);
  let tr = 0;
  let tl = 0;
  for (let y = 0; y < c - 1; y++) {
    for (let x = 0; x < d.size; x++) {
      if (x > c + 1) tr += d.data[y * d.size + x];
      if (x < c - 1) tl += d.data[y * d.size + x];
    }
  }
  assert.ok(tr > 0.1 && tl === 0, `top-right ${tr}, top-left ${tl}`);
});

test('normalQuantile inverts the normal CDF', () => {
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959963984540054) < 1e-8);
  assert.ok(Math.abs(normalQuantile(0.001) + 3.090232306167813) < 1e-8);
  assert.throws(() => normalQuantile(1), /p must lie in/);
});

test('synthesis is deterministic for a seed and differs across seeds and names', () => {
  const clean = smooth(64, 48);
  for (const preset of RAIN_PRESET_NAMES) {
    const a = synthesizeRain(clean, preset, new Rng(7));
    const b = synthesizeRain(clean, preset, new Rng(7));
    assert.equal(a.rainy.data, b.rainy.data, `${preset}: same seed`);
    const c = synthesizeRain(clean, preset, new Rng(8));
    assert.not.equal(a.rainy.data, c.rainy.data, `${preset}: other seed`);
    assert.ok(a.rainy.data.every((v) => v >= 0 && v <= 1), `${preset}: rainy in [0,1]`);
    for (let i = 0; i < a.rain.data.length; i++) {
      assert.ok(Math.abs(a.rain.data[i] - (a.rainy.data[i] - clean.data[i])) < 1e-6, `${preset}: rain = rainy - clean`);
    }
  }
  // rngFor depends on the seed and the name only.
  assert.equal(rngFor(1, 'camera').state, rngFor(1, 'camera').state);
  assert.not.equal(rngFor(1, 'camera').state, rngFor(2, 'camera').state);
  assert.not.equal(rngFor(1, 'camera').state, rngFor(1, 'camerb').state);
});

test('rain is grey and brightening, except under the real preset\'s haze', () => {
  const clean = smooth(64, 64);
  const n = 64 * 64;
  const light = synthesizeRain(clean, 'light', new Rng(3)).rain.data;
  assert.ok(light.every((v) => v >= -1e-6), 'screen blend only brightens');
  const real = synthesizeRain({ ...clean, data: clean.data.map(() => 0.98) }, 'real', new Rng(3)).rain.data;
  assert.ok(real.some((v) => v < -0.05), 'the veil darkens bright pixels');
  // Screen with a grey layer: (1 - O) / (1 - B) is the same in every channel.
  const r = synthesizeRain(clean, 'heavy', new Rng(4)).rainy.data;
  for (let i = 0; i < n; i += 97) {
    const k0 = (1 - r[i]) / (1 - clean.data[i]);
    const k2 = (1 - r[2 * n + i]) / (1 - clean.data[2 * n + i]);
    assert.ok(Math.abs(k0 - k2) < 1e-5, 'one streak layer for all channels');
  }
});

test('explicit RainParams: additive blend and no streaks', () => {
  const clean = smooth(40, 40);
  const none = synthesizeRain(clean, { angle: [0, 0], blend: 'add', layers: [] }, new Rng(1));
  assert.equal(Array.from(none.rainy.data), Array.from(clean.data));
  const layer = { density: [0.5, 0.5], levelsWidth: 1, length: [5, 5], angleOffset: [0, 0], blur: 0, opacity: [1, 1] } as const;
  const add = synthesizeRain(clean, { angle: [0, 0], blend: 'add', layers: [layer] }, new Rng(1));
  const scr = synthesizeRain(clean, { angle: [0, 0], blend: 'screen', layers: [layer] }, new Rng(1));
  // Same streak layer R: add gives B + R (clipped) >= screen's B + R - B R.
  for (let i = 0; i < add.rainy.data.length; i++) assert.ok(add.rainy.data[i] >= scr.rainy.data[i] - 1e-6);
  assert.ok(add.rainy.data.some((v, i) => v > scr.rainy.data[i] + 0.01));
  assert.throws(() => synthesizeRain(clean, 'drizzle' as RainPreset, new Rng(1)), /unknown rain preset 'drizzle'/);
});

// The values documented beside RAIN_PRESETS in src/data/synth.ts (synth --seed 1, PNG-quantised).
const DOCUMENTED: Record<RainPreset, { input: number; median: number }> = {
  light: { input: 23.06, median: 25.54 },
  heavy: { input: 16.28, median: 17.78 },
  real: { input: 16.93, median: 17.17 },
};

test('presets keep their documented PSNR on the held-out photos (seed 1)', async () => {
  const dir = photosDir('heldout');
  const files = listImages(dir);
  assert.ok(files.length >= 8, 'at least 8 held-out photos');
  const cleans = await Promise.all(files.map((f) => readImage(join(dir, f))));
  for (const preset of RAIN_PRESET_NAMES) {
    let input = 0;
    let median = 0;
    for (const [i, f] of files.entries()) {
      const { rainy } = synthesizeRain(cleans[i], preset, rngFor(1, f.replace(/\.png$/, '')));
      const r8 = quantised(rainy);
      input += psnr(r8, cleans[i]) / files.length;
      median += psnr(medianFilter3x3(r8), cleans[i]) / files.length;
    }
    assert.ok(Math.abs(input - DOCUMENTED[preset].input) < 0.01, `${preset}: mean input PSNR ${input.toFixed(3)} dB`);
    assert.ok(Math.abs(median - DOCUMENTED[preset].median) < 0.01, `${preset}: median filter ${median.toFixed(3)} dB`);
  }
  assert.ok(DOCUMENTED.light.input >= 20 && DOCUMENTED.light.input <= 25, 'light lies in 20-25 dB');
  assert.ok(DOCUMENTED.heavy.input < DOCUMENTED.light.input - 4, 'heavy is much heavier');
});

// ---------- pairing and loading ----------

test('matchPairs: Rain200, plain, rain-/norain- and DDN names', () => {
  assert.equal(matchPairs(['norain-2x2.png', 'norain-10x2.png'], ['norain-10.png', 'norain-2.png']), [
    ['norain-2x2.png', 'norain-2.png'],
    ['norain-10x2.png', 'norain-10.png'],
  ]);
  assert.equal(matchPairs(['1.jpg', '2.png'], ['1.jpg', '2.png']), [['1.jpg', '1.jpg'], ['2.png', '2.png']]);
  assert.equal(matchPairs(['rain-001.png'], ['norain-001.png']), [['rain-001.png', 'norain-001.png']]);
  assert.equal(matchPairs(['5_1.jpg', '5_2.jpg'], ['5.jpg']), [['5_1.jpg', '5.jpg'], ['5_2.jpg', '5.jpg']]);
  // The exact name wins over a stripped one.
  assert.equal(matchPairs(['ax2.png'], ['ax2.png', 'a.png'].slice(0, 1)), [['ax2.png', 'ax2.png']]);
  assert.equal(cleanCandidates('norain-12x2'), ['norain-12x2', 'norain-12']);
  assertMessage(errorOf(() => matchPairs(['a.png', 'b.png'], ['a.png'])), 'b.png', 'no clean image');
  assertMessage(errorOf(() => matchPairs(['a.png'], ['a.png', 'c.png'])), 'c.png', 'no rainy image');
  assertMessage(errorOf(() => matchPairs(['a.png'], ['a.png', 'a.jpg'])), 'ambiguous', 'a.jpg');
  assert.equal(['img10.png', 'img2.png', 'img1.png', 'b.png', 'a.png'].sort(naturalCompare), ['a.png', 'b.png', 'img1.png', 'img2.png', 'img10.png']);
});

function writePng(path: string, img: Image): void {
  writeFileSync(path, encodeImage(img, 'png'));
}

test('loadPairs: Rain200 layout (rain/X2), names, pixels; loadImages', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'rain', 'X2'), { recursive: true });
  mkdirSync(join(dir, 'norain'));
  const imgs = [smooth(20, 16), coded(20, 16)];
  for (const [i, img] of imgs.entries()) {
    writePng(join(dir, 'rain', 'X2', `norain-${i + 1}x2.png`), img);
    writePng(join(dir, 'norain', `norain-${i + 1}.png`), quantised(img));
  }
  writeFileSync(join(dir, 'norain', 'notes.txt'), 'ignored');
  const pairs = await loadPairs(dir);
  assert.equal(pairs.map((p) => p.name), ['norain-1x2.png', 'norain-2x2.png']);
  assert.ok(pairs[1].cleanPath.endsWith(join('norain', 'norain-2.png')));
  assert.equal(pairs[0].rainy.data, quantised(imgs[0]).data);
  assert.equal(pairs[1].clean.data, quantised(imgs[1]).data);
  const unl = await loadImages(join(dir, 'norain'));
  assert.equal(unl.map((x) => x.name), ['norain-1.png', 'norain-2.png']);
  assert.is(unl[0].image.width, 20);
});

test('loadPairs / loadImages errors: one line naming the culprit', async () => {
  const make = () => {
    const d = tmp();
    mkdirSync(join(d, 'rain'));
    mkdirSync(join(d, 'norain'));
    return d;
  };
  // Empty folders.
  const empty = make();
  assertMessage(await rejectionOf(loadPairs(empty)), 'no images', 'rain');
  writePng(join(empty, 'rain', 'a.png'), smooth(12, 12));
  assertMessage(await rejectionOf(loadPairs(empty)), 'no images', 'norain');
  assertMessage(await rejectionOf(loadImages(join(empty, 'norain'))), 'no images', 'norain');
  // Missing folder.
  assertMessage(await rejectionOf(loadPairs(join(empty, 'nope'))), 'cannot read directory', 'nope');
  // Unmatched file.
  const unmatched = make();
  writePng(join(unmatched, 'rain', 'a.png'), smooth(12, 12));
  writePng(join(unmatched, 'rain', 'b.png'), smooth(12, 12));
  writePng(join(unmatched, 'norain', 'a.png'), smooth(12, 12));
  assertMessage(await rejectionOf(loadPairs(unmatched)), 'b.png');
  // Unreadable image.
  const corrupt = make();
  writePng(join(corrupt, 'rain', 'a.png'), smooth(12, 12));
  writeFileSync(join(corrupt, 'norain', 'a.png'), Buffer.from('\x89PNG\r\n\x1a\nbroken'));
  assertMessage(await rejectionOf(loadPairs(corrupt)), join('norain', 'a.png'), 'cannot decode');
  assertMessage(await rejectionOf(loadImages(join(corrupt, 'norain'))), 'a.png');
  // Size mismatch.
  const sizes = make();
  writePng(join(sizes, 'rain', 'a.png'), smooth(12, 12));
  writePng(join(sizes, 'norain', 'a.png'), smooth(12, 13));
  assertMessage(await rejectionOf(loadPairs(sizes)), 'size mismatch', '12x12', '12x13');
});

// ---------- patch sampler ----------

const pairItems = (n: number, w = 30, h = 24) =>
  Array.from({ length: n }, (_, i) => {
    const rainy = coded(w + i, h + i);
    return { name: `p${i}`, rainy, clean: { ...rainy, data: rainy.data.map((v) => 0.5 * v + 0.25) } };
  });

test('sampler: patches are crops of the source, mirrored or not, and epochs visit every image once', () => {
  const items = pairItems(5);
  const P = 8;
  const s = PatchSampler.fromPairs(items, { patch: P, rng: 11 });
  let flips = 0;
  const seen: string[] = [];
  for (let k = 0; k < 10; k++) {
    const { rainy, names } = s.nextPairs(1);
    seen.push(names[0]);
    const img = items.find((it) => it.name === names[0])!.rainy;
    const n = 3 * img.width * img.height;
    // Decode the first pixel's position and check every pixel against it.
    const first = Math.round(rainy[0] * n);
    const last = Math.round(rainy[P - 1] * n);
    const flip = last < first;
    flips += flip ? 1 : 0;
    const x0 = (flip ? last : first) % img.width;
    const y0 = Math.floor(first / img.width);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < P; y++) {
        for (let x = 0; x < P; x++) {
          const sx = flip ? x0 + P - 1 - x : x0 + x;
          assert.is(rainy[c * P * P + y * P + x], img.data[c * img.width * img.height + (y0 + y) * img.width + sx]);
        }
      }
    }
  }
  assert.ok(flips > 0 && flips < 10, `flips ${flips}`);
  assert.equal(seen.slice(0, 5).sort(), ['p0', 'p1', 'p2', 'p3', 'p4']);
  assert.equal(seen.slice(5).sort(), ['p0', 'p1', 'p2', 'p3', 'p4']);
  assert.is(s.state.epoch, 2);
  const noFlip = PatchSampler.fromPairs(items, { patch: P, rng: 11, flip: false });
  for (let k = 0; k < 10; k++) {
    const r = noFlip.next(1).data;
    assert.ok(r[P - 1] > r[0], 'no mirrored patch without flip');
  }
});

test('sampler: pairs get the same crop and flip; layout is NCHW', () => {
  const s = PatchSampler.fromPairs(pairItems(3), { patch: 10, rng: 5 });
  const { rainy, clean, names } = s.nextPairs(7);
  assert.is(rainy.length, 7 * 3 * 10 * 10);
  assert.is(names.length, 7);
  for (let i = 0; i < rainy.length; i++) assert.is(clean[i], Math.fround(0.5 * rainy[i] + 0.25));
});

test('sampler: deterministic for a seed; saved state replays the identical next batches', () => {
  const items = pairItems(4);
  const a = PatchSampler.fromPairs(items, { patch: 12, rng: new Rng(3) });
  const b = PatchSampler.fromPairs(items, { patch: 12, rng: new Rng(3) });
  for (let k = 0; k < 3; k++) assert.equal(a.nextPairs(3), b.nextPairs(3));
  // Save mid-epoch (cursor 1 of 4 after 9 draws), continue, restore into a fresh sampler.
  const saved = a.state;
  const flat = a.saveState();
  assert.equal(saved.cursor, 1);
  assert.equal(saved.epoch, 3);
  const expected = [a.nextPairs(5), a.nextPairs(2)];
  const c = PatchSampler.fromPairs(items, { patch: 12, rng: 999 });
  c.restore(saved);
  assert.equal([c.nextPairs(5), c.nextPairs(2)], expected);
  const d = PatchSampler.fromPairs(items, { patch: 12 });
  const src = pairBatches(d);
  src.loadState(flat);
  assert.equal(src.next(5), { rainy: expected[0].rainy, clean: expected[0].clean });
  // Unlabelled adapter: the same stream of first members.
  const u = PatchSampler.fromImages(items.map((x) => ({ name: x.name, image: x.rainy })), { patch: 12, rng: new Rng(3) });
  const ub = imageBatches(u);
  const a2 = PatchSampler.fromPairs(items, { patch: 12, rng: new Rng(3) });
  assert.equal(ub.next(4), a2.nextPairs(4).rainy);
  assert.equal(ub.saveState(), a2.saveState());
  // A state before any draw restores too.
  const fresh = PatchSampler.fromPairs(items, { patch: 12, rng: 42 });
  const f0 = fresh.saveState();
  const first = fresh.nextPairs(2);
  fresh.loadState(f0);
  assert.equal(fresh.nextPairs(2), first);
});

test('sampler errors: small images, bad states, unlabelled nextPairs', () => {
  const items = pairItems(2);
  assertMessage(errorOf(() => PatchSampler.fromPairs(items, { patch: 25 })), "'p0'", '30x24', '25x25');
  assertMessage(errorOf(() => PatchSampler.fromPairs([], {})), 'no images');
  const s = PatchSampler.fromPairs(items, { patch: 10 });
  s.nextPairs(1);
  assertMessage(errorOf(() => s.restore({ ...s.state, order: [0, 0] })), 'permutation');
  assertMessage(errorOf(() => s.restore({ ...s.state, order: [0, 1, 2] })), '3 entries');
  assertMessage(errorOf(() => s.restore({ ...s.state, cursor: 3 })), 'cursor');
  assertMessage(errorOf(() => s.loadState([1, 2, 3])), 'integers');
  const u = PatchSampler.fromImages([{ name: 'x', image: coded(12, 12) }], { patch: 10 });
  assertMessage(errorOf(() => u.nextPairs(1)), 'unlabelled');
  assertMessage(errorOf(() => u.next(0)), 'batch');
});

// ---------- synth command ----------

test('synth writes PNG pairs that loadPairs reads, deterministically per name', async () => {
  const clean = tmp();
  writePng(join(clean, 'b.png'), smooth(40, 32));
  writeFileSync(join(clean, 'a.jpg'), encodeImage(smooth(36, 30), 'jpg'));
  const out1 = tmp();
  const out2 = tmp();
  const quiet = process.stderr.write;
  process.stderr.write = () => true;
  try {
    assert.is(await synthCli(['--clean', clean, '-o', out1, '--rain', 'heavy', '--seed', '3']), 0);
    // The same image alone in another folder gets the same rain: it depends on seed and name only.
    const solo = tmp();
    writePng(join(solo, 'b.png'), smooth(40, 32));
    assert.is(await synthCli(['--clean', solo, '-o', out2, '--rain', 'heavy', '--seed', '3']), 0);
  } finally {
    process.stderr.write = quiet;
  }
  assert.equal(readdirSync(join(out1, 'rain')).sort(), ['a.png', 'b.png']);
  assert.equal(readdirSync(join(out1, 'norain')).sort(), ['a.png', 'b.png']);
  const pairs = await loadPairs(out1);
  assert.equal(pairs.map((p) => p.name), ['a.png', 'b.png']);
  const b1 = (await readImage(join(out1, 'rain', 'b.png'))).data;
  const b2 = (await readImage(join(out2, 'rain', 'b.png'))).data;
  assert.equal(b1, b2);
  assert.equal(pairs[1].clean.data, quantised(smooth(40, 32)).data);
  assert.ok(psnr(pairs[1].rainy, pairs[1].clean) < 25);
  await rejectionOf(synthCli(['--clean', clean, '-o', out1, '--rain', 'drizzle'])).then((e) => assertMessage(e, '--rain must be one of'));
  await rejectionOf(synthCli(['--clean', join(clean, 'nope'), '-o', out1])).then((e) => assertMessage(e, 'nope'));
});

test.run();
