// Engine behaviour: batching, memory flatness, wrapping caller buffers, autograd semantics, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backward, defineOp, noGrad, zeroGrad } from '../src/graph/autograd.js';
import * as ops from '../src/graph/ops.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { Adam, SGD } from '../src/train/optim.js';
import { engine, engineWith } from './helpers.js';
import { dawnGpu, useDawn } from '../src/gpu/node.js';
import { setGpuProvider } from '../src/gpu/runtime.js';
import { matmul2d } from '../src/kernels/matmul.js';
import { assertMessage, errorOf, rejectionOf } from './errors.js';
import { checkOp } from './gradcheck-gpu.js';
import { mulberry32, randn } from './ref/tensor.js';
import * as R from './ref/ops.js';

test('many dispatches go out in few submits', async () => {
  const e = await engine();
  await e.sync();
  const d0 = e.counters.dispatches;
  const s0 = e.counters.submits;
  tidy(() => {
    let x = ops.ones(e, [64]);
    for (let i = 0; i < 200; i++) x = ops.addScalar(x, 1);
    return undefined;
  });
  await e.sync();
  const dispatches = e.counters.dispatches - d0;
  const submits = e.counters.submits - s0;
  assert.ok(dispatches >= 201, `expected >= 201 dispatches, got ${dispatches}`);
  assert.ok(submits <= Math.ceil(dispatches / e.maxDispatchesPerSubmit) + 1, `${dispatches} dispatches took ${submits} submits`);
});

test('profile: GPU time per dispatch label over several submits, the same results, and a clear refusal without timestamps', async () => {
  const e = await engine();
  const run = async () => {
    const out = tidy(() => {
      let x = ops.ones(e, [4096]);
      for (let i = 0; i < 150; i++) x = ops.addScalar(x, 1); // more dispatches than one submit holds
      return ops.mul(x, x);
    });
    const v = await out.read();
    out.dispose();
    return v[0];
  };
  if (!e.device.features.has('timestamp-query')) {
    assertMessage(await rejectionOf(e.profile(run)), 'timestamp-query');
    return;
  }
  const plain = await run();
  const d0 = e.counters.dispatches;
  const { result, kernels } = await e.profile(run);
  const dispatches = e.counters.dispatches - d0;
  assert.is(result, plain);
  assert.is(result, 151 * 151);
  assert.ok(dispatches > e.maxDispatchesPerSubmit, `${dispatches} dispatches`);
  assert.is(kernels.reduce((a, k) => a + k.count, 0), dispatches, JSON.stringify(kernels));
  const add = kernels.find((k) => k.label === 'affine'); // addScalar's kernel
  assert.ok(add && add.count === 150, JSON.stringify(kernels));
  assert.ok(kernels.every((k) => Number.isFinite(k.ms) && k.ms >= 0) && kernels.some((k) => k.ms > 0), JSON.stringify(kernels));
  for (let i = 1; i < kernels.length; i++) assert.ok(kernels[i - 1].ms >= kernels[i].ms, 'longest first');
  // Profiling ends with the call: later work records no timestamps and nests are refused.
  const d1 = e.counters.dispatches;
  assert.is(await run(), plain);
  assert.ok(e.counters.dispatches > d1);
  assertMessage(await rejectionOf(e.profile(() => e.profile(run))), 'already in progress');
  // A run that fails after recording work: that work is submitted, the queries freed, and the
  // engine stays usable (no validation error from a pass writing to a freed query set).
  const failing = () => {
    tidy(() => {
      ops.addScalar(ops.ones(e, [64]), 1);
    });
    throw new Error('boom');
  };
  assertMessage(await rejectionOf(e.profile(failing)), 'boom');
  await e.sync();
  assert.is((await e.profile(run)).result, plain, 'usable after a failed run');
});

test('values survive pooled-buffer reuse inside one batch', async () => {
  const e = await engine();
  // a is read by a recorded-but-unsubmitted dispatch, then freed; the next allocation must not
  // be handed a.buffer and overwrite it before that dispatch runs.
  const a = Tensor.fromData(e, [1, 2, 3, 4], [4]);
  const b = ops.mulScalar(a, 10);
  a.dispose();
  const c = Tensor.fromData(e, [7, 7, 7, 7], [4]);
  assert.equal([...(await b.read())], [10, 20, 30, 40]);
  b.dispose();
  c.dispose();
});

test('wraps a caller buffer without copying and copies results back into it', async () => {
  const e = await engine();
  const buf = e.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  e.device.queue.writeBuffer(buf, 0, new Float32Array([1, 2, 3, 4]));
  const t = Tensor.wrap(e, buf, [2, 2]);
  assert.is(t.buffer, buf);
  const y = ops.mulScalar(t, 3);
  y.copyTo(buf);
  assert.equal([...(await t.read())], [3, 6, 9, 12]);
  y.dispose();
  t.dispose();
  // the caller still owns a live buffer
  assert.equal([...new Float32Array(await e.read(buf, 0, 16))], [3, 6, 9, 12]);
  // What a kernel could not bind is refused at once, naming the value.
  assertMessage(errorOf(() => Tensor.wrap(e, buf, [5])), 'too small for shape [5]');
  assertMessage(errorOf(() => Tensor.wrap(e, buf, [1], 4)), 'offset 4', 'minStorageBufferOffsetAlignment');
  const copyOnly = e.device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
  assertMessage(errorOf(() => Tensor.wrap(e, copyOnly, [4])), 'GPUBufferUsage.STORAGE');
  copyOnly.destroy();
  buf.destroy();
});

test('adopted devices are never destroyed by the engine', async () => {
  const shared = await engine();
  const adopted = await engineWith({ device: shared.device });
  const t = ops.full(adopted, [3], 2);
  assert.equal([...(await t.read())], [2, 2, 2]);
  t.dispose();
  adopted.destroy();
  assert.not.ok(shared.lost);
  const u = ops.full(shared, [2], 5);
  assert.equal([...(await u.read())], [5, 5]);
  u.dispose();
});

/** A fresh device from the package's GPU object (destroy it after use). */
async function freshDevice(): Promise<GPUDevice> {
  return (await (await dawnGpu().requestAdapter())!.requestDevice());
}

for (const scoped of [false, true]) {
  // dawn.node fires error events inside the failing call; with `synchronousErrors: false` the
  // engine falls back to the error scopes it uses where events arrive late (browsers).
  test(`on an adopted device the engine throws its own GPU errors and leaves the caller's alone (${scoped ? 'error scopes' : 'synchronous events'})`, async () => {
    const device = await freshDevice();
    const other = await freshDevice();
    if (scoped) setGpuProvider(() => dawnGpu(), { synchronousErrors: false });
    const e = await engineWith({ device }).finally(() => useDawn());
    const seen: string[] = [];
    device.addEventListener('uncapturederror', (ev) => {
      seen.push((ev as GPUUncapturedErrorEvent).error.message);
      ev.preventDefault();
    });
    try {
      const x = Tensor.fromData(e, [1, 2, 3, 4], [4]);
      // The caller's own mistake, between engine calls: theirs to see, not the engine's to throw.
      device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      await new Promise((r) => setTimeout(r, 20));
      assert.equal([...(await ops.add(x, x).read())], [2, 4, 6, 8]);
      assert.is(seen.length, 1, seen.join('\n'));
      // The engine's own: a buffer of another device bound by an op. Thrown (at the call or by the
      // read), and the next op is not failed by its consequences.
      const foreign = Tensor.wrap(e, other.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }), [4]);
      const err = await rejectionOf((async () => ops.add(foreign, foreign).read())());
      assert.match(err.message, /^GPU error: /);
      assert.equal([...(await ops.add(x, x).read())], [2, 4, 6, 8]);
      assert.equal([...(await ops.mulScalar(x, 2).read())], [2, 4, 6, 8]);
    } finally {
      e.destroy();
      device.destroy();
      other.destroy();
    }
  });
}

test('an engine destroys every buffer it made on an adopted device, scratch buffers included', async () => {
  const device = await freshDevice();
  const made: GPUBuffer[] = [];
  const destroyed = new Set<GPUBuffer>();
  const create = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor) => {
    const b = create(desc);
    const destroy = b.destroy.bind(b);
    b.destroy = () => (destroyed.add(b), destroy());
    made.push(b);
    return b;
  };
  const e = await engineWith({ device });
  const a = Tensor.fromData(e, randn([8, 40], mulberry32(3)).data, [8, 40]);
  const b = Tensor.fromData(e, randn([40, 24], mulberry32(4)).data, [40, 24]);
  const y = matmul2d(a, b, { variant: 'panel' }); // packs its windows into a scratch buffer
  await y.read();
  for (const t of [a, b, y]) t.dispose();
  e.destroy();
  assert.ok(made.length >= 4, `${made.length} buffers`);
  assert.equal(made.filter((m) => !destroyed.has(m)).map((m) => m.label || `${m.size} bytes`), []);
  device.destroy();
});

test('tidy frees everything but the result; memory stats follow', async () => {
  const e = await engine();
  await e.sync();
  const before = e.memory().liveBytes;
  const kept = tidy(() => {
    const a = ops.full(e, [1000], 1);
    const b = ops.add(a, a);
    return ops.mul(b, b);
  });
  assert.ok(!kept.disposed);
  assert.is(e.memory().liveBytes - before, 4096); // one 4000-byte tensor in a 4096-byte bucket
  kept.dispose();
  assert.is(e.memory().liveBytes, before);
});

test('gradients from shared inputs are summed once; accumulation and zeroGrad', async () => {
  const e = await engine();
  const x = Tensor.fromData(e, [1, 2, 3], [3]);
  x.requiresGrad = true;
  const loss = () => tidy(() => {
    const y = ops.mul(x, x); // dy/dx = 2x
    const z = ops.add(y, x); // skip connection: + 1
    return ops.sum(ops.add(z, z)); // used twice: * 2
  });
  const l1 = loss();
  backward(l1);
  assert.equal([...(await x.grad!.read())], [6, 10, 14]);
  const l2 = loss();
  backward(l2);
  assert.equal([...(await x.grad!.read())], [12, 20, 28]);
  zeroGrad([x]);
  assert.is(x.grad, null);
  assert.throws(() => backward(l2), /already freed/);
  l1.dispose();
  l2.dispose();
  x.dispose();
});

test('noGrad records nothing', async () => {
  const e = await engine();
  const x = Tensor.fromData(e, [1, 2], [2]);
  x.requiresGrad = true;
  const y = noGrad(() => ops.mul(x, x));
  assert.not.ok(y.requiresGrad);
  assert.is(y.node, null);
  assert.throws(() => backward(ops.sum(y)), /does not require a gradient/);
  y.dispose();
  x.dispose();
});

// A researcher's op, defined outside src/ with its own WGSL and backward: y = x^3 * c.
const cubeWgsl = /* wgsl */ `
struct P { n: u32, c: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { y[g.x] = p.c * x[g.x] * x[g.x] * x[g.x]; }
}
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read> bdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { bdx[g.x] = 3.0 * p.c * bx[g.x] * bx[g.x] * bdy[g.x]; }
}`;

const cube = defineOp<number>({
  name: 'cube',
  forward(ctx, [x], c) {
    const y = Tensor.empty(x.engine, x.shape);
    x.engine.dispatch({ label: 'cube', code: cubeWgsl, entry: 'forward', uniforms: { n: x.size, c }, bindings: [x.binding(), y.binding()], workgroups: [Math.ceil(x.size / 64)] });
    ctx.save(x);
    return y;
  },
  backward(ctx, [dy], c) {
    const [x] = ctx.saved;
    const dx = Tensor.empty(x.engine, x.shape);
    x.engine.dispatch({ label: 'cube.backward', code: cubeWgsl, entry: 'backward', uniforms: { n: x.size, c }, bindings: [x.binding(), dy!.binding(), dx.binding()], workgroups: [Math.ceil(x.size / 64)] });
    return [dx];
  },
});

test('a custom op with its own WGSL passes a gradient check', async () => {
  const rng = mulberry32(3);
  await checkOp(await engine(), {
    name: 'cube',
    inputs: [randn([3, 5, 7], rng)],
    gpu: ([x]) => cube([x], 0.5)[0],
    ref: ([x]) => R.mulScalar(R.mul(R.mul(x, x), x), 0.5),
  });
});

test('memory stays flat over 500 training iterations', async () => {
  const e = await engine();
  const rng = mulberry32(9);
  const w = Tensor.fromData(e, Float32Array.from(randn([8, 16], rng).data), [8, 16]);
  const b = Tensor.fromData(e, new Float32Array(8), [8]);
  w.requiresGrad = b.requiresGrad = true;
  const x = Tensor.fromData(e, Float32Array.from(randn([32, 16], rng).data), [32, 16]);
  const y = Tensor.fromData(e, Float32Array.from(randn([32, 8], rng).data), [32, 8]);
  const opts = [new SGD([w, b], { lr: 0.01, momentum: 0.9 }), new Adam([w, b], { lr: 1e-3 })];
  let at10 = e.memory();
  let firstLoss = 0;
  let lastLoss = 0;
  for (let it = 1; it <= 500; it++) {
    const opt = opts[it % 2];
    const loss = tidy(() => ops.mseLoss(ops.relu(ops.linear(x, w, b)), y));
    backward(loss);
    opt.step();
    opt.zeroGrad();
    if (it === 1) firstLoss = await loss.item();
    if (it === 500) lastLoss = await loss.item();
    loss.dispose();
    if (it % 50 === 0) await e.sync();
    if (it === 10) {
      await e.sync();
      at10 = e.memory();
    }
  }
  await e.sync();
  const at500 = e.memory();
  assert.ok(lastLoss < firstLoss, `loss did not fall: ${firstLoss} -> ${lastLoss}`);
  assert.is(at500.liveBytes, at10.liveBytes, 'live bytes');
  assert.is(at500.pooledBytes, at10.pooledBytes, 'pooled bytes');
  assert.is(at500.buffersCreated, at10.buffersCreated, 'createBuffer calls');
  for (const o of opts) o.dispose();
  for (const t of [w, b, x, y]) t.dispose();
});

test('clear errors: shapes, disposed tensors, binding limits', async () => {
  const e = await engine();
  const a = ops.zeros(e, [2, 3]);
  const b = ops.zeros(e, [4, 5]);
  assert.throws(() => ops.add(a, b), /\[2,3\] and \[4,5\] cannot be broadcast/);
  assert.throws(() => ops.matmul(a, b), /inner dimensions differ: \[2,3\] x \[4,5\]/);
  assert.throws(() => ops.l1Loss(a, b), /\[2,3\] and \[4,5\] differ/);
  a.dispose();
  let msg = '';
  try {
    await a.read();
  } catch (err) {
    msg = String(err);
  }
  assert.match(msg, /disposed/);
  assert.throws(() => ops.relu(a), /disposed/);
  b.dispose();

  const small = await engineWith({ limits: { maxStorageBufferBindingSize: 1024 } });
  const big = Tensor.fromData(small, new Float32Array(512), [512]); // 2048 bytes: allocatable, not bindable
  assert.throws(() => ops.relu(big), /maxStorageBufferBindingSize \(1024\)/);
  big.dispose();
  small.destroy();
});

test.run();
