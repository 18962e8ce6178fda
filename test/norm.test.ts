// BatchNorm, PReLU, fused BN+PReLU, squeeze-excite and pooling ops vs the float64 references, on both work plans.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as R from './ref/ops.js';
import { BWD, FWD, allclose, mulberry32, randn, refTensor, uniform, type RefTensor, randnAwayFromZero } from './ref/tensor.js';
import { backward } from '../src/graph/autograd.js';
import { mul, sum } from '../src/graph/ops.js';
import * as norm from '../src/graph/norm.js';
import * as pool from '../src/graph/pool.js';
import * as se from '../src/graph/se.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { channelPlan, channelTuning } from '../src/kernels/batchnorm.js';
import { poolTuning } from '../src/kernels/pool.js';
import { squeezeExciteForward, squeezeExcitePoolRect } from '../src/kernels/se.js';
import type { Engine } from '../src/gpu/runtime.js';
import { assertClose, engine, engineWith, gpu } from './helpers.js';
import { checkOp, type OpCase } from './gradcheck-gpu.js';

// The ops under test, from their three modules.
const N = { ...norm, ...pool, ...se };

const rng = mulberry32(7);
const t = (shape: number[]) => randn(shape, rng);
const pos = (shape: number[]) => uniform(shape, 0.5, 2, rng);
const away = (shape: number[]) => randnAwayFromZero(shape, rng);
const vec = (c: number, lo = 0.5, hi = 1.5) => uniform([c], lo, hi, rng);
const d = (r: RefTensor) => r.data;
/** Reference data rounded to float32, so GPU and reference see the same inputs. */
const f32r = (r: RefTensor) => refTensor(r.shape, Float32Array.from(r.data));

/** A training-mode BN on fresh running stats (zeros/ones), as the gradient check needs. */
function bnTrain(x: Tensor, w: Tensor, b: Tensor, slope?: Tensor): Tensor {
  const c = x.shape[1];
  const rm = Tensor.fromData(x.engine, new Float32Array(c), [c]);
  const rv = Tensor.fromData(x.engine, new Float32Array(c).fill(1), [c]);
  return slope ? N.batchNormPrelu(x, w, b, rm, rv, slope, { training: true }) : N.batchNorm2d(x, w, b, rm, rv, { training: true });
}

function bnCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const shape of [[2, 3, 7, 9], [1, 5, 4, 3], [3, 2, 1, 1]]) {
    const c = shape[1];
    cases.push({
      name: `batchNorm2d train ${shape.join('x')}`,
      inputs: [t(shape), vec(c), t([c])],
      gpu: ([x, w, b]) => bnTrain(x, w, b),
      ref: ([x, w, b]) => R.batchNorm2dTrain(x, d(w), d(b)).y,
    });
  }
  for (const shape of [[2, 3, 7, 9], [1, 5, 2, 3]]) {
    const c = shape[1];
    cases.push({
      name: `batchNorm2d eval ${shape.join('x')}`,
      inputs: [t(shape), vec(c), t([c]), t([c]), pos([c])],
      noGrad: [3, 4],
      gpu: ([x, w, b, rm, rv]) => N.batchNorm2d(x, w, b, rm, rv, { training: false, eps: 1e-3 }),
      ref: ([x, w, b, rm, rv]) => R.batchNorm2dEval(x, d(w), d(b), d(rm), d(rv), 1e-3),
    });
  }
  for (const [shape, shared] of [[[2, 3, 7, 9], false], [[2, 5, 3, 3], true]] as const) {
    const c = shape[1];
    const sc = shared ? 1 : c;
    const slope = () => uniform([sc], -0.3, 0.4, rng);
    const tag = `${shape.join('x')}${shared ? ' shared slope' : ''}`;
    const ref = ([x, w, b, s]: RefTensor[]) => R.prelu(R.batchNorm2dTrain(x, d(w), d(b)).y, d(s));
    cases.push({ name: `batchNormPrelu train ${tag}`, inputs: [t([...shape]), vec(c), t([c]), slope()], gpu: ([x, w, b, s]) => bnTrain(x, w, b, s), ref });
    cases.push({ name: `batchNorm2d then prelu (unfused) ${tag}`, inputs: [t([...shape]), vec(c), t([c]), slope()], gpu: ([x, w, b, s]) => N.prelu(bnTrain(x, w, b), s), ref });
    cases.push({
      name: `batchNormPrelu eval ${tag}`,
      inputs: [t([...shape]), vec(c), t([c]), t([c]), pos([c]), slope()],
      noGrad: [3, 4],
      gpu: ([x, w, b, rm, rv, s]) => N.batchNormPrelu(x, w, b, rm, rv, s, { training: false }),
      ref: ([x, w, b, rm, rv, s]) => R.prelu(R.batchNorm2dEval(x, d(w), d(b), d(rm), d(rv)), d(s)),
    });
  }
  return cases;
}

function otherCases(): OpCase[] {
  return [
    { name: 'prelu per channel', inputs: [away([2, 3, 7, 9]), uniform([3], -0.5, 0.5, rng)], gpu: ([x, s]) => N.prelu(x, s), ref: ([x, s]) => R.prelu(x, d(s)) },
    { name: 'prelu shared slope', inputs: [away([2, 5, 3, 4]), uniform([1], 0, 0.5, rng)], gpu: ([x, s]) => N.prelu(x, s), ref: ([x, s]) => R.prelu(x, d(s)) },
    { name: 'prelu rank 2', inputs: [away([4, 5]), uniform([5], -0.5, 0.5, rng)], gpu: ([x, s]) => N.prelu(x, s), ref: ([x, s]) => R.prelu(x, d(s)) },
    { name: 'squeezeExcite 2x5x7x9 hidden 2', inputs: [t([2, 5, 7, 9]), t([2, 5]), t([5, 2])], gpu: ([x, a, b]) => N.squeezeExcite(x, a, b), ref: ([x, a, b]) => R.squeezeExcite(x, a, b) },
    { name: 'squeezeExcite 3x8x4x4 hidden 3', inputs: [t([3, 8, 4, 4]), t([3, 8]), t([8, 3])], gpu: ([x, a, b]) => N.squeezeExcite(x, a, b), ref: ([x, a, b]) => R.squeezeExcite(x, a, b) },
    {
      // Positive means and w1 keep the single hidden unit active, so dW1/dW2 are not trivially 0.
      name: 'squeezeExcite 2x3x5x1 hidden 1',
      inputs: [uniform([2, 3, 5, 1], -0.5, 1.5, rng), pos([1, 3]), t([3, 1])],
      gpu: ([x, a, b]) => N.squeezeExcite(x, a, b),
      ref: ([x, a, b]) => R.squeezeExcite(x, a, b),
    },
    { name: 'maxPool2d k2 on 7x9', inputs: [t([2, 3, 7, 9])], gpu: ([x]) => N.maxPool2d(x), ref: ([x]) => R.maxPool2d(x) },
    { name: 'maxPool2d k3 s2 (overlapping)', inputs: [t([1, 2, 7, 9])], gpu: ([x]) => N.maxPool2d(x, 3, 2), ref: ([x]) => R.maxPool2d(x, 3, 2) },
    { name: 'maxPool2d k2x3 s1x2', inputs: [t([2, 2, 5, 8])], gpu: ([x]) => N.maxPool2d(x, [2, 3], [1, 2]), ref: ([x]) => R.maxPool2d(x, [2, 3], [1, 2]) },
    { name: 'maxPool2d k2 s3 (gaps)', inputs: [t([1, 2, 7, 9])], gpu: ([x]) => N.maxPool2d(x, 2, 3), ref: ([x]) => R.maxPool2d(x, 2, 3) },
    { name: 'avgPool2d k2 s3 (gaps)', inputs: [t([1, 2, 7, 9])], gpu: ([x]) => N.avgPool2d(x, 2, 3), ref: ([x]) => R.avgPool2d(x, 2, 3) },
    { name: 'avgPool2d k2 on 7x9', inputs: [t([2, 3, 7, 9])], gpu: ([x]) => N.avgPool2d(x), ref: ([x]) => R.avgPool2d(x) },
    { name: 'avgPool2d k3 s2 (overlapping)', inputs: [t([1, 3, 7, 9])], gpu: ([x]) => N.avgPool2d(x, 3, 2), ref: ([x]) => R.avgPool2d(x, 3, 2) },
    { name: 'globalAvgPool', inputs: [t([2, 3, 7, 9])], gpu: ([x]) => N.globalAvgPool(x), ref: ([x]) => R.globalAvgPool(x) },
  ];
}

interface Plan {
  name: string;
  chunk: number;
  wg: number;
  serial: boolean;
  lines: number;
}

/**
 * Forced work plans, so both merge styles of the split (two-pass) paths run on any adapter:
 * per-channel work over several workgroups with odd chunks, and several pooling lines per
 * workgroup (crossing planes).
 */
const PLANS: Plan[] = [
  { name: 'split tree', chunk: 13, wg: 16, serial: false, lines: 5 },
  { name: 'split serial', chunk: 29, wg: 32, serial: true, lines: 3 },
];

async function withPlan<T>(plan: Plan, fn: () => Promise<T>): Promise<T> {
  const e = await engine();
  Object.assign(channelTuning(e), { chunk: plan.chunk, wg: plan.wg, serial: plan.serial });
  poolTuning(e).lines = plan.lines;
  try {
    return await fn();
  } finally {
    Object.assign(channelTuning(e), { chunk: 0, wg: 0, serial: undefined });
    poolTuning(e).lines = 0;
  }
}

const all = [...bnCases(), ...otherCases()];
for (const c of all) test(c.name, async () => checkOp(await engine(), c));
for (const plan of PLANS) {
  for (const c of all) test(`${c.name} [${plan.name}]`, async () => withPlan(plan, async () => checkOp(await engine(), c)));
}

/** Training forward + backward against the analytic float64 reference, running stats included. */
async function trainStep(e: Engine, x: RefTensor, w: RefTensor, b: RefTensor, rm0: Float64Array, rv0: Float64Array, momentum: number) {
  const dy = randn(x.shape, rng);
  return tidy(async () => {
    const [xt, wt, bt] = [gpu(e, x, true), gpu(e, w, true), gpu(e, b, true)];
    const rm = Tensor.fromData(e, Float32Array.from(rm0), [rm0.length]);
    const rv = Tensor.fromData(e, Float32Array.from(rv0), [rv0.length]);
    const y = N.batchNorm2d(xt, wt, bt, rm, rv, { training: true, momentum });
    backward(sum(mul(y, gpu(e, dy))));
    const ref = R.batchNorm2dTrain(x, d(w), d(b), { momentum, runningMean: rm0, runningVar: rv0 });
    const g = R.batchNorm2dTrainBackward(x, d(w), dy);
    await assertClose(y, ref.y.data, FWD, 'y');
    await assertClose(rm, ref.runningMean, FWD, 'runningMean');
    await assertClose(rv, ref.runningVar, FWD, 'runningVar');
    await assertClose(xt.grad!, g.dx.data, BWD, 'dx');
    await assertClose(wt.grad!, g.dgamma, BWD, 'dweight');
    await assertClose(bt.grad!, g.dbeta, BWD, 'dbias');
  });
}

const plain = (f: () => Promise<void>) => f();
for (const [name, wrap] of [['', plain], ...PLANS.map((p) => [` [${p.name}]`, (f: () => Promise<void>) => withPlan(p, f)] as const)] as const) {
  test(`batchNorm2d running stats update in place${name}`, () =>
    wrap(async () => {
      const e = await engine();
      await trainStep(e, t([2, 3, 7, 9]), vec(3), t([3]), Float64Array.from([0.5, -1, 2]), Float64Array.from([0.7, 1.5, 3]), 0.3);
    }));
  test(`batchNorm2d keeps the variance of values ~1e6 with std ~1${name}`, () =>
    wrap(async () => {
      const e = await engine();
      const x = f32r(randn([2, 3, 5, 7], rng));
      x.data.forEach((v, i) => (x.data[i] = Math.fround(1e6 + 1000 * (Math.floor(i / 35) % 3) + v)));
      await trainStep(e, x, vec(3), t([3]), new Float64Array(3), new Float64Array(3).fill(1), 0.1);
    }));
}

test('grids fold past maxComputeWorkgroupsPerDimension', async () => {
  const e = await engineWith({ limits: { maxComputeWorkgroupsPerDimension: 4 } });
  try {
    const folded = all.filter((c) => /train 2x3x7x9|eval 2x5x3x3|prelu per channel|squeezeExcite 2x5|maxPool2d k2 on|avgPool2d k3|globalAvgPool/.test(c.name));
    assert.is(folded.length, 8);
    for (const c of folded) await checkOp(e, c);
    for (const plan of PLANS) {
      await withPlan(plan, async () => {
        for (const c of folded) await checkOp(e, c);
      });
    }
  } finally {
    e.destroy();
  }
});

test('maxPool2d ties send the gradient to the first maximum', async () => {
  const e = await engine();
  const x = refTensor([1, 2, 5, 6], Array.from({ length: 60 }, (_, i) => [0, 1, 1, 2, 2][(i * 7) % 5]));
  for (const [k, s] of [[2, 2], [3, 1]]) {
    const dy = randn([1, 2, Math.floor((5 - k) / s) + 1, Math.floor((6 - k) / s) + 1], rng);
    await tidy(async () => {
      const xt = gpu(e, x, true);
      const y = N.maxPool2d(xt, k, s);
      backward(sum(mul(y, gpu(e, dy))));
      await assertClose(y, R.maxPool2d(x, k, s).data, FWD, `k${k} s${s} y`);
      await assertClose(xt.grad!, R.maxPool2dBackward(x, dy, k, s).data, BWD, `k${k} s${s} dx`);
    });
  }
});

test('SE gates from sums pooled over rectangles that partition the plane match float64, on a tile of the image too', async () => {
  const e = await engine();
  const [n, C, H, W, hd] = [2, 5, 7, 9, 2];
  const [x, w1, w2, res] = [t([n, C, H, W]), t([hd, C]), t([C, hd]), t([n, C, H, W])];
  const want = R.squeezeExcite(x, w1, w2).data.map((v, i) => v + res.data[i]);
  for (const parts of [1, 3]) {
    await tidy(async () => {
      const xs = gpu(e, x);
      const sums = Tensor.fromData(e, new Float32Array(n * C * parts), [n * C * parts]);
      for (const [y0, h] of [[0, 3], [3, 4]]) for (const [x0, w] of [[0, 4], [4, 5]]) squeezeExcitePoolRect(xs, { x0, y0, w, h }, sums, parts);
      const { y } = squeezeExciteForward(xs, gpu(e, w1), gpu(e, w2), false, gpu(e, res), { sums, parts, count: H * W });
      const r = allclose(await y.read(), want, FWD.rtol, FWD.atol);
      assert.ok(r.ok, `${parts} parts: ${r.message}`);
      // A tile (rows 2..6, all columns) gated by the whole plane's sums: the rows of the full result.
      const rows = (a: ArrayLike<number>) => Float32Array.from({ length: n * C * 4 * W }, (_, i) => {
        const p = Math.floor(i / (4 * W));
        return a[p * H * W + 2 * W + (i % (4 * W))];
      });
      const tile = Tensor.fromData(e, rows(x.data), [n, C, 4, W]);
      const { y: yt } = squeezeExciteForward(tile, gpu(e, w1), gpu(e, w2), false, Tensor.fromData(e, rows(res.data), [n, C, 4, W]), { sums, parts, count: H * W });
      const rt = allclose(await yt.read(), rows(want), FWD.rtol, FWD.atol);
      assert.ok(rt.ok, `tile, ${parts} parts: ${rt.message}`);
    });
  }
  const xs = gpu(e, x);
  const sums = Tensor.fromData(e, new Float32Array(n * C), [n * C]);
  assert.throws(() => squeezeExcitePoolRect(xs, { x0: 5, y0: 0, w: 5, h: 7 }, sums, 1), /rectangle 5x7 at \(5, 0\) is not inside input \[2,5,7,9\]/);
  assert.throws(() => squeezeExcitePoolRect(xs, { x0: 0, y0: 0, w: 9, h: 7 }, sums, 2), /do not hold 2 partials for each of 10 planes/);
  xs.dispose();
  sums.dispose();
});

test('dispatch counts', async () => {
  const e = await engine();
  const count = async (fn: () => void) => {
    const before = e.counters.dispatches;
    tidy(fn);
    await e.sync();
    return e.counters.dispatches - before;
  };
  const x = Tensor.fromData(e, d(t([2, 4, 6, 6])), [2, 4, 6, 6]);
  const v = (fill: number) => Tensor.fromData(e, new Float32Array(4).fill(fill), [4]);
  const [w, b, rm, rv, s] = [v(1), v(0), v(0), v(1), v(0.25)];
  const w1 = Tensor.fromData(e, d(t([2, 4])), [2, 4]);
  const w2 = Tensor.fromData(e, d(t([4, 2])), [4, 2]);
  const bn = channelPlan(e, 4, 2 * 36).splits === 1 ? 1 : 2;
  assert.is(await count(() => N.batchNormPrelu(x, w, b, rm, rv, s, { training: true })), bn, 'BN+PReLU training forward');
  assert.is(await count(() => N.batchNormPrelu(x, w, b, rm, rv, s, { training: false })), 1, 'BN+PReLU eval forward');
  assert.is(await count(() => N.squeezeExcite(x, w1, w2)), 2, 'SE forward');
  assert.is(await count(() => N.maxPool2d(x)), 1, 'maxPool2d forward');
  x.requiresGrad = true;
  assert.is(await count(() => backward(sum(N.batchNormPrelu(x, w, b, rm, rv, s, { training: true })))), 2 * bn + 3, 'BN+PReLU forward+backward (+ sum, ones, expand)');
  x.grad?.dispose();
  for (const k of [x, w, b, rm, rv, s, w1, w2]) k.dispose();
});

test('batchNorm2d eval mode leaves the running stats alone', async () => {
  const e = await engine();
  const [rm0, rv0] = [[0.5, -1, 2], [0.7, 1.5, 3]];
  await tidy(async () => {
    const x = gpu(e, t([2, 3, 4, 5]), true);
    const [w, b] = [gpu(e, vec(3), true), gpu(e, t([3]), true)];
    const rm = Tensor.fromData(e, rm0, [3]);
    const rv = Tensor.fromData(e, rv0, [3]);
    backward(sum(N.batchNorm2d(x, w, b, rm, rv, { training: false })));
    await assertClose(rm, rm0, FWD, 'runningMean');
    await assertClose(rv, rv0, FWD, 'runningVar');
  });
});

test('batchNorm2d errors name the shapes', async () => {
  const e = await engine();
  tidy(() => {
    const x = Tensor.fromData(e, [1, 2, 3, 4], [1, 2, 2, 1]);
    const one = Tensor.fromData(e, [1], [1]);
    const two = Tensor.fromData(e, [1, 1], [2]);
    assert.throws(() => N.batchNorm2d(x, one, two, two, two, { training: true }), /weight has shape \[1\], expected \[2\]/);
    const tiny = Tensor.fromData(e, [1, 2], [1, 2, 1, 1]);
    assert.throws(() => N.batchNorm2d(tiny, two, two, two, two, { training: true }), /more than one value per channel/);
  });
});


// Training mode with eps != 1e-5 and a near-constant channel (variance 1e-8, far below eps): where
// eps enters (inside the square root, on the biased variance) decides every value of that channel.
for (const [name, wrap] of [['', plain], ...PLANS.map((p) => [` [${p.name}]`, (f: () => Promise<void>) => withPlan(p, f)] as const)] as const) {
  for (const [eps, prelu] of [[1e-2, false], [3e-4, true]] as const) {
    test(`batchNorm2d${prelu ? 'Prelu' : ''} train, eps ${eps}, a near-constant channel${name}`, () =>
      wrap(async () => {
        const e = await engine();
        const shape = [2, 4, 5, 7];
        const x = f32r(t(shape));
        const P = shape[2] * shape[3];
        for (let n = 0; n < shape[0]; n++) for (let j = 0; j < P; j++) x.data[n * 4 * P + j] = Math.fround(5 + 1e-4 * x.data[n * 4 * P + j]);
        const [w, b, rm, rv, slope] = [vec(4), t([4]), t([4]), pos([4]), uniform([4], 0.05, 0.4, rng)].map(f32r);
        const dy = f32r(t(shape));
        const momentum = 0.3;
        const ref = R.batchNorm2dTrain(x, d(w), d(b), { eps, momentum, runningMean: d(rm), runningVar: d(rv) });
        const refY = prelu ? R.prelu(ref.y, d(slope)) : ref.y;
        const gy = prelu ? R.preluBackward(ref.y, d(slope), dy).dx : dy;
        const refB = R.batchNorm2dTrainBackward(x, d(w), gy, eps);
        const [gx, gw, gb, grm, grv, gs] = [x, w, b, rm, rv, slope].map((r, i) => gpu(e, r, i < 3));
        const opts = { training: true, eps, momentum };
        const y = prelu ? N.batchNormPrelu(gx, gw, gb, grm, grv, gs, opts) : N.batchNorm2d(gx, gw, gb, grm, grv, opts);
        await assertClose(y, d(refY), FWD, 'y');
        await assertClose(grm, ref.runningMean, FWD, 'running mean');
        await assertClose(grv, ref.runningVar, FWD, 'running var');
        backward(tidy(() => sum(mul(y, gpu(e, dy)))));
        await assertClose(gx.grad!, d(refB.dx), BWD, 'dx');
        await assertClose(gw.grad!, refB.dgamma, BWD, 'dweight');
        await assertClose(gb.grad!, refB.dbeta, BWD, 'dbias');
        for (const v of [gx, gw, gb, grm, grv, gs, y]) v.dispose();
      }),
    );
  }
}

test.run();
