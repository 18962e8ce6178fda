// The library surface: composable layers against float64 references, module save/load, one-call
// inference, and the errors a user of the API meets (two engines, a custom op that does not compile).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { bundledWeightsPath, loadDerainer } from '../src/api/node.js';
import { defineOp, isGradEnabled, noGrad } from '../src/graph/autograd.js';
import { BatchNorm2d, Conv2d, DilatedContextBlock, PReLU, Sequential, SqueezeExcite } from '../src/graph/layers.js';
import { Module } from '../src/graph/module.js';
import { checkpointBytes } from '../src/train/checkpoint.js';
import { channelPlan, channelTuning } from '../src/kernels/batchnorm.js';
import { convTuning } from '../src/kernels/conv2d.js';
import { Trainer, type BatchSource, type DerainModule, type PairBatch } from '../src/train/trainer.js';
import { add, l1Loss, sub } from '../src/graph/ops.js';
import { backward } from '../src/graph/autograd.js';
import { Adam } from '../src/train/optim.js';
import type { Engine } from '../src/gpu/runtime.js';
import { loadModule, saveModule } from '../src/graph/state.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { parseSafetensors, serializeSafetensors, type NamedSerializableTensor } from '../src/io/safetensors.js';
import { derainImage } from '../src/model/derain.js';
import type { Image } from '../src/io/image.js';
import { loadModel } from '../src/model/weights.js';
import { Rng } from '../src/util/rng.js';
import { assertMessage, errorOf, rejectionOf } from './errors.js';
import { checkOp } from './gradcheck-gpu.js';
import { engine, engineWith } from './helpers.js';
import * as R from './ref/ops.js';
import { mulberry32, randn, refTensor, type RefTensor } from './ref/tensor.js';

async function ref(t: Tensor): Promise<RefTensor> {
  return refTensor(t.shape, await t.read());
}

test('Sequential(DilatedContextBlock, PReLU, SqueezeExcite) matches its float64 composition, values and input gradient', async () => {
  const e = await engine();
  const C = 6;
  const net = new Sequential(new DilatedContextBlock(e, new Rng(3), C, [1, 2, 3]), new PReLU(e, C, 0.15), new SqueezeExcite(e, new Rng(4), C, 2));
  const [dcb, act, se] = net.items as [DilatedContextBlock, PReLU, SqueezeExcite];
  const branches = await Promise.all(dcb.branches.map(async (b) => ({ w: await ref(b.weight), b: await b.bias!.read(), d: b.opts.dilation as number })));
  const fuse = { w: await ref(dcb.fuse.weight), b: await dcb.fuse.bias!.read() };
  const slopes = await act.weight.read();
  const [w1, w2] = [await ref(se.fc1.weight), await ref(se.fc2.weight)];
  const composed = (x: RefTensor) => {
    const cat = R.concat(branches.map((b) => R.conv2d(x, b.w, b.b, { pad: b.d, dilation: b.d })));
    return R.squeezeExcite(R.prelu(R.conv2d(cat, fuse.w, fuse.b), slopes), w1, w2);
  };
  await checkOp(e, { name: 'sequential', inputs: [randn([2, C, 7, 9], mulberry32(5))], gpu: ([x]) => net.forward(x), ref: ([x]) => composed(x), directional: true });
  net.dispose();
});

test('SqueezeExcite and DilatedContextBlock carry DRD-Net state_dict names', async () => {
  const e = await engine();
  const se = new SqueezeExcite(e, new Rng(1), 32);
  assert.equal(se.stateDict().map(([n, t]) => `${n}:${t.shape.join('x')}`), ['0.weight:2x32', '2.weight:32x2']);
  const dcb = new DilatedContextBlock(e, new Rng(1), 4, [1, 3]);
  assert.equal(dcb.stateDict().map(([n]) => n), ['conv1.0.weight', 'conv1.0.bias', 'conv2.0.weight', 'conv2.0.bias', 'conv3.0.weight', 'conv3.0.bias']);
  assertMessage(errorOf(() => new Sequential(new PReLU(e, 2), new Rng(1) as never)), 'Sequential', 'item 1', 'forward');
  se.dispose();
  dcb.dispose();
});

test('saveModule/loadModule: round trip with BatchNorm counters; wrong, missing, extra or non-finite tensors refused with nothing written', async () => {
  const e = await engine();
  const make = (seed: number) => new Sequential(new DilatedContextBlock(e, new Rng(seed), 3, [1, 2]), new BatchNorm2d(e, 3));
  const a = make(1);
  const x = Tensor.fromData(e, randn([2, 3, 5, 5], mulberry32(2)).data, [2, 3, 5, 5]);
  tidy(() => a.forward(x)); // training mode: updates running statistics and the counter
  const bytes = await saveModule(a);
  const file = parseSafetensors(bytes);
  assert.equal(file.tensors.get('1.num_batches_tracked')?.dtype, 'I64');
  const b = make(9);
  loadModule(b, bytes);
  a.eval();
  b.eval();
  assert.equal(await tidy(() => b.forward(x)).read(), await tidy(() => a.forward(x)).read());
  assert.is((b.items[1] as BatchNorm2d).numBatchesTracked, 1);

  const before = await b.stateDict()[0][1].read();
  // Every tensor as F32 (num_batches_tracked left out: it is optional), edited per case.
  const tensors: NamedSerializableTensor[] = [...file.tensors]
    .filter(([, t]) => t.dtype === 'F32')
    .map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: new Float32Array(t.data.slice().buffer) }));
  const variant = (f: (ts: NamedSerializableTensor[]) => NamedSerializableTensor[]) => serializeSafetensors(f(tensors));
  const f32 = (t: NamedSerializableTensor) => t.data as Float32Array;
  const cases: Array<[Uint8Array, string[]]> = [
    [variant((ts) => ts.map((t) => (t.name === '0.conv2.0.weight' ? { ...t, data: Float32Array.of(...f32(t).slice(1), Number.NaN) } : t))), ["'0.conv2.0.weight'", 'NaN']],
    [variant((ts) => ts.map((t) => (t.name === '1.running_var' ? { ...t, data: Float32Array.of(1, -0.5, 1) } : t))), ["'1.running_var'", 'negative']],
    [variant((ts) => ts.filter((t) => t.name !== '1.bias')), ['missing', "'1.bias'"]],
    [variant((ts) => [...ts, { name: 'extra.weight', dtype: 'F32', shape: [1], data: Float32Array.of(1) }]), ['unexpected', "'extra.weight'"]],
    [variant((ts) => ts.map((t) => (t.name === '1.weight' ? { ...t, shape: [1, 3] } : t))), ["'1.weight'", 'shape']],
  ];
  for (const [bad, parts] of cases) assertMessage(errorOf(() => loadModule(b, bad, { source: 'bad.safetensors' })), 'bad.safetensors', ...parts);
  assert.equal(await b.stateDict()[0][1].read(), before, 'a refused file changed the module');
  for (const m of [a, b]) m.dispose();
  x.dispose();
});

test('loadDerainer: bundled weights by default, same result as derainImage, module mode left as it was, errors name the source', async () => {
  const e = await engine();
  const d = await loadDerainer({ engine: e });
  assert.is(d.source, bundledWeightsPath());
  const img = { width: 21, height: 13, data: Float32Array.from({ length: 3 * 21 * 13 }, (_, i) => ((i * 37) % 101) / 101) };
  d.model.train();
  const got = await d.derain(img, { tile: 16 });
  assert.ok(d.model.training, 'derain switched the caller\'s model to eval mode');
  const { model } = loadModel(e, readFileSync(bundledWeightsPath()), 'bundled');
  const want = await derainImage(model, img);
  // Tiled (SE gates pooled over all tiles) vs whole: equal up to float summation order.
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i] - want.data[i]));
  assert.ok(worst <= 1e-5, `tiled derain differs from derainImage by ${worst}`);
  const rgba = { width: 2, height: 1, data: Uint8ClampedArray.of(255, 0, 0, 255, 0, 255, 0, 255) } as unknown as ImageData;
  assert.is((await d.derain(rgba)).data.length, 6);
  d.dispose();
  model.dispose();
  await assertMessage(await rejectionOf(d.derain(img)), 'disposed');
  assertMessage(await rejectionOf(loadDerainer({ engine: e, weights: '/nonexistent/w.safetensors' })), '/nonexistent/w.safetensors');
  assertMessage(await rejectionOf(loadDerainer({ engine: e, weights: new Uint8Array(8) })), 'weights bytes');
  // Inputs that would come out as garbage or NaN are refused, not blamed on the weights.
  const d2 = await loadDerainer({ engine: e });
  const nan = { ...img, data: img.data.slice() };
  nan.data[5] = NaN;
  assertMessage(await rejectionOf(d2.derain(nan)), 'derain input', 'NaN at index 5');
  assertMessage(await rejectionOf(derainImage(d2.model, nan)), 'derain input', 'NaN');
  assertMessage(await rejectionOf(d2.derain({ ...img, data: img.data.map((v) => v * 255) })), 'divide 8-bit samples by 255');
  assertMessage(await rejectionOf(d2.derain({ ...img, data: img.data.map((v, i) => (i === 7 ? -3e38 : v)) })), 'derain input', 'values down to -3');
  // derainImage checks what derain checks, and names a value of the wrong type as such.
  const bad: Array<[unknown, ...string[]]> = [
    [{ width: 21, height: 13, data: new Float32Array(100) }, 'data must be a Float32Array of 3*13*21 = 819 values', 'got a Float32Array of 100'],
    [{ ...img, data: new Uint8Array(819) }, 'got a Uint8Array of 819'],
    [{ width: 0, height: 0, data: new Float32Array(0) }, 'width must be a positive integer, got 0'],
    [{ ...img, width: '21' }, "width must be a positive integer, got '21' (a string)"],
  ];
  for (const [input, ...parts] of bad) {
    assertMessage(await rejectionOf(derainImage(d2.model, input as Image)), 'derain input', ...parts);
    assertMessage(await rejectionOf(d2.derain(input as Image)), 'derain input', ...parts);
  }
  assertMessage(await rejectionOf(d2.derain(img, { tile: '16' as never })), "got '16' (a string)");
  assertMessage(await rejectionOf(d2.derain(img, { onProgress: 5 as never })), 'onProgress must be a function, got 5');
  assertMessage(await rejectionOf(d2.derain(img, { stateBudget: -1 })), 'stateBudget must be a number of bytes >= 0', 'got -1');
  // A dispose that overtakes a run: the run says so, and nothing of it stays on the GPU.
  await e.sync();
  const live = e.memory().liveBuffers;
  const d3 = await loadDerainer({ engine: e });
  const run = d3.derain(img);
  d3.dispose();
  assertMessage(await rejectionOf(run), 'Derainer was disposed during the call');
  await e.sync();
  assert.is(e.memory().liveBuffers, live);
  d2.dispose();
});

test('nonsense hyperparameters are refused where they are given, naming them', async () => {
  const e = await engine();
  const p = Tensor.fromData(e, [1, 2], [2]).keep();
  assertMessage(errorOf(() => new Adam([p], { lr: NaN })), 'Adam', 'lr', 'NaN');
  assertMessage(errorOf(() => new Adam([p], { lr: 1e-3, betas: [0.9, 1] })), 'betas');
  const m = new Sequential(new Conv2d(e, new Rng(1), 3, 3, 3, { padding: 1 }));
  const model = { parameters: () => m.parameters(), train: () => model, forward: (x: Tensor) => ({ derained: m.forward(x), final: m.forward(x) }) } as unknown as DerainModule;
  const none = {} as BatchSource<PairBatch>;
  assertMessage(errorOf(() => new Trainer(e, model, none, { batch: 2, patch: 16, lr: -1, milestones: [], gamma: 0.1, realBn: 'batch' })), 'lr must be a finite number > 0, got -1');
  assertMessage(errorOf(() => new Trainer(e, model, none, { batch: 0, patch: 16, lr: 1e-3, milestones: [], gamma: 0.1, realBn: 'batch' })), 'batch must be an integer >= 1, got 0');
  const t = new Trainer(e, model, none, { batch: 2, patch: 16, lr: 1e-3, milestones: [], gamma: 0.1, realBn: 'batch' });
  t.dispose();
  m.dispose();
  p.dispose();
  const d = await loadDerainer({ tune: false });
  assert.is(d.engine.tune, false);
  d.dispose();
});

test('an engine on an adopted device can be collected once destroyed, and holds the GPU object it is given', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const shared = await engine();
  const keep = {};
  // One engine's whole life in its own frame (a suspended async frame keeps its last locals).
  const life = async (): Promise<WeakRef<object>> => {
    const a = await engineWith({ device: shared.device, gpu: keep });
    assert.is(a.gpu, keep);
    const d = await loadDerainer({ engine: a });
    await d.derain({ width: 8, height: 8, data: new Float32Array(192).fill(0.5) });
    d.dispose();
    a.destroy();
    return new WeakRef(a);
  };
  const refs = [await life(), await life(), await life()];
  for (let i = 0; i < 20 && refs.some((r) => r.deref()); i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc();
  }
  assert.equal(refs.map((r) => !!r.deref()), [false, false, false], 'destroyed engines are still reachable from the device');
  assert.not.ok(shared.lost);
});

test('two engines train interleaved async steps without interfering (tidy scopes follow async contexts)', async () => {
  const run = async (e: Engine, interleave: boolean) => {
    const net = new Sequential(new DilatedContextBlock(e, new Rng(11), 4, [1, 2]), new PReLU(e, 4), new SqueezeExcite(e, new Rng(12), 4, 2));
    const opt = new Adam(net.parameters(), { lr: 1e-2 });
    const x = Tensor.fromData(e, randn([2, 4, 6, 6], mulberry32(13)).data, [2, 4, 6, 6]);
    const target = Tensor.fromData(e, new Float32Array(2 * 4 * 6 * 6).fill(0.2), [2, 4, 6, 6]);
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) {
      losses.push(
        await tidy(async () => {
          const y = net.forward(x);
          if (interleave) await new Promise((r) => setTimeout(r, 1)); // let the other engine's step run here
          const loss = l1Loss(y, target);
          backward(loss);
          opt.step();
          opt.zeroGrad();
          return await loss.item();
        }),
      );
    }
    opt.dispose();
    net.dispose();
    for (const t of [x, target]) t.dispose();
    return losses;
  };
  const [a, b] = [await engineWith({}), await engineWith({})];
  const alone = await run(a, false);
  const [together1, together2] = await Promise.all([run(a, true), run(b, true)]);
  assert.equal(together1, alone);
  assert.equal(together2, alone);
  assert.is(a.memory().liveBytes, b.memory().liveBytes);
  a.destroy();
  b.destroy();
});

test('Trainer trains any module that maps a rainy batch to { derained, final }, with checkpoints', async () => {
  const e = await engine();
  // A researcher's own network: rain = conv(PReLU(conv(x))), derained = final = x - rain.
  class TinyDerainer extends Module implements DerainModule {
    readonly body: Sequential;
    constructor() {
      super();
      const rng = new Rng(21);
      this.body = this.child('body', new Sequential(new Conv2d(e, rng, 3, 4, 3, { padding: 1 }), new PReLU(e, 4), new Conv2d(e, rng, 4, 3, 3, { padding: 1 })));
    }
    forward(x: Tensor) {
      const rain = this.body.forward(x);
      const derained = sub(x, rain);
      return { rain, derained, final: derained };
    }
  }
  const model = new TinyDerainer();
  const rng = mulberry32(22);
  const pairs: BatchSource<PairBatch> = {
    next: (b) => {
      const clean = Float32Array.from({ length: b * 3 * 8 * 8 }, () => rng());
      return { clean, rainy: clean.map((v, i) => v + (i % 7 === 0 ? 0.5 : 0)) };
    },
    saveState: () => ({ rng: [], cursor: [] }),
    loadState: () => {},
  };
  const trainer = new Trainer(e, model, pairs, { batch: 2, patch: 8, lr: 1e-2, milestones: [], gamma: 1, realBn: 'batch' });
  const before = await model.parameters()[0].read();
  const records = [];
  for (let i = 0; i < 3; i++) records.push(await trainer.trainStep());
  assert.ok(records.every((r) => Number.isFinite(r.loss)));
  assert.not.equal(await model.parameters()[0].read(), before);
  const bytes = await checkpointBytes(model, trainer.opt, { step: 3, rng: new Uint32Array(4), epochCursor: [] });
  const file = parseSafetensors(bytes);
  assert.ok(file.tensors.has('optim.body.0.weight.m') && file.tensors.has('body.2.bias'));
  trainer.opt.dispose();
  model.dispose();
});

test('noGrad covers an async function to its end, and only its own async context', async () => {
  const e = await engine();
  const w = Tensor.fromData(e, [1, 2], [2]);
  w.requiresGrad = true;
  const tick = () => new Promise((r) => setTimeout(r, 1));
  const inside = noGrad(async () => {
    await tick();
    return add(w, w);
  });
  const outside = (async () => {
    await tick();
    return add(w, w);
  })();
  const [a, b] = await Promise.all([inside, outside]);
  assert.is(a.requiresGrad, false, 'recorded after an await inside noGrad');
  assert.is(b.requiresGrad, true, 'a concurrent context lost grad mode');
  assert.ok(isGradEnabled());
  for (const t of [a, b, w]) t.dispose();
});

test('kernel tuning state belongs to its engine (tuned configs, plan overrides)', async () => {
  const a = await engine();
  const b = await engineWith({});
  channelTuning(a).chunk = 7;
  try {
    assert.is(channelPlan(a, 1, 100).chunk, 7);
    assert.is(channelPlan(b, 1, 100).chunk, channelPlan(b, 1, 100, Infinity).chunk);
    assert.is.not(channelPlan(b, 1, 100).chunk, 7);
  } finally {
    channelTuning(a).chunk = 0;
  }
  assert.is.not(convTuning(a), convTuning(b));
  assert.is(convTuning(a), convTuning(a));
  b.destroy();
});

test('tensors of two engines in one op are refused naming the op', async () => {
  const e = await engine();
  const other = await engineWith({});
  const a = Tensor.fromData(e, [1, 2], [2]);
  const b = Tensor.fromData(other, [1, 2], [2]);
  assertMessage(errorOf(() => add(a, b)), 'add', 'two different engines');
  a.dispose();
  b.dispose();
  other.destroy();
});

test("a custom op whose WGSL does not compile is reported at its call, naming the op's label and the WGSL line", async () => {
  const e = await engine();
  const broken = defineOp<undefined>({
    name: 'broken',
    forward(_ctx, [x]) {
      const y = Tensor.empty(x.engine, x.shape);
      x.engine.dispatch({
        label: 'my-broken-op',
        code: '@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1) fn main() { y[0] = undefined_name; }',
        bindings: [{ buffer: y.buffer, size: y.size * 4 }],
        workgroups: [1],
      });
      return y;
    },
    backward: () => [null],
  });
  const x = Tensor.fromData(e, [1], [1]);
  for (let i = 0; i < 2; i++) assertMessage(errorOf(() => broken([x], undefined)), 'my-broken-op', 'WGSL error at line 2:', 'undefined_name');
  // The engine stays usable.
  assert.equal([...(await add(x, x).read())], [2]);
  x.dispose();
});

test.run();
