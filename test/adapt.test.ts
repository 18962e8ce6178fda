// Adaptation to unlabelled photos: the shared module (BN modes, supervised-only), the guard, the
// pairs' one definition for Node and the page, and the `adapt` command's outputs and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage, encodeImage } from '../src/io/image-node.js';
import type { Image } from '../src/io/image.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { loadModel, weightsToBytes } from '../src/model/weights.js';
import { adaptToPhotos, fitPatch } from '../src/train/adapt.js';
import { GUARD_TOLERANCE_DB, guardKeeps, guardSaysWorse, selfConsistency } from '../src/train/adapt-guard.js';
import { ADAPT_PAIR_SIZE, ADAPT_PAIR_SOURCES, type AdaptPair } from '../src/train/adapt-pairs.js';
import { loadAdaptPairs, writeAdaptPairs } from '../src/train/adapt-pairs-node.js';
import { errorOf, assertMessage } from './errors.js';
import { engine } from './helpers.js';
import { assertCliError, runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-adapt-'));
const weights = join(dir, 'micro.safetensors');
const photo = join(dir, 'photo.png');
let pairs: AdaptPair[];
let photoImg: Image;

function image(w: number, h: number, f: (i: number) => number): Image {
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, (_, i) => f(i)) };
}

const tiny = { steps: 2, patch: 16, batch: 1, lr: 1e-3 };

test.before(async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 3);
  writeFileSync(weights, await weightsToBytes(m));
  m.dispose();
  photoImg = image(40, 32, (i) => ((i * 37) % 101) / 100);
  writeFileSync(photo, encodeImage(photoImg, 'png'));
  pairs = await loadAdaptPairs();
});

test('the bundled pairs: one definition, and the page assets decode to exactly the pairs adapt uses', async () => {
  assert.is(pairs.length, ADAPT_PAIR_SOURCES.length);
  for (const p of pairs) assert.equal([p.rainy.width, p.rainy.height, p.clean.width], [ADAPT_PAIR_SIZE, ADAPT_PAIR_SIZE, ADAPT_PAIR_SIZE]);
  const assets = join(dir, 'pairs');
  mkdirSync(assets);
  const listed = await writeAdaptPairs(assets);
  assert.is(readdirSync(assets).length, 2 * pairs.length);
  for (const [i, l] of listed.entries()) {
    const file = join(assets, l.rainy.replace(/^assets\/pairs\//, ''));
    assert.ok(decodeImage(readFileSync(file), file).data.every((v, j) => v === pairs[i]!.rainy.data[j]), `pair ${i}: PNG differs from the in-memory pair`);
  }
});

test('the page and the CLI run one implementation (web/ has no adaptation loop of its own)', () => {
  assert.not.ok(existsSync('web/src/adapt.ts'), 'web/src/adapt.ts should be gone: the loop lives in src/train/adapt.ts');
  const main = readFileSync('web/src/main.ts', 'utf8');
  assert.match(main, /from '\.\.\/\.\.\/src\/train\/adapt\.js'/);
  for (const f of readdirSync('web/src')) assert.not.match(readFileSync(join('web/src', f), 'utf8'), /new Trainer\(/, `web/src/${f} builds its own Trainer`);
  assert.match(readFileSync('src/cli/commands/adapt.ts', 'utf8'), /from '\.\.\/\.\.\/train\/adapt\.js'/);
});

test('adaptToPhotos: frozen BN keeps running statistics, batch BN moves them; supervised-only has no contrastive loss', async () => {
  const e = await engine();
  const bytes = readFileSync(weights);
  const stats = async (m: DrdNet) => Promise.all(m.batchNorms().map(async ([, bn]) => [...(await bn.runningMean.read())]));
  for (const [bn, moves] of [['frozen', false], ['batch', true]] as const) {
    const { model } = loadModel(e, bytes, 'micro');
    const before = await stats(model);
    const r = await adaptToPhotos(e, model, [photoImg], pairs, { ...tiny, bn, contrastive: true });
    assert.is(r.records.length, 2);
    assert.ok(r.records.every((s) => Number.isFinite(s.loss) && s.loss_cr_bg > 0), `${bn}: contrastive terms should be active`);
    assert.is(JSON.stringify(await stats(model)) !== JSON.stringify(before), moves, `${bn}: running statistics ${moves ? 'should' : 'should not'} move`);
    assert.not.ok(model.training, 'the model is left in eval mode');
    model.dispose();
  }
  const { model } = loadModel(e, bytes, 'micro');
  const r = await adaptToPhotos(e, model, [], pairs, { ...tiny, contrastive: false });
  assert.ok(r.records.every((s) => s.loss_cr_bg === 0 && s.loss_cr_rain === 0 && s.loss_sup > 0));
  const score = await selfConsistency(model, [photoImg]);
  assert.ok(Number.isFinite(score), `guard score ${score}`);
  model.dispose();
  assert.ok(guardSaysWorse(30, 29) && !guardSaysWorse(30, 30.5) && !guardSaysWorse(30, 29.99));
  const tol = GUARD_TOLERANCE_DB;
  assert.ok(guardKeeps(30, 30 + tol + 0.01) && !guardKeeps(30, 30 + tol) && !guardKeeps(30, 30) && !guardKeeps(30, 29));
  assertMessage(errorOf(() => fitPatch(64, [image(5, 40, () => 0.5)], pairs)), 'photo (5x40)', 'too small');
});

/** Names of the F32 tensors whose values differ between two weight files (same names required). */
function changedTensors(fileA: string, fileB: string): string[] {
  const a = parseSafetensors(readFileSync(fileA));
  const b = parseSafetensors(readFileSync(fileB));
  assert.equal([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  return [...a.tensors].filter(([n, t]) => t.dtype === 'F32' && toFloat32(t, n, 'a').some((v, i) => v !== toFloat32(b.tensors.get(n)!, n, 'b')[i])).map(([n]) => n);
}

test('adapt writes weights that derain loads, a per-step log, and says what the guard found', () => {
  const out = join(dir, 'adapted.safetensors');
  const log = join(dir, 'adapt.jsonl');
  const args = ['--weights', weights, '--steps', '2', '--patch', '16', '--batch', '1', '--lr', '1e-3'];
  const r = runCli(['adapt', photo, '-o', out, ...args, '--log', log, '--guard', 'warn']);
  assert.is(r.status, 0, r.errLines.join('\n'));
  assert.ok(r.errLines.some((l) => /self-consistency .* dB -> .* dB/.test(l)), r.errLines.join('\n'));
  assert.ok(r.errLines.some((l) => /adapted weights -> /.test(l)), r.errLines.join('\n'));
  const steps = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  assert.equal(steps.map((s) => s.step), [1, 2]);
  assert.ok(changedTensors(out, weights).length > 0, 'no weight changed');
  const d = runCli(['derain', photo, '-o', join(dir, 'derained.png'), '--weights', out]);
  assert.is(d.status, 0, d.errLines.join('\n'));
  // The default guard (keep) writes the adapted weights only when the check rose, else the
  // starting weights, and says which; the same seed gives the same adaptation as above.
  const kept = join(dir, 'kept.safetensors');
  const k = runCli(['adapt', photo, '-o', kept, ...args]);
  assert.is(k.status, 0, k.errLines.join('\n'));
  const [before, after] = (/self-consistency .* ([\d.]+) dB -> ([\d.]+) dB/.exec(k.errLines.join('\n')) ?? []).slice(1).map(Number);
  assert.ok(Number.isFinite(before) && Number.isFinite(after), k.errLines.join('\n'));
  const keptLine = k.errLines.some((l) => /kept the adapted weights/.test(l));
  assert.ok(keptLine || k.errLines.some((l) => /holds the starting weights unchanged/.test(l)), k.errLines.join('\n'));
  const rose = keptLine;
  // The printed scores are rounded to 0.01 dB: away from the margin they must agree with the verdict.
  if (Math.abs(after - before - GUARD_TOLERANCE_DB) > 0.011) assert.is(rose, after > before + GUARD_TOLERANCE_DB, k.errLines.join('\n'));
  assert.equal(changedTensors(kept, weights).length > 0, rose, rose ? 'kept: the adapted weights' : 'reverted: the starting weights');
  assert.equal(changedTensors(kept, out).length === 0, rose, 'kept weights equal the --guard warn run');
  assert.not.ok(readdirSync(dir).some((f) => f.includes('.tmp-')), 'a temporary file was left behind');
});

test('adapt: usage errors are one line with exit 2, and no input is ever overwritten', () => {
  assertCliError(runCli(['adapt', '-o', join(dir, 'x.safetensors')]), 2, /give at least one rainy photo/);
  assertCliError(runCli(['adapt', photo]), 2, /-o/);
  assertCliError(runCli(['adapt', photo, '-o', join(dir, 'x.png')]), 2, /\.safetensors/);
  assertCliError(runCli(['adapt', photo, '-o', weights, '--weights', weights]), 2, /same file as --weights/);
  assertCliError(runCli(['adapt', photo, '-o', join(dir, 'x.safetensors'), '--weights', weights, '--log', photo]), 2, /--log .*same file as the photo/);
  assertCliError(runCli(['adapt', photo, '-o', join(dir, 'x.safetensors'), '--bn', 'sometimes']), 2, /--bn must be one of batch, running, frozen/);
  assertCliError(runCli(['adapt', photo, '-o', join(dir, 'x.safetensors'), '--guard', 'maybe']), 2, /--guard must be one of keep, warn/);
  assertCliError(runCli(['adapt', photo, '-o', join(dir, 'x.safetensors'), '--steps', '0']), 2, /--steps/);
  assertCliError(runCli(['adapt', join(dir, 'missing.png'), '-o', join(dir, 'x.safetensors'), '--weights', weights]), 1, /missing\.png/);
  const tiny = join(dir, 'tiny.png');
  writeFileSync(tiny, encodeImage(image(30, 6, () => 0.5), 'png'));
  assertCliError(runCli(['adapt', photo, tiny, '-o', join(dir, 'x.safetensors'), '--weights', weights]), 1, /'.*tiny\.png' \(30x6\) is too small to adapt to/);
  assert.ok(readFileSync(weights).length > 0 && decodeImage(readFileSync(photo)).width === 40, 'inputs intact');
  assert.not.ok(existsSync(join(dir, 'x.safetensors')));
});

test.run();
