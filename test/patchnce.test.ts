// PatchNCE (src/train/patchnce.ts): the InfoNCE against a float64 reference with central-difference gradients, the frozen own-feature extractor, and adaptation with --space patchnce.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseSafetensors } from '../src/io/safetensors.js';
import { backward } from '../src/graph/autograd.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { adaptToPhotos } from '../src/train/adapt.js';
import { networkFeatures, patchNceFromFeatures, patchNceLoss, samplePositions } from '../src/train/patchnce.js';
import { Rng } from '../src/util/rng.js';
import { checkOp } from './gradcheck-gpu.js';
import { adaptCliSetup, adaptOnce, tinyAdaptCase } from './adapt-space.js';
import { engine } from './helpers.js';
import { assertCliError, runCli } from './run-cli.js';
import { mulberry32, randn, refTensor, uniform, type RefTensor } from './ref/tensor.js';

const rng = mulberry32(77);

/** float64 PatchNCE: mean over items b and positions s of logsumexp_t(<q^_s,k^_t>/tau) - <q^_s,k^_s>/tau. */
function refPatchNce(q: RefTensor, k: RefTensor, positions: readonly number[], tau: number): RefTensor {
  const [n, c, h, w] = q.shape as [number, number, number, number];
  const hw = h * w;
  const vec = (t: RefTensor, b: number, p: number) => {
    const v = Array.from({ length: c }, (_, ch) => t.data[(b * c + ch) * hw + p]!);
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0) + 1e-12);
    return v.map((x) => x / norm);
  };
  let total = 0;
  for (let b = 0; b < n; b++) {
    const qs = positions.map((p) => vec(q, b, p));
    const ks = positions.map((p) => vec(k, b, p));
    for (let s = 0; s < positions.length; s++) {
      const l = ks.map((kt) => kt.reduce((a, x, ch) => a + x * qs[s]![ch]!, 0) / tau);
      const m = Math.max(...l);
      total += m + Math.log(l.reduce((a, x) => a + Math.exp(x - m), 0)) - l[s]!;
    }
  }
  return refTensor([], [total / (n * positions.length)]);
}

test('samplePositions: distinct, in range, all when asked for more', () => {
  const p = samplePositions(50, 20, new Rng(3));
  assert.is(new Set(p).size, 20);
  assert.ok(p.every((x) => Number.isInteger(x) && x >= 0 && x < 50));
  assert.equal(samplePositions(5, 9, new Rng(3)), [0, 1, 2, 3, 4]);
});

for (const tau of [0.07, 0.5]) {
  test(`patchNceFromFeatures: forward and both gradients vs float64 + central differences (tau ${tau})`, async () => {
    const positions = [0, 5, 7, 10, 11];
    // A key only loosely tied to the query: with tau 0.07 a key close to the query saturates the
    // softmax on the diagonal and leaves gradients too small for the check to mean anything.
    const q = randn([2, 3, 3, 4], rng);
    const noise = randn(q.shape, rng);
    const k = refTensor(q.shape, q.data.map((v, i) => 0.3 * v + noise.data[i]!));
    await checkOp(await engine(), {
      name: `patchNce tau ${tau}`,
      inputs: [q, k],
      gpu: ([a, b]) => patchNceFromFeatures(a!, b!, positions, tau),
      ref: ([a, b]) => refPatchNce(a!, b!, positions, tau),
      bwdTol: { rtol: 3e-3, atol: 3e-5 },
    });
  });
}

test('patchNceFromFeatures: rejects mismatched shapes and fewer than 2 positions', async () => {
  const e = await engine();
  tidy(() => {
    const a = Tensor.fromData(e, new Float32Array(24), [1, 2, 3, 4]);
    const b = Tensor.fromData(e, new Float32Array(24), [1, 2, 4, 3]);
    assert.throws(() => patchNceFromFeatures(a, b, [0, 1]), /same \[N,C,H,W\]/);
    assert.throws(() => patchNceFromFeatures(a, a, [0]), /at least 2 positions/);
    assert.throws(() => patchNceFromFeatures(a, a, [0, 12]), /outside/);
  });
});

test('networkFeatures: a frozen copy (no gradient into it or the model), gradient to the input', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 5);
  const own = await networkFeatures(m);
  try {
    const x0 = uniform([1, 3, 8, 8], 0, 1, rng);
    const grad = await tidy(async () => {
      const x = Tensor.fromData(e, Float32Array.from(x0.data), x0.shape);
      x.requiresGrad = true;
      const taps = own.features(x);
      assert.is(taps.length, 2);
      assert.equal([...taps[0]!.shape], [1, m.config.channels, 8, 8]);
      const y = patchNceLoss(own, { realRainy: Tensor.fromData(e, Float32Array.from(x0.data.map((v) => 1 - v)), x0.shape), realFinal: x, realRain: x, synthRainy: x, synthClean: x }, { rng: new Rng(1), samples: 16 });
      backward(y.total);
      assert.is(y.rain.size, 1);
      const g = await x.grad!.read();
      x.grad!.dispose();
      return g;
    });
    assert.ok(grad.some((v) => v !== 0) && grad.every(Number.isFinite), 'the input receives a finite, non-zero gradient');
    for (const p of m.parameters()) assert.is(p.grad ?? null, null, 'the model being adapted gets no gradient from the copy');
  } finally {
    own.dispose();
    m.dispose();
  }
});

test('adaptToPhotos: contrastiveSpace patchnce trains, replays with the seed, and unknown spaces are refused', async () => {
  const e = await engine();
  const c = tinyAdaptCase('patchnce');
  const { pairs, photo, opts } = c;
  const a = await adaptOnce(e, c);
  const b = await adaptOnce(e, c);
  assert.is(a.r.records.length, 2);
  assert.ok(a.r.records.every((r) => Number.isFinite(r.loss_cr_bg) && r.loss_cr_bg > 0 && r.loss_cr_rain === 0));
  assert.equal([...a.w], [...b.w], 'same seed, same weights');
  const m = new DrdNet(e, preset('micro'), 3);
  try {
    await adaptToPhotos(e, m, [photo], pairs, { ...opts, contrastiveSpace: 'dct' as never }).then(
      () => assert.unreachable('accepted an unknown space'),
      (err: Error) => assert.match(err.message, /unknown contrastive space 'dct'/),
    );
    await adaptToPhotos(e, m, [photo], pairs, { ...opts, patchnceWeight: -1 }).then(
      () => assert.unreachable('accepted a negative weight'),
      (err: Error) => assert.match(err.message, /PatchNCE weight must be a non-negative number/),
    );
  } finally {
    m.dispose();
  }
});

test('adapt --space patchnce writes weights; an unknown --space is a usage error', async () => {
  const { out, common } = await adaptCliSetup('semi-drdnet-patchnce-');
  const r = runCli(['adapt', ...common, '--space', 'patchnce']);
  assert.is(r.status, 0, r.errLines.join('\n'));
  assert.ok(parseSafetensors(readFileSync(out)).tensors.size > 0);
  assertCliError(runCli(['adapt', ...common, '--space', 'dct']), 2, /--space must be one of vgg, patchnce, fft, got 'dct'/);
});

test.run();
