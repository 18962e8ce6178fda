// Issue 10 through the command line and the page server: nothing a user gave as input is
// overwritten, broken weights and hostile files are refused in one line, serve survives bad reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { weightsToBytes } from '../src/model/weights.js';
import { decodeImage, encodeImage } from '../src/io/image-node.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { engine } from './helpers.js';
import { assertCliError, runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-rel-'));
const weights = join(dir, 'micro.safetensors');
const nanWeights = join(dir, 'nan.safetensors');
const cli = (...args: string[]) => runCli(args);

function image(w: number, h: number, seed: number) {
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, (_, i) => ((i * 37 + seed * 11) % 101) / 100) };
}

/** Writes a small PNG (or JPEG by extension) and returns its path. */
function photo(path: string, seed = 1): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, encodeImage(image(20, 18, seed), path.endsWith('.jpg') ? 'jpg' : 'png'));
  return path;
}

test.before(async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 2);
  writeFileSync(weights, await weightsToBytes(m));
  m.dispose();
  // NaN in a weight, written past the saver's own check as a corrupt or hostile file would be.
  const bytes = new Uint8Array(readFileSync(weights));
  const w = parseSafetensors(bytes).tensors.get('rain_net.0.tail.0.weight')!;
  new DataView(w.data.buffer, w.data.byteOffset).setFloat32(0, NaN, true);
  writeFileSync(nanWeights, bytes);
});

test('derain never overwrites an input: same file, or output folder = input folder', () => {
  const a = photo(join(dir, 'same', 'a.png'));
  const before = readFileSync(a);
  assertCliError(cli('derain', a, '-o', a, '--weights', weights), 2, /output '.*a\.png' would overwrite the input '.*a\.png'/);
  assertCliError(cli('derain', a, '-o', join(dir, 'same'), '--weights', weights), 2, /would overwrite the input/);
  // The same file through a symlinked folder is still the same file.
  symlinkSync(join(dir, 'same'), join(dir, 'alias'));
  assertCliError(cli('derain', a, '-o', join(dir, 'alias', 'a.png'), '--weights', weights), 2, /would overwrite the input/);
  assertCliError(cli('derain', a, '-o', weights), 2, /unknown image extension '\.safetensors'/);
  assert.ok(readFileSync(a).equals(before), 'the input is untouched');
  assert.equal(readdirSync(join(dir, 'same')), ['a.png']);
});

test('derain refuses output collisions and --format/extension disagreements before any work', () => {
  const x1 = photo(join(dir, 'd1', 'x.png'));
  const x2 = photo(join(dir, 'd2', 'x.png'), 2);
  const out = join(dir, 'collide');
  assertCliError(cli('derain', x1, x2, '-o', out, '--weights', weights), 2, /'.*d1\/x\.png' and '.*d2\/x\.png' would both be written to '.*collide\/x\.png'/);
  const yj = photo(join(dir, 'y', 'y.jpg'));
  const yp = photo(join(dir, 'y', 'y.png'));
  assertCliError(cli('derain', yj, yp, '-o', out, '--format', 'png', '--weights', weights), 2, /would both be written to '.*y\.png'/);
  assertCliError(cli('derain', yp, '-o', join(dir, 'o.png'), '--format', 'jpg', '--weights', weights), 2, /--format jpg does not match the extension of -o '.*o\.png'/);
  assertCliError(cli('derain', yp, '-o', join(dir, 'o.webp'), '--weights', weights), 2, /unknown image extension '\.webp'/);
  assertCliError(cli('derain', yp, '-o', join(dir, 'o'), '--tile', '8', '--weights', weights), 2, /--tile must be an integer >= 16, got '8'/);
  const plain = join(dir, 'plainfile');
  writeFileSync(plain, 'x');
  assertCliError(cli('derain', yp, yj, '-o', plain, '--weights', weights), 1, /cannot use output folder '.*plainfile': exists and is not a directory/);
  for (const p of [out, join(dir, 'o.png'), join(dir, 'o.webp'), join(dir, 'o')]) assert.not.ok(existsSync(p), `${p} was created`);
});

test('derain keeps an input\'s transparency in a PNG output (the network never sees it)', () => {
  const img = image(20, 18, 5);
  const alpha = Float32Array.from({ length: 20 * 18 }, (_, i) => (i % 20 < 10 ? 0 : 1));
  const src = join(dir, 'alpha', 'logo.png');
  mkdirSync(join(dir, 'alpha'), { recursive: true });
  writeFileSync(src, encodeImage({ ...img, alpha }, 'png'));
  const r = cli('derain', src, '--weights', weights, '-o', join(dir, 'alpha-out') + '/');
  assert.is(r.status, 0, r.stderr);
  const out = decodeImage(readFileSync(join(dir, 'alpha-out', 'logo.png')));
  assert.equal(out.alpha && [...out.alpha], [...alpha]);
});

test('derain keeps a 16-bit PNG input 16-bit (the output is not rounded to 8 bits)', () => {
  const src = join(dir, 'deep', 'scan.png');
  mkdirSync(join(dir, 'deep'), { recursive: true });
  writeFileSync(src, encodeImage({ ...image(20, 18, 6), depth: 16 }, 'png'));
  const r = cli('derain', src, '--weights', weights, '-o', join(dir, 'deep-out') + '/');
  assert.is(r.status, 0, r.stderr);
  const bytes = readFileSync(join(dir, 'deep-out', 'scan.png'));
  assert.is(bytes[24], 16, 'IHDR bit depth');
  const out = decodeImage(bytes);
  assert.ok(out.data.some((v) => Math.abs(v * 255 - Math.round(v * 255)) > 0.01), 'samples between 8-bit levels');
});

test('broken weights: derain and eval fail in one line and write nothing', () => {
  const img = photo(join(dir, 'in', 'p.png'));
  const out = join(dir, 'nan-out');
  assertCliError(cli('derain', img, '-o', out, '--weights', nanWeights), 1, /nan\.safetensors: tensor 'rain_net\.0\.tail\.0\.weight' holds NaN/);
  assert.not.ok(existsSync(out));
  const pairs = join(dir, 'pairs');
  photo(join(pairs, 'rain', 'p.png'), 3);
  photo(join(pairs, 'norain', 'p.png'), 4);
  assertCliError(cli('eval', '--data', pairs, '--weights', nanWeights, '--json'), 1, /holds NaN/);
});

test('hostile files: /dev/zero as image or weights, a 196 MP PNG header, one line each', () => {
  const img = photo(join(dir, 'in', 'q.png'));
  const out = join(dir, 'zero-out');
  assertCliError(cli('derain', '/dev/zero', '-o', out, '--weights', weights), 1, /'\/dev\/zero': not a PNG or JPEG file/);
  assertCliError(cli('derain', img, '-o', out, '--weights', '/dev/zero'), 1, /\/dev\/zero: invalid JSON header/);
  // Only the header matters for the budget: 14000x14000 is refused before the IDAT is read.
  const big = join(dir, 'big.png');
  const head = Buffer.from(encodeImage(image(4, 4, 1), 'png'));
  head.writeUInt32BE(14000, 16);
  head.writeUInt32BE(14000, 20);
  writeFileSync(big, head);
  const t0 = Date.now();
  const r = runCli(['derain', big, '-o', out, '--weights', weights], { env: { ...process.env, SEMI_DRDNET_MAX_MEGAPIXELS: '100' } });
  assertCliError(r, 1, /big\.png': 14000x14000 pixels \(196 MP\) is over the pixel budget of 100 MP \(set SEMI_DRDNET_MAX_MEGAPIXELS/);
  assert.ok(Date.now() - t0 < 30000);
});

test('parity and experiment refuse to overwrite inputs and typo\'d keys', () => {
  const r = photo(join(dir, 'in', 'r.png'));
  const before = readFileSync(weights);
  assertCliError(cli('parity', '--weights', weights, '--rainy', r, '--clean', r, '--mode', 'train', '-o', weights), 2, /-o '.*micro\.safetensors' is the same file as --weights/);
  assert.ok(readFileSync(weights).equals(before));
  const spec = (variant: object, base: object = {}) => {
    const p = join(dir, `exp-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify({ base: { preset: 'micro', steps: 1, ...base }, variants: [{ name: 'a' }, variant] }));
    return p;
  };
  assertCliError(cli('experiment', spec({ name: 'b', model: { SE: false } }), '-o', join(dir, 'exp')), 2, /unknown key 'SE' in "model" of variant 'b'/);
  assertCliError(cli('experiment', spec({ name: 'c', detial: false }), '-o', join(dir, 'exp')), 2, /unknown key 'detial' in variant 'c'/);
  assertCliError(cli('experiment', spec({ name: 'd' }, { stepz: 3 }), '-o', join(dir, 'exp')), 2, /unknown key 'stepz' in "base"/);
  assertCliError(cli('experiment', spec({ name: 'e', model: { channels: -1 } }), '-o', join(dir, 'exp')), 2, /exp-.*\.json: "model" of variant 'e': channels must be an integer >= 1, got -1/);
  assert.not.ok(existsSync(join(dir, 'exp')));
});

test('train, adapt and experiment refuse outputs that would replace their inputs, before any work', () => {
  const pairs = join(dir, 'pairs');
  const rainy = photo(join(pairs, 'rain', 'a.png'));
  photo(join(pairs, 'norain', 'a.png'));
  const real = photo(join(dir, 'real', 'b.png'));
  const before = readFileSync(rainy);
  const train = (...extra: string[]) => cli('train', '--preset', 'micro', '--data', pairs, '--steps', '1', '--batch', '1', '--patch', '16', ...extra);
  assertCliError(train('-o', rainy), 2, /-o '.*a\.png' is an image name inside the --data folder/);
  assertCliError(train('-o', join(dir, 'c.safetensors'), '--log', join(pairs, 'norain', 'a.png')), 2, /--log .* is an image name inside the --data folder/);
  assertCliError(train('-o', join(dir, 'c.safetensors'), '--real', join(dir, 'real'), '--export', real), 2, /--export .* is an image name inside the --real folder/);
  assert.ok(readFileSync(rainy).equals(before));
  // A checkpoint among the photos is never read as one: allowed. Resumed at its last step, the
  // run has nothing to do but still writes --export.
  const ck = join(dir, 'real', 'ck.safetensors');
  assert.is(train('-o', ck, '--real', join(dir, 'real')).status, 0);
  const w = join(dir, 'exported.safetensors');
  const again = train('-o', ck, '--resume', ck, '--export', w);
  assert.is(again.status, 0, again.stderr);
  assert.ok(existsSync(w), 'a finished checkpoint still exports');
  // It reads the checkpoint's step before any training image: no data needed to say so.
  const idle = cli('train', '--data', join(dir, 'missing'), '--steps', '1', '-o', ck, '--resume', ck);
  assert.is(idle.status, 0, idle.stderr);
  assert.match(idle.stderr, /already at step 1 \(--steps 1\): no step to run/);
  // Without --weights, adapt starts from the bundled weights: they are an input too.
  const bundled = resolve('weights/semi-drdnet-tiny.safetensors');
  const kept = readFileSync(bundled);
  try {
    assertCliError(cli('adapt', real, '-o', bundled, '--steps', '1'), 2, /is the same file as the bundled starting weights/);
    assertCliError(cli('adapt', real, '-o', join(dir, 'ad.safetensors'), '--log', bundled, '--steps', '1'), 2, /--log .* is the same file as the bundled starting weights/);
  } finally {
    if (!readFileSync(bundled).equals(kept)) {
      writeFileSync(bundled, kept);
      assert.unreachable('adapt wrote over the bundled weights');
    }
  }
  // An experiment file named like one of its results, in the output folder.
  const exp = join(dir, 'expdir');
  mkdirSync(exp, { recursive: true });
  const spec = join(exp, 'results.json');
  writeFileSync(spec, JSON.stringify({ base: { preset: 'micro', steps: 1 }, variants: [{ name: 'a' }] }));
  assertCliError(cli('experiment', spec, '-o', exp), 2, /would overwrite the experiment file/);
  assert.ok(existsSync(spec) && readFileSync(spec, 'utf8').includes('"variants"'));
});

test('arguments: extra words, an empty -o and conflicting flags are usage errors', () => {
  assertCliError(cli('train', '--preset', 'micro', '--data', dir, '-o', 'c.safetensors', 'extra'), 2, /unexpected argument 'extra'/);
  assertCliError(cli('info', 'bogus'), 2, /unexpected argument 'bogus'/);
  assertCliError(cli('info', '--preset', 'micro', '--weights', weights), 2, /--preset or --weights, not both/);
  assertCliError(cli('info', '--preset', 'huge'), 2, /--preset must be one of micro, tiny, paper/);
  assertCliError(cli('derain', 'x.png', '-o', ''), 2, /--out needs a non-empty value/);
  const r = cli('synth', 'stray', '--clean', dir, '-o', join(dir, 'never'));
  assertCliError(r, 2, /^semi-drdnet synth: unexpected argument 'stray' \(this command takes only options\)$/);
});

test('a result that cannot be written to stdout is an error, and synth names an image its recipe left without rain', async () => {
  const { openSync, closeSync } = await import('node:fs');
  if (existsSync('/dev/full')) {
    const full = openSync('/dev/full', 'w');
    const r = runCli(['info', '--preset', 'micro', '--json'], { stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    assertCliError(r, 1, /cannot write to standard output: no space left on device/);
  }
  const clean = join(dir, 'tinyclean');
  photo(join(clean, 'fine.png'));
  mkdirSync(clean, { recursive: true });
  writeFileSync(join(clean, 'dot.png'), encodeImage(image(1, 1, 3), 'png'));
  const out = join(dir, 'tinysynth');
  const r = cli('synth', '--clean', clean, '-o', out, '--rain', 'light');
  assert.is(r.status, 1);
  assert.ok(r.errLines.some((l) => /dot\.png' \(1x1\) came out without visible rain/.test(l)), r.errLines.join(' | '));
  assert.equal(readdirSync(join(out, 'rain')), ['fine.png']);
});

test('serve: nosniff, no symlinks out of the root, and a failing read is a 500 the server survives', async () => {
  const { serveStatic } = await import(pathToFileURL(resolve('scripts/serve.mjs')).href);
  const root = join(dir, 'www');
  mkdirSync(root);
  writeFileSync(join(root, 'index.html'), '<p>hi</p>');
  symlinkSync('/etc/hostname', join(root, 'out.txt'));
  const server = await serveStatic(root, { port: 0 });
  // Served from /proc/self, 'mem' stats as a regular file but reading offset 0 fails (EIO): a real
  // read-stream error, which used to be an unhandled 'error' event that killed the server.
  const proc = await serveStatic('/proc/self', { port: 0 });
  try {
    const ok = await fetch(server.url);
    assert.is(ok.status, 200);
    assert.is(ok.headers.get('x-content-type-options'), 'nosniff');
    assert.is(await ok.text(), '<p>hi</p>');
    assert.is((await fetch(`${server.url}out.txt`)).status, 404);
    assert.is((await fetch(`${server.url}missing.js`)).headers.get('x-content-type-options'), 'nosniff');
    assert.is((await fetch(`${proc.url}mem`)).status, 500);
    assert.is((await fetch(`${proc.url}status`)).status, 200, 'the server still answers');
  } finally {
    await server.close();
    await proc.close();
  }
});

test.run();
