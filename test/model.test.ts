// The model end to end: weights round trip and validation, tiled inference equal to untiled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeConfig, preset } from '../src/model/config.js';
import { derainImage, planTiles } from '../src/model/derain.js';
import { DrdNet } from '../src/model/drdnet.js';
import { CONFIG_KEY, loadModel, weightsToBytes } from '../src/model/weights.js';
import { assertMessage, errorOf, rejectionOf } from './errors.js';
import { parseSafetensors, serializeSafetensors, type NamedSerializableTensor } from '../src/io/safetensors.js';
import { engine } from './helpers.js';
import { Rng } from '../src/util/rng.js';

function randomImage(w: number, h: number, seed: number) {
  const rng = new Rng(seed);
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => rng.next()) };
}

test('weights round trip through safetensors with PyTorch names and metadata', async () => {
  const e = await engine();
  const m = new DrdNet(e, makeConfig(8, 2, 1, { dilations: [1, 2, 4], detailInput: '2O-R' }), 5);
  m.batchNorms()[0][1].numBatchesTracked = 7;
  const bytes = await weightsToBytes(m);
  const file = parseSafetensors(bytes);
  assert.ok(file.tensors.has('back_net.0.back_residual_blocks.0.back_residual_block_body.3.conv4.0.weight'));
  assert.equal(file.tensors.get('rain_net.0.rain_residual_blocks.1.rain_residual_block_body.2.weight')!.shape, [8, 1]);
  assert.is(file.tensors.get('rain_net.0.rain_net_body.1.num_batches_tracked')!.dtype, 'I64');
  const { model: m2 } = loadModel(e, bytes, 'roundtrip');
  assert.equal(m2.config.dilations, [1, 2, 4]);
  assert.is(m2.config.detailInput, '2O-R');
  assert.is(m2.batchNorms()[0][1].numBatchesTracked, 7);
  const a = m.stateDict();
  const b = m2.stateDict();
  for (let i = 0; i < a.length; i++) assert.equal([...(await a[i][1].read())], [...(await b[i][1].read())], a[i][0]);
  m.dispose();
  m2.dispose();
});

test('weights errors name the offending tensor', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 1);
  const bytes = await weightsToBytes(m);
  m.dispose();
  const file = parseSafetensors(bytes);
  const entries = (): NamedSerializableTensor[] =>
    [...file.tensors].map(([name, t]) => ({ name, dtype: t.dtype as 'F32', shape: t.shape, data: t.dtype === 'I64' ? new BigInt64Array(t.data.slice().buffer) : new Float32Array(t.data.slice().buffer) as never }));
  const without = entries().filter((t) => t.name !== 'rain_net.0.tail.0.bias');
  assert.throws(() => loadModel(e, serializeSafetensors(without), 'w.safetensors'), /w\.safetensors: missing tensor 'rain_net\.0\.tail\.0\.bias'/);
  const misshaped = entries().map((t) => (t.name === 'rain_net.0.tail.0.bias' ? { ...t, shape: [2], data: new Float32Array(2) } : t));
  assert.throws(() => loadModel(e, serializeSafetensors(misshaped), 'w'), /tensor 'rain_net\.0\.tail\.0\.bias' has shape \[2\], expected \[3\] for a (micro )?4-channel 1\+1-block model \(channels from 'rain_net\.0\.rain_net_head\.0\.weight'/);
  // When the head is the odd tensor: with the metadata's width the head itself is named; without
  // metadata the others are reported against the architecture it implies.
  const oddHead = entries().map((t) => (t.name === 'rain_net.0.rain_net_head.0.weight' ? { ...t, shape: [5, 3, 3, 3], data: new Float32Array(135) } : t));
  assert.throws(() => loadModel(e, serializeSafetensors(oddHead, file.metadata), 'w'), /tensor 'rain_net\.0\.rain_net_head\.0\.weight' has shape \[5,3,3,3\], expected \[4,3,3,3\] \(metadata 'semi_drdnet\.config' gives 4 channels\)/);
  assert.throws(() => loadModel(e, serializeSafetensors(oddHead), 'w'), /has shape \[4[^\]]*\], expected \[5[^\]]*\] for a (micro )?5-channel .*channels from 'rain_net\.0\.rain_net_head\.0\.weight'/);
  const transposedHead = entries().map((t) => (t.name === 'rain_net.0.rain_net_head.0.weight' ? { ...t, shape: [3, 4, 3, 3] } : t));
  assert.throws(() => loadModel(e, serializeSafetensors(transposedHead), 'w'), /tensor 'rain_net\.0\.rain_net_head\.0\.weight' has shape \[3,4,3,3\], expected \[C,3,3,3\]/);
  const extra = [...entries(), { name: 'something.else', dtype: 'F32' as const, shape: [1], data: new Float32Array(1) }];
  assert.throws(() => loadModel(e, serializeSafetensors(extra), 'w'), /unexpected tensor 'something\.else'/);
  const withState = [...entries(), { name: 'optim.x.m', dtype: 'F32' as const, shape: [1], data: new Float32Array(1) }];
  loadModel(e, serializeSafetensors(withState), 'w').model.dispose();
  assert.throws(() => loadModel(e, bytes.slice(0, bytes.length - 10), 'cut.safetensors'), /cut\.safetensors/);
});

/** An image whose halves differ in brightness, so every tile's mean differs from the image's. */
function unevenImage(w: number, h: number, seed: number) {
  const img = randomImage(w, h, seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i % w < w / 2 ? 0.15 : 0.85) + 0.15 * (img.data[i] - 0.5);
  return img;
}

/** Large SE weights, so a gate follows its channel's mean closely (random init makes them near-constant). */
function steepGates(m: DrdNet, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, p] of m.namedParameters()) {
    if (!/rain_residual_block_body\.[02]\.weight$/.test(name)) continue;
    p.write(Float32Array.from({ length: p.size }, () => 8 * (rng.next() - 0.5)));
  }
}

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i])), 0);

test('tiled inference equals untiled inference, with SE gates that follow the image', async () => {
  const e = await engine();
  // Two hidden units: with one, the ReLU often leaves a gate at a constant sigmoid(0).
  for (const [config, label] of [[makeConfig(4, 2, 1, { seHidden: 2 }), 'detail input O'], [makeConfig(4, 2, 1, { seHidden: 2, detailInput: '2O-R' }), 'detail input 2O-R']] as const) {
    const m = new DrdNet(e, config, 3);
    steepGates(m, 4);
    // non-default running statistics make eval-mode BN do real work
    for (const [, bn] of m.batchNorms()) {
      bn.runningMean.write(Float32Array.from({ length: 4 }, (_, i) => 0.1 * i - 0.1));
      bn.runningVar.write(Float32Array.from({ length: 4 }, (_, i) => 0.5 + 0.3 * i));
    }
    const img = unevenImage(45, 37, 11);
    const whole = await derainImage(m, img);
    const plan = planTiles(m, 45, 37, { tile: 16 });
    assert.is(plan.tiles, 9);
    for (const stateBudget of [undefined, 0]) {
      let tiles = 0;
      const tiled = await derainImage(m, img, { tile: 16, stateBudget, onTile: () => tiles++ });
      assert.is(tiles, 9);
      const worst = maxDiff(whole.data, tiled.data);
      assert.ok(worst <= 1e-4, `${label}, states ${stateBudget === 0 ? 'in CPU memory' : 'on the GPU'}: tiled differs from untiled by ${worst}`);
    }
    // The check can fail: tiles gated by their own means (no stages) differ by far more.
    Object.defineProperty(m, 'gateStages', { value: () => null });
    const naive = maxDiff(whole.data, (await derainImage(m, img, { tile: 16 })).data);
    assert.ok(naive > 1e-3, `${label}: per-tile gates differ from the image's by only ${naive}`);
    m.dispose();
  }
});

/** x mirrored left-right and/or up-down, pixel by pixel (the test's own, not derain's). */
function mirrored(img: { width: number; height: number; data: Float32Array }, lr: boolean, ud: boolean) {
  const { width: w, height: h } = img;
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / (w * h)), y = Math.floor(i / w) % h, x = i % w;
    data[i] = img.data[c * w * h + (ud ? h - 1 - y : y) * w + (lr ? w - 1 - x : x)];
  }
  return { width: w, height: h, data };
}

test('flip self-ensemble averages the mirrored runs, tiled or not, and keeps alpha; other sizes are refused', async () => {
  const e = await engine();
  const m = new DrdNet(e, makeConfig(4, 2, 1, { seHidden: 2 }), 7);
  steepGates(m, 4);
  const img = { ...unevenImage(37, 29, 3), alpha: Float32Array.from({ length: 37 * 29 }, (_, i) => (i % 5) / 4) };
  const runs: Float32Array[] = [];
  for (const [lr, ud] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    runs.push(mirrored(await derainImage(m, mirrored(img, lr, ud)), lr, ud).data);
  }
  const mean = (k: number) => runs[0].map((_, i) => runs.slice(0, k).reduce((s, r) => s + r[i], 0) / k);
  for (const ensemble of [2, 4] as const) {
    for (const tile of [undefined, 16]) {
      const seen: Array<[number, number]> = [];
      const got = await derainImage(m, img, { ensemble, tile, onTile: (d, n) => seen.push([d, n]) });
      const worst = maxDiff(got.data, mean(ensemble));
      assert.ok(worst <= 1e-5, `ensemble ${ensemble}, tile ${tile}: differs from the mean of the mirrored runs by ${worst}`);
      assert.equal(got.alpha, img.alpha);
      const tiles = planTiles(m, 37, 29, { tile }).tiles;
      assert.equal(seen, Array.from({ length: ensemble * tiles }, (_, i) => [i + 1, ensemble * tiles]));
    }
  }
  // The check can fail: the network is not mirror-symmetric, so the mean differs from one run.
  assert.ok(maxDiff(mean(4), runs[0]) > 1e-3, 'the mirrored runs agree: the test cannot tell an ensemble from one run');
  assertMessage(await rejectionOf(derainImage(m, img, { ensemble: 3 as never })), 'ensemble must be 1, 2 or 4', 'got 3');
  m.dispose();
});

test('a greyscale photo comes out greyscale: the mean of what the network gives per channel', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 3);
  const colour = randomImage(20, 14, 4);
  const P = 20 * 14;
  const grey = { ...colour, data: colour.data.slice() };
  grey.data.copyWithin(P, 0, P);
  grey.data.copyWithin(2 * P, 0, P);
  const got = await derainImage(m, grey);
  // The same network output per channel, before the projection: a colour image whose three planes are equal.
  const raw = await derainImage(m, { ...grey, data: grey.data.map((v, i) => (i === 2 * P ? v + 1e-3 : v)) });
  let spread = 0;
  for (let i = 1; i < P; i++) {
    assert.is(got.data[i], got.data[P + i]);
    assert.is(got.data[i], got.data[2 * P + i]);
    assert.ok(Math.abs(got.data[i] - (raw.data[i] + raw.data[P + i] + raw.data[2 * P + i]) / 3) < 1e-4, `pixel ${i}`);
    spread = Math.max(spread, Math.abs(raw.data[i] - raw.data[P + i]));
  }
  assert.ok(spread > 1e-4, 'the network alone gives channels that differ (else this test shows nothing)');
  // A colour photo is left as the network gives it.
  const c = await derainImage(m, colour);
  assert.ok(c.data.some((v, i) => i < P && v !== c.data[P + i]));
  m.dispose();
});

test('tile plan follows the binding limit', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('tiny'), 1);
  const p = planTiles(m, 4000, 3000);
  assert.ok(p.tiles > 1, 'a 12 MP image is tiled');
  assert.ok((p.core + 2 * p.halo) ** 2 * 16 * 4 <= e.limits.maxStorageBufferBindingSize);
  assert.is(planTiles(m, 64, 48).tiles, 1);
  // A tile asked for beyond the limit is taken down to the largest one, even one covering the image;
  // within it, as given.
  for (const tile of [p.core + 1, 5000]) assert.equal(planTiles(m, 4000, 3000, { tile }), p);
  assert.is(planTiles(m, 4000, 3000, { tile: 500 }).core, 500);
  assert.is(planTiles(m, 64, 48, { tile: 5000 }).tiles, 1);
  m.dispose();
});

/** The micro model's file with one value of one tensor replaced (or the metadata changed). */
async function tamperedWeights(name: string, value: number, metadata?: Record<string, string>): Promise<Uint8Array> {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 1);
  const bytes = await weightsToBytes(m);
  m.dispose();
  const file = parseSafetensors(bytes);
  const list: NamedSerializableTensor[] = [...file.tensors].map(([n, t]) => {
    const data = t.dtype === 'I64' ? new BigInt64Array(t.data.slice().buffer) : new Float32Array(t.data.slice().buffer);
    if (n === name) (data as Float32Array)[0] = value;
    return { name: n, dtype: t.dtype as 'F32', shape: t.shape, data: data as Float32Array };
  });
  return serializeSafetensors(list, metadata ?? file.metadata);
}

const BAD_VALUES: Array<[string, number, string]> = [
  ['rain_net.0.tail.0.weight', NaN, 'NaN'],
  ['rain_net.0.rain_net_head.0.bias', Infinity, 'Infinity'],
  ['rain_net.0.rain_net_body.1.running_var', NaN, 'NaN'],
  ['rain_net.0.rain_net_body.1.running_var', -0.5, 'negative value -0.5'],
  ['rain_net.0.tail.0.weight', 3e38, 'beyond'],
];

test('weights with NaN, Inf, negative variance or absurd values are refused at load, naming the tensor', async () => {
  const e = await engine();
  for (const [name, value, what] of BAD_VALUES) {
    const bytes = await tamperedWeights(name, value);
    assertMessage(errorOf(() => loadModel(e, bytes, 'bad.safetensors')), 'bad.safetensors', `'${name}'`, what);
  }
  const nullConfig = await tamperedWeights('', 0, { [CONFIG_KEY]: 'null' });
  assertMessage(errorOf(() => loadModel(e, nullConfig, 'null.safetensors')), 'null.safetensors', CONFIG_KEY, 'must be a JSON object');
});

test('a model with NaN in its BN statistics is never saved, and its non-finite output is an error', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 1);
  const [name, bn] = m.batchNorms()[0]!;
  bn.runningMean.write([NaN, 0, 0, 0]);
  assertMessage(await rejectionOf(weightsToBytes(m)), 'cannot save weights', `'${name}.running_mean'`, 'NaN');
  assertMessage(await rejectionOf(derainImage(m, randomImage(20, 18, 1))), "the model's output is NaN", 'weights are broken');
  m.dispose();
});

test('inference leaves the caller\'s module mode unchanged, and tiles below 16 px get their own message', async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 1);
  const modes = () => m.namedModules().map(([, x]) => x.training);
  m.train(true);
  m.batchNorms()[0]![1].training = false; // a mixed state, as a caller freezing one BN would leave it
  const before = modes();
  await derainImage(m, randomImage(20, 18, 2));
  assert.equal(modes(), before);
  m.eval();
  await derainImage(m, randomImage(20, 18, 2));
  assert.ok(modes().every((t) => !t));
  assertMessage(await rejectionOf(derainImage(m, randomImage(40, 40, 2), { tile: 8 })), 'tile size must be an integer of at least 16', 'got 8');
  assert.ok(modes().every((t) => !t), 'restored after an error too');
  m.dispose();
});

test.run();
