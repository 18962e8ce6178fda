// The contrastive regularisation: the VGG-19 extractor against a float64 reference, the CR ratio's
// gradient against central differences, detached positives/negatives, VGG weights loading, and
// the dual (background + rain) loss against a float64 reading of its design.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backward, zeroGrad } from '../src/graph/autograd.js';
import { conv2d } from '../src/graph/conv.js';
import { maxPool2d } from '../src/graph/pool.js';
import { add, mul, sum } from '../src/graph/ops.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import type { Engine } from '../src/gpu/runtime.js';
import { serializeSafetensors, type NamedSerializableTensor } from '../src/io/safetensors.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { AECR_LAYER_WEIGHTS, loadVgg, randomVgg, vggLayers, vggTensorSpec, type FeatureExtractor, type Vgg19Features } from '../src/model/vgg.js';
import { contrastiveRatio, dualContrastiveLoss, flipHorizontal, rollBatch, type DualContrastiveOptions } from '../src/train/contrastive.js';
import { engine, gpu, assertRelL2 } from './helpers.js';
import { directionalCheck, numericGrad } from './ref/gradcheck.js';
import { BWD, FWD, allclose, mulberry32, randn, refTensor, uniform, type RefTensor } from './ref/tensor.js';
import * as V from './ref/vgg.js';

const rng = mulberry32(2024);

// ---- a small pluggable extractor: conv 3->4 + ReLU (tap), pool, conv 4->5 + ReLU (tap) ----------

interface Tiny extends FeatureExtractor {
  ref: V.RefConvLayer[];
  dispose(): void;
}

function tinyExtractor(e: Engine, layerWeights = [0.5, 1]): Tiny {
  const w1 = randn([4, 3, 3, 3], rng);
  const b1 = randn([4], rng);
  const w2 = randn([5, 4, 3, 3], rng);
  const b2 = randn([5], rng);
  w1.data.forEach((v, i) => (w1.data[i] = v * 0.5));
  w2.data.forEach((v, i) => (w2.data[i] = v * 0.4));
  b1.data.forEach((v, i) => (b1.data[i] = v * 0.1));
  b2.data.forEach((v, i) => (b2.data[i] = v * 0.1));
  const [tw1, tb1, tw2, tb2] = [w1, b1, w2, b2].map((r) => gpu(e, r).keep());
  return {
    layerWeights,
    ref: [
      { weight: w1, bias: b1.data, tap: true, poolAfter: true },
      { weight: w2, bias: b2.data, tap: true, poolAfter: false },
    ],
    features(x) {
      const y1 = conv2d(x, tw1, tb1, { padding: 1, activation: 'relu' });
      const p = maxPool2d(y1, 2);
      const y2 = conv2d(p, tw2, tb2, { padding: 1, activation: 'relu' });
      p.dispose();
      return [y1, y2];
    },
    dispose() {
      for (const t of [tw1, tb1, tw2, tb2]) t.dispose();
    },
  };
}

async function refLayersOf(vgg: Vgg19Features): Promise<V.RefConvLayer[]> {
  const out: V.RefConvLayer[] = [];
  for (const l of vgg.layers) {
    const { weight, bias } = vgg.conv(l.index);
    out.push({ weight: refTensor(weight.shape, await weight.read()), bias: Float64Array.from(await bias.read()), tap: l.tap !== null, poolAfter: l.poolAfter });
  }
  return out;
}

// ---- the extractor ------------------------------------------------------------------------------

test('VGG-19 layer table follows torchvision indices and stops at the deepest tap', () => {
  const all = vggLayers(5);
  assert.equal(all.map((l) => l.index), [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28]);
  assert.equal(all.filter((l) => l.tap !== null).map((l) => [l.index, l.name]), [[0, 'relu1_1'], [5, 'relu2_1'], [10, 'relu3_1'], [19, 'relu4_1'], [28, 'relu5_1']]);
  assert.equal(all.filter((l) => l.poolAfter).map((l) => l.index), [2, 7, 16, 25]);
  assert.equal(vggLayers(3).map((l) => l.index), [0, 2, 5, 7, 10]);
  assert.equal(vggLayers(1).map((l) => l.index), [0]);
  // 12,944,960 parameters up to relu5_1 (research spec 2.3).
  assert.is(vggTensorSpec(5).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0), 12_944_960);
  assert.equal(vggTensorSpec(2).map((t) => t.name), ['features.0.weight', 'features.0.bias', 'features.2.weight', 'features.2.bias', 'features.5.weight', 'features.5.bias']);
  assert.equal(AECR_LAYER_WEIGHTS, [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1]);
  assert.throws(() => vggLayers(6), /maxTap must be an integer from 1 to 5/);
});

test('randomVgg (maxTap 3) matches a float64 reference; frozen weights, gradient reaches the input', async () => {
  const e = await engine();
  const vgg = randomVgg(e, 7, 3);
  assert.is(vgg.parameters().length, 0);
  assert.equal(vgg.layerWeights, [1 / 32, 1 / 16, 1 / 8]);
  const layers = await refLayersOf(vgg);
  // torchvision's init: kaiming normal, fan_out, ReLU gain; zero biases.
  const w31 = layers[4].weight.data;
  const std = Math.sqrt(w31.reduce((s, v) => s + v * v, 0) / w31.length);
  assert.ok(Math.abs(std / Math.sqrt(2 / (256 * 9)) - 1) < 0.02, `conv3_1 weight std ${std}`);
  assert.ok(layers.every((l) => Array.from(l.bias).every((b) => b === 0)));

  const x = uniform([2, 3, 8, 10], 0, 1, rng);
  const wts = [randn([2, 64, 8, 10], rng), randn([2, 128, 4, 5], rng), randn([2, 256, 2, 2], rng)];
  const objective = (v: Float64Array) => V.refConvFeatures(refTensor(x.shape, v), layers, true).reduce((s, t, i) => s + t.data.reduce((a, y, k) => a + y * wts[i].data[k], 0), 0);
  const refTaps = V.refConvFeatures(x, layers, true);
  const xt = gpu(e, x, true);
  const { taps, grad } = await tidy(async () => {
    const f = vgg.features(xt);
    assert.equal(f.map((t) => [...t.shape]), [[2, 64, 8, 10], [2, 128, 4, 5], [2, 256, 2, 2]]);
    let loss = sum(mul(f[0], gpu(e, wts[0])));
    for (let i = 1; i < 3; i++) loss = add(loss, sum(mul(f[i], gpu(e, wts[i]))));
    backward(loss);
    return { taps: await Promise.all(f.map((t) => t.read())), grad: await xt.grad!.read() };
  });
  for (let i = 0; i < 3; i++) await assertRelL2(taps[i], refTaps[i].data, 1e-4, `tap relu${i + 1}_1`);
  for (const [name, t] of vgg.stateDict()) assert.is(t.grad, null, `${name} got a gradient`);
  // the exact float64 backward, and directional central differences (h small enough that no
  // ReLU or pooling switch is crossed for these seeds)
  await assertRelL2(grad, V.refConvFeaturesBackward(x, layers, true, wts).data, 2e-3, 'd/dx vs float64 backward');
  for (const seed of [1, 2]) {
    const d = directionalCheck(objective, x.data, Float64Array.from(grad), mulberry32(seed), 1e-6);
    assert.ok(d.relErr < 1e-2, `d/dx directional: analytic ${d.analytic}, numeric ${d.numeric}`);
  }
  xt.grad!.dispose();
  xt.dispose();
  vgg.dispose();
});

// ---- the ratio ----------------------------------------------------------------------------------

test('contrastiveRatio: value and anchor gradient vs float64 central differences; positives and negatives get none', async () => {
  const e = await engine();
  const ex = tinyExtractor(e);
  const shape = [2, 3, 6, 6];
  const a = uniform(shape, 0, 1, rng);
  const ps = [uniform(shape, 0, 1, rng), uniform(shape, 0, 1, rng)];
  const ns = [uniform(shape, 0, 1, rng), uniform(shape, 0, 1, rng), uniform(shape, 0, 1, rng)];
  const fp = ps.map((p) => V.refConvFeatures(p, ex.ref, false));
  const fn = ns.map((n) => V.refConvFeatures(n, ex.ref, false));
  const f = (v: Float64Array) => V.contrastiveRatio(V.refConvFeatures(refTensor(shape, v), ex.ref, false), fp, fn, ex.layerWeights);
  const at = gpu(e, a, true);
  const pt = ps.map((p) => gpu(e, p, true));
  const nt = ns.map((n) => gpu(e, n, true));
  const value = await tidy(async () => {
    const cr = contrastiveRatio(ex, at, pt, nt);
    assert.equal([...cr.shape], []);
    backward(cr);
    return cr.item();
  });
  const ref = f(a.data);
  assert.ok(allclose([value], [ref], FWD.rtol, FWD.atol).ok, `CR ${value} vs ${ref}`);
  const r = allclose(await at.grad!.read(), numericGrad(f, a.data), BWD.rtol, BWD.atol);
  assert.ok(r.ok, `dCR/danchor: ${r.message}`);
  for (const t of [...pt, ...nt]) assert.is(t.grad, null, 'a positive or negative received a gradient');
  // a zero layer weight drops the tap; eps is an option
  const v2 = await tidy(() => contrastiveRatio(ex, at, pt, nt, { layerWeights: [0, 2], eps: 0.5 }).item());
  const ref2 = V.contrastiveRatio(V.refConvFeatures(a, ex.ref, false), fp, fn, [0, 2], 0.5);
  assert.ok(allclose([v2], [ref2], FWD.rtol, FWD.atol).ok, `CR(options) ${v2} vs ${ref2}`);
  assert.throws(() => contrastiveRatio(ex, at, [gpu(e, uniform([1, 3, 6, 6], 0, 1, rng))], nt), /positives\[0\]' has shape \[1,3,6,6\]/);
  for (const t of [at, ...pt, ...nt]) {
    t.grad?.dispose();
    t.dispose();
  }
  ex.dispose();
});

test('flipHorizontal and rollBatch', async () => {
  const e = await engine();
  const x = randn([3, 2, 4, 5], rng);
  await tidy(async () => {
    const t = gpu(e, x);
    assert.equal([...(await flipHorizontal(t).read())], [...Float32Array.from(V.flipW(x).data)]);
    assert.equal([...(await rollBatch(t, 1).read())], [...Float32Array.from(V.rollBatch(x, 1).data)]);
    assert.equal([...(await rollBatch(t, -1).read())], [...Float32Array.from(V.rollBatch(x, 2).data)]);
    assert.equal([...(await rollBatch(t, 3).read())], [...Float32Array.from(x.data)]);
  });
});

// ---- weights ------------------------------------------------------------------------------------

test('loadVgg: torchvision names round trip, deeper layers and classifier ignored, errors name the tensor', async () => {
  const e = await engine();
  const r = mulberry32(9);
  const entries = (maxTap: number): NamedSerializableTensor[] =>
    vggTensorSpec(maxTap).map(({ name, shape }) => ({ name, dtype: 'F32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5) }));
  const base = entries(2);
  const extra: NamedSerializableTensor[] = [
    { name: 'features.7.weight', dtype: 'F32', shape: [128, 128, 3, 3], data: new Float32Array(128 * 128 * 9) },
    { name: 'classifier.0.weight', dtype: 'F32', shape: [4, 8], data: new Float32Array(32) },
  ];
  const vgg = loadVgg(e, serializeSafetensors([...base, ...extra]), 'vgg19.safetensors', 2);
  assert.equal(vgg.stateDict().map(([n]) => n), base.map((t) => t.name));
  for (const [name, t] of vgg.stateDict()) assert.equal([...(await t.read())], [...(base.find((b) => b.name === name)!.data as Float32Array)], name);
  assert.is(vgg.features(gpu(e, uniform([1, 3, 4, 4], 0, 1, rng))).length, 2);
  vgg.dispose();
  // just the features Sequential (no prefix) loads too; maxTap 1 needs only features.0
  const bare = base.map((t) => ({ ...t, name: t.name.replace('features.', '') }));
  loadVgg(e, serializeSafetensors(bare), 'bare', 2).dispose();
  loadVgg(e, serializeSafetensors(base.slice(0, 2)), 'one', 1).dispose();

  const src = 'vgg19.safetensors';
  assert.throws(() => loadVgg(e, serializeSafetensors(base), src, 3), /vgg19\.safetensors: missing tensor 'features\.7\.weight' \(VGG-19 up to relu3_1 needs it\)/);
  assert.throws(() => loadVgg(e, serializeSafetensors(base.filter((t) => t.name !== 'features.2.bias')), src, 2), /missing tensor 'features\.2\.bias'/);
  const bad = base.map((t) => (t.name === 'features.5.weight' ? { ...t, shape: [64, 64, 3, 3], data: new Float32Array(64 * 64 * 9) } : t));
  assert.throws(() => loadVgg(e, serializeSafetensors(bad), src, 2), /tensor 'features\.5\.weight' has shape \[64,64,3,3\], expected \[128,64,3,3\]/);
  assert.throws(() => loadVgg(e, serializeSafetensors(extra), src, 2), /missing tensor 'features\.0\.weight' \(not a torchvision VGG-19/);
  assert.throws(() => loadVgg(e, new Uint8Array(4), 'cut.safetensors', 2), /cut\.safetensors/);
});

// ---- the dual loss ------------------------------------------------------------------------------

/** The dual loss of src/train/contrastive.ts, read off its header, in float64. */
function refDual(
  ex: Tiny,
  x: Record<'realRainy' | 'realRain' | 'realFinal' | 'synthRainy' | 'synthClean', RefTensor>,
  o: DualContrastiveOptions = {},
  extraRef?: Partial<Record<'bgPositives' | 'bgNegatives' | 'rainPositives' | 'rainNegatives', RefTensor[]>>,
) {
  const feats = (t: RefTensor) => V.refConvFeatures(t, ex.ref, false);
  const gain = o.rainGain ?? 1;
  const shift = o.rainShift ?? 0.5;
  const m = (t: RefTensor) => V.affine(t, gain, shift);
  const rs = V.affine(x.synthClean, -1, 0);
  rs.data.forEach((v, i) => (rs.data[i] = x.synthRainy.data[i] + v));
  const aug = (t: RefTensor, k: string) => (k.toLowerCase().includes('flip') ? V.flipW(t) : k.toLowerCase().includes('roll') ? V.rollBatch(t, 1) : t);
  const plus = (a: RefTensor, b: RefTensor) => refTensor(a.shape, a.data.map((v, i) => v + b.data[i]));
  const ex_ = (k: 'bgPositives' | 'bgNegatives' | 'rainPositives' | 'rainNegatives') => extraRef?.[k] ?? [];
  const bgP = [...(o.bgPositives ?? ['clean']).map((k) => aug(x.synthClean, k)), ...ex_('bgPositives')];
  const bgN = [...(o.bgNegatives ?? ['rainy', 'rerain']).map((k) => (k === 'rainy' ? x.realRainy : plus(x.realFinal, aug(rs, k)))), ...ex_('bgNegatives')];
  const rP = [...(o.rainPositives ?? ['synth', 'flip', 'roll']).map((k) => m(aug(rs, k))), ...ex_('rainPositives').map(m)];
  const rN = [...(o.rainNegatives ?? ['clean', 'output']).map((k) => m(k === 'clean' ? x.synthClean : k === 'output' ? x.realFinal : x.realRainy)), ...ex_('rainNegatives').map(m)];
  const w = o.layerWeights ?? ex.layerWeights;
  const bg = V.contrastiveRatio(feats(x.realFinal), bgP.map(feats), bgN.map(feats), w);
  const rain = V.contrastiveRatio(feats(m(x.realRain)), rP.map(feats), rN.map(feats), w);
  return { bg, rain, total: (o.bgWeight ?? 0.1) * bg + (o.rainWeight ?? 0.1) * rain };
}

test('dualContrastiveLoss matches its design in float64; gradients reach only the two anchors', async () => {
  const e = await engine();
  const ex = tinyExtractor(e);
  const shape = [3, 3, 6, 8];
  const clean = uniform(shape, 0, 1, rng);
  const rain = uniform(shape, 0, 0.4, rng);
  const x = {
    realRainy: uniform(shape, 0, 1, rng),
    realRain: uniform(shape, -0.2, 0.4, rng),
    realFinal: uniform(shape, 0, 1, rng),
    synthRainy: refTensor(shape, clean.data.map((v, i) => v + rain.data[i])),
    synthClean: clean,
  };
  const extraRef = { bgPositives: [uniform(shape, 0, 1, rng)], rainNegatives: [uniform(shape, -0.5, 0.5, rng), uniform(shape, -0.5, 0.5, rng)] };
  const optionSets: DualContrastiveOptions[] = [
    {},
    { bgWeight: 0.3, rainWeight: 2, rainGain: 2, rainShift: 0, layerWeights: [1, 0.25], bgPositives: ['clean', 'cleanFlip', 'cleanRoll'], bgNegatives: ['rainy', 'rerain', 'rerainFlip', 'rerainRoll'], rainPositives: ['roll'], rainNegatives: ['clean', 'output', 'rainy'] },
    { maxBatchPixels: 1 }, // every sample through the extractor on its own
    { extra: {} }, // extras below
  ];
  for (const o of optionSets) {
    const ts = Object.fromEntries(Object.entries(x).map(([k, v]) => [k, gpu(e, v, true)])) as Record<keyof typeof x, Tensor>;
    const useExtra = o.extra !== undefined;
    if (useExtra) o.extra = { bgPositives: extraRef.bgPositives.map((r) => gpu(e, r)), rainNegatives: extraRef.rainNegatives.map((r) => gpu(e, r)) };
    const got = await tidy(async () => {
      const l = dualContrastiveLoss(ex, ts, o);
      backward(l.total);
      return { bg: await l.bg.item(), rain: await l.rain.item(), total: await l.total.item() };
    });
    const ref = refDual(ex, x, o, useExtra ? extraRef : undefined);
    for (const k of ['bg', 'rain', 'total'] as const) assert.ok(allclose([got[k]], [ref[k]], FWD.rtol, FWD.atol).ok, `option set ${optionSets.indexOf(o)} (${Object.keys(o).join(', ') || 'defaults'}) ${k}: ${got[k]} vs ${ref[k]}`);
    assert.ok(ts.realFinal.grad && ts.realRain.grad, 'the anchors got no gradient');
    for (const k of ['realRainy', 'synthRainy', 'synthClean'] as const) assert.is(ts[k].grad, null, `${k} received a gradient`);
    for (const t of Object.values(ts)) {
      t.grad?.dispose();
      t.dispose();
    }
  }
  // a directional check of the total's gradient w.r.t. the rain anchor
  const ts = Object.fromEntries(Object.entries(x).map(([k, v]) => [k, gpu(e, v, true)])) as Record<keyof typeof x, Tensor>;
  await tidy(async () => backward(dualContrastiveLoss(ex, ts).total));
  const g = await ts.realRain.grad!.read();
  const d = directionalCheck((v) => refDual(ex, { ...x, realRain: refTensor(shape, v) }).total, x.realRain.data, Float64Array.from(g), mulberry32(5), 1e-6);
  assert.ok(d.relErr < 1e-2, `d total / d realRain: analytic ${d.analytic}, numeric ${d.numeric}`);
  // a zero weight skips its branch
  const only = await tidy(async () => {
    const l = dualContrastiveLoss(ex, ts, { rainWeight: 0 });
    return [await l.rain.item(), await l.total.item(), await l.bg.item()];
  });
  assert.is(only[0], 0);
  assert.ok(Math.abs(only[1] - 0.1 * only[2]) <= 1e-6 * Math.abs(only[1]));
  assert.throws(() => dualContrastiveLoss(ex, ts, { rainPositives: ['flop' as 'flip'] }), /unknown rainPositives entry 'flop'/);
  assert.throws(() => dualContrastiveLoss(ex, { ...ts, synthClean: gpu(e, uniform([2, 3, 6, 8], 0, 1, rng)) }), /'synthClean' has shape \[2,3,6,8\] but 'realRainy' has \[3,3,6,8\]/);
  for (const t of Object.values(ts)) {
    t.grad?.dispose();
    t.dispose();
  }
  ex.dispose();
});

test('dualContrastiveLoss on a micro DRD-Net with a random VGG: the gradient reaches model parameters', async () => {
  const e = await engine();
  const model = new DrdNet(e, preset('micro'), 11);
  const vgg = randomVgg(e, 3, 2);
  const shape = [2, 3, 8, 8];
  const clean = uniform(shape, 0, 1, rng);
  const synthRainy = refTensor(shape, clean.data.map((v) => Math.min(1, v + (rng() < 0.2 ? 0.5 : 0))));
  const rainy = uniform(shape, 0, 1, rng);
  const step = () =>
    tidy(async () => {
      const o = gpu(e, rainy);
      const out = model.forward(o);
      const l = dualContrastiveLoss(vgg, { realRainy: o, realRain: out.rain, realFinal: out.final, synthRainy: gpu(e, synthRainy), synthClean: gpu(e, clean) });
      backward(l.total);
      const v = await l.total.item();
      assert.ok(Number.isFinite(v) && v > 0, `total ${v}`);
    });
  await step();
  for (const name of ['rain_net.0.rain_net_head.0.weight', 'rain_net.0.tail.0.weight', 'back_net.0.tail.0.bias']) {
    const p = model.namedParameters().find(([n]) => n === name)![1];
    assert.ok(p.grad, `${name} has no gradient`);
    const g = await p.grad!.read();
    assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite), `${name} gradient is zero or not finite`);
  }
  for (const [name, t] of vgg.stateDict()) assert.is(t.grad, null, `${name} got a gradient`);
  // a second step leaves no tensor behind but the accumulated gradients
  zeroGrad(model.parameters());
  const live = e.memory().liveBuffers;
  await step();
  zeroGrad(model.parameters());
  assert.is(e.memory().liveBuffers, live, 'GPU buffers leaked');
  model.dispose();
  vgg.dispose();
});

test.run();
