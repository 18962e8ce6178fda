// End to end in headless Chromium (WebGPU on SwiftShader): the derain page against the CLI, in-page
// adaptation and its downloaded weights, readable errors, and the benchmark page's quick set.
// Screenshots of every state go to test-results/browser/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { allCases } from '../src/bench/cases/index.js';
import { selectCases } from '../src/bench/harness.js';
import { rngFor, synthesizeRain } from '../src/data/synth.js';
import { decodeImage, encodeImage } from '../src/io/image-node.js';
import type { Image } from '../src/io/image.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { weightsToBytes } from '../src/model/weights.js';
import { downloadVia, launch, screenshot, SCREENSHOTS, waitForState, watch, type Page, type TestBrowser } from './browser/chromium.js';
import { engine } from './helpers.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-browser-'));
const weightsPath = join(dir, 'micro.safetensors');
const photoPath = join(dir, 'rainy-photo.png');
// The page tiles with this core size (4 tiles for the photo) while the CLI runs the photo whole:
// the two must still agree, since tiles carry their full receptive field.
const TILE = 24;
const t0 = performance.now();
const summary: Record<string, unknown> = {};

let server: { url: string; close(): Promise<void> };
let browser: TestBrowser;
let page: Page;
let pageLog: string[] = [];
let firstResult: Image;
let adaptedResult: Image;

/** The largest difference between two 8-bit images, in 1/255 units. */
function maxByteDiff(a: Image, b: Image): number {
  assert.is(`${a.width}x${a.height}`, `${b.width}x${b.height}`, 'image sizes differ');
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Math.round(a.data[i] * 255) - Math.round(b.data[i] * 255)));
  return m;
}

async function cliDerain(weights: string, out: string): Promise<Image> {
  await run(process.execPath, ['bin/semi-drdnet.js', 'derain', photoPath, '-o', out, '--weights', weights], { timeout: 300_000 });
  return decodeImage(readFileSync(out), out);
}

function crop(img: Image, x0: number, y0: number, w: number, h: number): Image {
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const src = c * img.width * img.height + (y0 + y) * img.width + x0;
      data.set(img.data.subarray(src, src + w), (c * h + y) * w);
    }
  }
  return { width: w, height: h, data };
}

function context(): string {
  return pageLog.length ? `\npage said:\n  ${pageLog.join('\n  ')}` : '';
}

test.before(async () => {
  // A micro model made here, so the test depends on neither the bundled weights nor training.
  const e = await engine();
  const model = new DrdNet(e, preset('micro'), 7);
  writeFileSync(weightsPath, await weightsToBytes(model));
  model.dispose();
  // A small rainy photo: synthetic rain on a held-out photo, cropped to 56x44.
  const name = 'chelsea.png';
  const clean = decodeImage(readFileSync(join('data/photos/heldout', name)), name);
  const { rainy } = synthesizeRain(clean, 'light', rngFor(1, name));
  writeFileSync(photoPath, encodeImage(crop(rainy, 100, 80, 56, 44), 'png'));

  // The scripts are plain .mjs run as they are (not bundled), so their own paths stay right.
  const { buildWeb } = await import(pathToFileURL(resolve('scripts/build-web.mjs')).href);
  const { serveStatic } = await import(pathToFileURL(resolve('scripts/serve.mjs')).href);
  // Built into this run's temp dir: concurrent test runs must not share (and wipe) one folder.
  const out = join(dir, 'web');
  await buildWeb({ out, weights: false });
  server = await serveStatic(out, { port: 0 });
  browser = await launch();
  // Keeps a handle on every GPUDevice a page creates, so the test can take one away.
  await browser.context.addInitScript(() => {
    if (typeof GPUAdapter === 'undefined') return;
    const orig = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
      const d = await orig.apply(this, args);
      const w = window as unknown as { __testDevices?: GPUDevice[] };
      (w.__testDevices ??= []).push(d);
      return d;
    };
  });
  page = await browser.context.newPage();
  pageLog = watch(page);
});

test.after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
  summary.total_s = Number(((performance.now() - t0) / 1000).toFixed(1));
  writeFileSync(join(SCREENSHOTS, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`browser e2e: ${JSON.stringify(summary)}`);
});

test('the page derains a PNG as the CLI does (tiled in the page, whole in the CLI)', async () => {
  await page.goto(`${server.url}?tile=${TILE}`);
  await waitForState(page, ['ready'], 60_000);
  await screenshot(page, '01-ready');
  await page.setInputFiles('#weights-input', weightsPath);
  await waitForState(page, ['ready'], 60_000);
  assert.match(await page.textContent('#weights-name') ?? '', /micro/);
  await page.setInputFiles('#image-input', photoPath);
  await waitForState(page, ['done'], 120_000);
  await screenshot(page, '02-derained');
  const got = await downloadVia(page, '#download-result', dir);
  assert.is(got.name, 'rainy-photo-derained.png');
  firstResult = decodeImage(readFileSync(got.path), got.name);
  const cli = await cliDerain(weightsPath, join(dir, 'cli.png'));
  const diff = maxByteDiff(firstResult, cli);
  summary.derain_max_diff_255 = diff;
  assert.ok(diff <= 1, `page and CLI differ by ${diff}/255${context()}`);
  const input = decodeImage(readFileSync(photoPath));
  assert.ok(maxByteDiff(firstResult, input) > 0, 'the result should differ from the input');
});

test('adaptation: 3 steps with finite losses change the weights and the output; the CLI reproduces it', async () => {
  await page.fill('#steps', '3');
  await page.fill('#patch', '16');
  await page.fill('#batch', '1');
  await page.fill('#lr', '0.001');
  const started = performance.now();
  await page.click('#adapt');
  await waitForState(page, ['done'], 600_000);
  summary.adapt_s = Number(((performance.now() - started) / 1000).toFixed(1));
  await screenshot(page, '03-adapted');
  const steps = JSON.parse((await page.getAttribute('#loss-plot', 'data-steps')) ?? '[]') as Array<Record<string, number>>;
  assert.is(steps.length, 3, `expected 3 steps${context()}`);
  for (const s of steps) {
    for (const k of ['loss', 'loss_sup', 'loss_cr_bg', 'loss_cr_rain']) assert.ok(Number.isFinite(s[k]), `step ${s.step}: ${k} = ${s[k]}`);
    // The default space (PatchNCE) has a background term only; loss_cr_rain stays 0.
    assert.ok(s.loss_cr_bg > 0, `step ${s.step}: the contrastive term should be active`);
  }
  summary.adapt_losses = steps.map((s) => Number(s.loss.toPrecision(5)));
  assert.match((await page.textContent('#quality')) ?? '', /Self-consistency \(no ground truth needed\): \d+\.\d+ dB before, \d+\.\d+ dB after/);

  const result = await downloadVia(page, '#download-result', dir);
  adaptedResult = decodeImage(readFileSync(result.path), result.name);
  assert.ok(maxByteDiff(adaptedResult, firstResult) > 0, 'adaptation should change the derained output');

  const w = await downloadVia(page, '#download-weights', dir);
  assert.is(w.name, 'rainy-photo-adapted.safetensors');
  const before = parseSafetensors(readFileSync(weightsPath));
  const after = parseSafetensors(readFileSync(w.path));
  assert.equal([...after.tensors.keys()].sort(), [...before.tensors.keys()].sort());
  let changed = 0;
  for (const [name, t] of after.tensors) {
    if (t.dtype !== 'F32') continue;
    const a = toFloat32(t, name, 'adapted');
    const b = toFloat32(before.tensors.get(name)!, name, 'original');
    assert.ok(a.every(Number.isFinite), `${name} has non-finite values`);
    if (a.some((v, i) => v !== b[i])) changed++;
  }
  summary.tensors_changed = changed;
  assert.ok(changed > 0, 'no weight changed');

  const cli = await cliDerain(w.path, join(dir, 'cli-adapted.png'));
  const diff = maxByteDiff(adaptedResult, cli);
  summary.adapted_max_diff_255 = diff;
  assert.ok(diff <= 1, `adapted: page and CLI differ by ${diff}/255${context()}`);
});

test('errors read as sentences in the page: a non-image file, a lost device (and restart), no WebGPU', async () => {
  const txt = join(dir, 'notes.txt');
  writeFileSync(txt, 'not a picture\n');
  await page.setInputFiles('#image-input', txt);
  await waitForState(page, ['error'], 30_000).catch(() => undefined);
  assert.ok(await page.isVisible('#error'));
  assert.match((await page.textContent('#error')) ?? '', /cannot decode image 'notes\.txt'/);
  await screenshot(page, '04-error-not-an-image');

  await page.evaluate(() => (window as unknown as { __testDevices: GPUDevice[] }).__testDevices.at(-1)!.destroy());
  await page.waitForFunction(() => /GPU device was lost/.test(document.getElementById('error')?.textContent ?? ''), null, { timeout: 30_000 });
  await screenshot(page, '05-error-device-lost');
  await page.click('#error button');
  await waitForState(page, ['done'], 120_000);
  // The restart reloads the adapted weights the page held, so the photo comes out the same.
  const again = await downloadVia(page, '#download-result', dir);
  assert.ok(maxByteDiff(decodeImage(readFileSync(again.path)), adaptedResult) <= 1, 'after a restart the adapted weights should be back');

  const bare = await browser.context.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
  await bare.goto(server.url);
  await bare.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
  assert.match((await bare.textContent('#error')) ?? '', /no WebGPU/);
  await screenshot(bare, '06-error-no-webgpu');
  await bare.close();
});

test('the synthetic example: a held-out photo under unseen (hazy) rain, PSNR against its clean original before and after adaptation', async () => {
  await page.click('#try-example');
  await waitForState(page, ['done'], 120_000);
  assert.match((await page.textContent('#quality')) ?? '', /rainy input \d+\.\d+ dB, derained \d+\.\d+ dB PSNR/);
  await page.fill('#steps', '2');
  await page.click('#adapt');
  await waitForState(page, ['done'], 600_000);
  await screenshot(page, '06-synthetic-example-adapted');
  const q = (await page.textContent('#quality')) ?? '';
  assert.match(q, /Known ground truth: PSNR \d+\.\d+ dB before adaptation, \d+\.\d+ dB after \([+-]\d+\.\d+ dB\)/);
  summary.example_quality = q;
});

test('the keyboard reaches the file inputs, and Stop ends a tiled derain between tiles', async () => {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  const focused: string[] = [];
  for (let i = 0; i < 20 && !focused.includes('image-input'); i++) {
    await page.keyboard.press('Tab');
    focused.push(await page.evaluate(() => document.activeElement?.id ?? ''));
  }
  assert.ok(focused.includes('image-input'), `Tab went through ${focused.join(', ')} but never the photo input`);
  // Stop pressed while the photo (4 tiles) is decoding or before its first tile is done.
  await page.setInputFiles('#image-input', photoPath);
  await page.click('#stop');
  await waitForState(page, ['done'], 120_000);
  assert.match((await page.textContent('#status')) ?? '', /^Stopped\./);
});

test('the benchmark page runs the quick set and fills the table', async () => {
  const quick = selectCases(allCases, { quick: true });
  await page.goto(`${server.url}bench.html?reps=5`);
  await waitForState(page, ['ready'], 60_000);
  const started = performance.now();
  await page.click('#run');
  await waitForState(page, ['done'], 900_000);
  summary.bench_s = Number(((performance.now() - started) / 1000).toFixed(1));
  await screenshot(page, '07-bench');
  const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({ failed: tr.classList.contains('failed'), cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') })));
  assert.is(rows.length, quick.length, `expected ${quick.length} rows${context()}`);
  for (const r of rows) {
    assert.not.ok(r.failed, `bench case failed: ${r.cells.join(' ')}`);
    assert.ok(Number(r.cells[2]) > 0, `no median time in ${r.cells.join(' ')}`);
  }
  assert.equal(rows.map((r) => r.cells[0]), quick.map((c) => c.name));
});

test.run();
