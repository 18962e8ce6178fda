// Self-tests for the float64 CPU reference: every backward against finite differences, plus hand-computed values.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkGrad, directionalCheck, numericGrad } from './ref/gradcheck';
import * as op from './ref/ops';
import {
  allclose,
  BWD,
  FWD,
  mulberry32,
  numel,
  randn,
  refTensor,
  relL2,
  uniform,
  type RefTensor,
} from './ref/tensor';

type Inputs = Record<string, RefTensor>;
type Grad = RefTensor | ArrayLike<number>;

const gradData = (g: Grad): ArrayLike<number> => ('data' in g && 'shape' in g ? g.data : g);

/**
 * Checks d/d(input) of sum(forward(inputs) * W) for a fixed random W against central differences.
 * A random W (rather than all ones) makes every output element matter with a distinct weight,
 * so transposed or mis-summed gradients cannot cancel out.
 */
function expectGradients(
  name: string,
  seed: number,
  inputs: Inputs,
  forward: (inp: Inputs) => RefTensor,
  backward: (inp: Inputs, dy: RefTensor) => Record<string, Grad>,
  only?: readonly string[],
): void {
  const rng = mulberry32(seed);
  const out = forward(inputs);
  const weights = randn(out.shape, rng);
  const analytic = backward(inputs, weights);
  for (const key of only ?? Object.keys(inputs)) {
    const x = inputs[key];
    const f = (xd: Float64Array): number => op.dot(forward({ ...inputs, [key]: { shape: x.shape, data: xd } }).data, weights.data);
    const grad = analytic[key];
    assert.ok(grad !== undefined, `${name}: backward returned no gradient for ${key}`);
    const res = checkGrad(f, x.data, gradData(grad));
    assert.ok(res.ok, `${name} d/d${key}: ${res.message}`);
  }
}

const scalar = (v: number): RefTensor => refTensor([], [v]);

// ---------------------------------------------------------------------------------------------
// tensor.ts

test('mulberry32 is deterministic and in [0, 1)', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  for (let i = 0; i < 1000; i++) {
    const v = a();
    assert.is(v, b());
    assert.ok(v >= 0 && v < 1);
  }
  assert.is.not(mulberry32(1)(), mulberry32(2)());
});

test('randn has roughly unit moments', () => {
  const t = randn([20000], mulberry32(7));
  const m = op.meanAll(t);
  const v = op.meanAll(op.mul(t, t)) - m * m;
  assert.ok(Math.abs(m) < 0.03, `mean ${m}`);
  assert.ok(Math.abs(v - 1) < 0.05, `var ${v}`);
  const u = uniform([1000], -2, 3, mulberry32(8));
  assert.ok(u.data.every((x) => x >= -2 && x < 3));
});

test('refTensor validates and copies', () => {
  const src = [1, 2, 3, 4, 5, 6];
  const t = refTensor([2, 3], src);
  src[0] = 99;
  assert.is(t.data[0], 1);
  assert.is(numel([2, 3, 4]), 24);
  assert.is(numel(t), 6);
  assert.is(numel([]), 1);
  assert.throws(() => refTensor([2, 2], [1, 2, 3]));
});

test('allclose reports worst element, fails on NaN and length mismatch', () => {
  const ok = allclose([1, 2, 3], [1, 2, 3.00001], FWD.rtol, FWD.atol);
  assert.ok(ok.ok, ok.message);
  const bad = allclose([1, 2.5, 3, 4], [1, 2, 3, 4.01], 1e-4, 1e-5);
  assert.not.ok(bad.ok);
  assert.is(bad.index, 1);
  assert.is(bad.got, 2.5);
  assert.is(bad.ref, 2);
  assert.ok(Math.abs(bad.worst - (0.5 - (1e-5 + 2e-4))) < 1e-12);
  assert.match(bad.message, /\[1\]/);
  const nan = allclose([1, NaN], [1, 2], 1, 1);
  assert.not.ok(nan.ok);
  assert.is(nan.index, 1);
  assert.not.ok(allclose([1], [1, 2], 1, 1).ok);
  assert.ok(Math.abs(relL2([1, 2, 2], [0, 2, 2]) - 1 / Math.sqrt(8)) < 1e-15);
  assert.is(relL2([0, 0], [0, 0]), 0);
});

// ---------------------------------------------------------------------------------------------
// gradcheck.ts

test('numericGrad and directionalCheck on an analytic function', () => {
  const f = (x: Float64Array): number => x[0] * x[0] * x[1] + Math.sin(x[2]);
  const x = Float64Array.from([0.7, -1.3, 0.4]);
  const exact = [2 * x[0] * x[1], x[0] * x[0], Math.cos(x[2])];
  const before = x.slice();
  const num = numericGrad(f, x);
  assert.equal(Array.from(x), Array.from(before), 'numericGrad must not mutate its input');
  assert.ok(allclose(num, exact, 1e-7, 1e-9).ok);
  const d = directionalCheck(f, x, exact, mulberry32(3));
  assert.ok(d.relErr < 1e-7, `relErr ${d.relErr}`);
  const wrong = directionalCheck(f, x, [exact[0], exact[1] + 1, exact[2]], mulberry32(3));
  assert.ok(wrong.relErr > 1e-3, 'a wrong gradient must be detected');
  assert.not.ok(checkGrad(f, x, [exact[0] + 0.01, exact[1], exact[2]]).ok);
});

// ---------------------------------------------------------------------------------------------
// Broadcasting elementwise ops

test('broadcastShapes and broadcastTo', () => {
  assert.equal(op.broadcastShapes([2, 3, 1, 5], [3, 4, 1]), [2, 3, 4, 5]);
  assert.equal(op.broadcastShapes([1], [2, 3]), [2, 3]);
  assert.throws(() => op.broadcastShapes([2, 3], [4, 3]));
  const t = op.broadcastTo(refTensor([2, 1], [1, 2]), [2, 3]);
  assert.equal(Array.from(t.data), [1, 1, 1, 2, 2, 2]);
  const back = op.sumToShape(refTensor([2, 3], [1, 2, 3, 4, 5, 6]), [1, 3]);
  assert.equal(Array.from(back.data), [5, 7, 9]);
});

const binaryCases: [string, (a: RefTensor, b: RefTensor) => RefTensor, typeof op.addBackward][] = [
  ['add', op.add, op.addBackward],
  ['sub', op.sub, op.subBackward],
  ['mul', op.mul, op.mulBackward],
  ['div', op.div, op.divBackward],
];

for (const [name, fwd, bwd] of binaryCases) {
  test(`${name} with broadcasting: gradients`, () => {
    const rng = mulberry32(100);
    const shapePairs: [number[], number[]][] = [
      [[2, 3, 1, 5], [3, 4, 1]],
      [[2, 3, 4], [1]],
      [[1, 3, 1, 1], [2, 3, 4, 5]],
      [[2, 3], [2, 3]],
    ];
    for (const [sa, sb] of shapePairs) {
      const a = randn(sa, rng);
      // Denominators are kept away from zero so the division gradient is well conditioned.
      const b = name === 'div' ? uniform(sb, 0.5, 2, rng) : randn(sb, rng);
      expectGradients(
        `${name} ${JSON.stringify(sa)}x${JSON.stringify(sb)}`,
        101,
        { a, b },
        (i) => fwd(i.a, i.b),
        (i, dy) => {
          const g = bwd(i.a, i.b, dy);
          return { a: g.da, b: g.db };
        },
      );
    }
  });
}

test('broadcast mul known value', () => {
  const y = op.mul(refTensor([2, 1], [2, 3]), refTensor([3], [1, 10, 100]));
  assert.equal(y.shape, [2, 3]);
  assert.equal(Array.from(y.data), [2, 20, 200, 3, 30, 300]);
});

// ---------------------------------------------------------------------------------------------
// Unary ops

test('unary activations: gradients', () => {
  const rng = mulberry32(200);
  const x = randn([2, 3, 4, 5], rng);
  const pos = uniform([2, 3, 4, 5], 0.3, 3, rng);
  const one = (n: string, t: RefTensor, f: (x: RefTensor) => RefTensor, b: (x: RefTensor, dy: RefTensor) => RefTensor) =>
    expectGradients(n, 201, { x: t }, (i) => f(i.x), (i, dy) => ({ x: b(i.x, dy) }));
  one('relu', x, op.relu, op.reluBackward);
  one('sigmoid', x, op.sigmoid, op.sigmoidBackward);
  one('exp', x, op.exp, op.expBackward);
  one('log', pos, op.log, op.logBackward);
  one('leakyRelu', x, (t) => op.leakyRelu(t, 0.2), (t, dy) => op.leakyReluBackward(t, dy, 0.2));
  one('addScalar', x, (t) => op.addScalar(t, 1.5), (_t, dy) => op.addScalarBackward(dy));
  one('mulScalar', x, (t) => op.mulScalar(t, -2.5), (_t, dy) => op.mulScalarBackward(dy, -2.5));
});

test('unary known values', () => {
  const x = refTensor([4], [-2, 0, 0.5, 3]);
  assert.equal(Array.from(op.relu(x).data), [0, 0, 0.5, 3]);
  assert.equal(Array.from(op.leakyRelu(x, 0.1).data), [-0.2, 0, 0.5, 3]);
  assert.is(op.sigmoid(refTensor([1], [0])).data[0], 0.5);
  assert.ok(Number.isFinite(op.sigmoid(refTensor([2], [-1000, 1000])).data[0]));
  // Derivative at exactly 0 follows PyTorch: 0 for relu.
  assert.equal(Array.from(op.reluBackward(x, refTensor([4], [1, 1, 1, 1])).data), [0, 0, 1, 1]);
});

test('prelu per-channel and shared slope: gradients', () => {
  const rng = mulberry32(300);
  const x = randn([2, 3, 4, 5], rng);
  for (const slopes of [uniform([3], 0.05, 0.5, rng), uniform([1], 0.05, 0.5, rng)]) {
    expectGradients(
      `prelu slopes=${slopes.shape[0]}`,
      301,
      { x, slopes },
      (i) => op.prelu(i.x, i.slopes.data),
      (i, dy) => {
        const g = op.preluBackward(i.x, i.slopes.data, dy);
        return { x: g.dx, slopes: g.dslopes };
      },
    );
  }
  const y = op.prelu(refTensor([1, 2, 1, 2], [-1, 2, -1, 2]), [0.1, 0.3]);
  assert.equal(Array.from(y.data), [-0.1, 2, -0.3, 2]);
});

// ---------------------------------------------------------------------------------------------
// Reductions

test('sum/mean over axes: known values', () => {
  const x = refTensor([2, 3], [1, 2, 3, 4, 5, 6]);
  assert.is(op.sumAll(x), 21);
  assert.is(op.meanAll(x), 3.5);
  assert.equal(op.sum(x).shape, []);
  assert.equal(op.sum(x, undefined, true).shape, [1, 1]);
  const s0 = op.sum(x, [0]);
  assert.equal(s0.shape, [3]);
  assert.equal(Array.from(s0.data), [5, 7, 9]);
  const m1 = op.mean(x, [-1], true);
  assert.equal(m1.shape, [2, 1]);
  assert.equal(Array.from(m1.data), [2, 5]);
});

test('sum/mean over axes: gradients', () => {
  const x = randn([2, 3, 4, 5], mulberry32(400));
  const configs: [number[] | undefined, boolean][] = [
    [undefined, false],
    [undefined, true],
    [[1, 3], false],
    [[1, 3], true],
    [[0, -1], false],
    [[2], true],
  ];
  for (const [axes, keepdim] of configs) {
    const tag = `axes=${JSON.stringify(axes)} keepdim=${keepdim}`;
    expectGradients(`sum ${tag}`, 401, { x }, (i) => op.sum(i.x, axes, keepdim), (i, dy) => ({
      x: op.sumBackward(i.x.shape, dy, axes, keepdim),
    }));
    expectGradients(`mean ${tag}`, 402, { x }, (i) => op.mean(i.x, axes, keepdim), (i, dy) => ({
      x: op.meanBackward(i.x.shape, dy, axes, keepdim),
    }));
  }
});

// ---------------------------------------------------------------------------------------------
// Matrix products

test('matmul and linear: known values and gradients', () => {
  const y = op.matmul(refTensor([2, 2], [1, 2, 3, 4]), refTensor([2, 3], [5, 6, 7, 8, 9, 10]));
  assert.equal(Array.from(y.data), [21, 24, 27, 47, 54, 61]);
  const l = op.linear(refTensor([1, 2], [1, 2]), refTensor([3, 2], [1, 0, 0, 1, 1, 1]), [0.5, 0, -1]);
  assert.equal(Array.from(l.data), [1.5, 2, 2]);

  const rng = mulberry32(500);
  expectGradients('matmul', 501, { a: randn([3, 4], rng), b: randn([4, 5], rng) }, (i) => op.matmul(i.a, i.b), (i, dy) => {
    const g = op.matmulBackward(i.a, i.b, dy);
    return { a: g.da, b: g.db };
  });
  expectGradients(
    'linear',
    502,
    { x: randn([4, 6], rng), w: randn([5, 6], rng), b: randn([5], rng) },
    (i) => op.linear(i.x, i.w, i.b.data),
    (i, dy) => {
      const g = op.linearBackward(i.x, i.w, dy);
      return { x: g.dx, w: g.dw, b: g.db };
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Concat / split

test('concat and split along channels', () => {
  const rng = mulberry32(600);
  const parts = [randn([2, 3, 3, 4], rng), randn([2, 5, 3, 4], rng), randn([2, 2, 3, 4], rng)];
  const cat = op.concat(parts);
  assert.equal(cat.shape, [2, 10, 3, 4]);
  // Element (n=1, c=3+1, h=2, w=3) must come from part 1, channel 1.
  assert.is(cat.data[((1 * 10 + 4) * 3 + 2) * 4 + 3], parts[1].data[((1 * 5 + 1) * 3 + 2) * 4 + 3]);
  const back = op.split(cat, [3, 5, 2]);
  back.forEach((p, k) => assert.equal(Array.from(p.data), Array.from(parts[k].data)));
  assert.throws(() => op.split(cat, [3, 3]));

  expectGradients('concat', 601, { a: parts[0], b: parts[1], c: parts[2] }, (i) => op.concat([i.a, i.b, i.c]), (_i, dy) => {
    const [a, b, c] = op.concatBackward(dy, [3, 5, 2]);
    return { a, b, c };
  });
  // split's outputs are flattened into one tensor so the generic checker sees a single output.
  expectGradients(
    'split',
    602,
    { x: cat },
    (i) => {
      const flat = op.split(i.x, [4, 6]).map((p) => Array.from(p.data));
      return refTensor([cat.data.length], flat.flat());
    },
    (_i, dy) => {
      const a = refTensor([2, 4, 3, 4], dy.data.subarray(0, 96));
      const b = refTensor([2, 6, 3, 4], dy.data.subarray(96));
      return { x: op.splitBackward([a, b]) };
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Losses

test('l1 and mse losses: known values and gradients', () => {
  const x = refTensor([4], [1, 2, 3, 4]);
  const y = refTensor([4], [2, 2, 1, 8]);
  assert.is(op.l1Loss(x, y), (1 + 0 + 2 + 4) / 4);
  assert.is(op.mseLoss(x, y), (1 + 0 + 4 + 16) / 4);
  assert.equal(Array.from(op.l1LossBackward(x, y).dx.data), [-0.25, 0, 0.25, -0.25]);

  const rng = mulberry32(700);
  const inputs = { x: randn([2, 3, 4, 5], rng), y: randn([2, 3, 4, 5], rng) };
  expectGradients('l1Loss', 701, inputs, (i) => scalar(op.l1Loss(i.x, i.y)), (i, dy) => {
    const g = op.l1LossBackward(i.x, i.y, dy.data[0]);
    return { x: g.dx, y: g.dtarget };
  });
  expectGradients('mseLoss', 702, inputs, (i) => scalar(op.mseLoss(i.x, i.y)), (i, dy) => {
    const g = op.mseLossBackward(i.x, i.y, dy.data[0]);
    return { x: g.dx, y: g.dtarget };
  });
});

// ---------------------------------------------------------------------------------------------
// Conv2d

test('conv2d 3x3 on 4x4: hand-computed values', () => {
  const x = refTensor([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
  const w = refTensor([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // Top-left window is rows [1,2,3],[5,6,7],[9,10,11]; each step right adds sum(w)=45, each step down 4*45.
  const valid = op.conv2d(x, w, [0.5]);
  assert.equal(valid.shape, [1, 1, 2, 2]);
  assert.equal(Array.from(valid.data), [348.5, 393.5, 528.5, 573.5]);
  // With pad 1 the top-left output sees only w[1..2][1..2] over x[0..1][0..1]: 5*1+6*2+8*5+9*6.
  const same = op.conv2d(x, w, null, { pad: 1 });
  assert.equal(same.shape, [1, 1, 4, 4]);
  assert.is(same.data[0], 111);
  assert.is(same.data[5], 348);
  // Stride 2 with pad 1 samples outputs (0,0),(0,2),(2,0),(2,2) of the padded result.
  const strided = op.conv2d(x, w, null, { pad: 1, stride: 2 });
  assert.equal(Array.from(strided.data), [same.data[0], same.data[2], same.data[8], same.data[10]]);
  // Dilation 3 on a 4x4 input leaves a single output made of the four corners times w's corners.
  const dilated = op.conv2d(x, refTensor([1, 1, 2, 2], [1, 2, 3, 4]), null, { dilation: 3 });
  assert.equal(dilated.shape, [1, 1, 1, 1]);
  assert.is(dilated.data[0], 1 * 1 + 2 * 4 + 3 * 13 + 4 * 16);
});

test('conv2dOutputSize follows the PyTorch formula', () => {
  assert.equal(op.conv2dOutputSize(7, 9, 3, 3, { stride: 2, pad: 3, dilation: 3 }), [4, 5]);
  assert.equal(op.conv2dOutputSize(7, 9, 3, 3, { pad: 3, dilation: 5 }), [3, 5]);
  assert.equal(op.conv2dOutputSize(8, 8, 3, 3, { pad: 1 }), [8, 8]);
});

const convCases: { name: string; x: number[]; w: number[]; bias: boolean; opts: op.Conv2dOptions }[] = [
  { name: 'plain 3x3', x: [2, 3, 7, 9], w: [5, 3, 3, 3], bias: true, opts: {} },
  { name: 'stride2 pad3 dil3', x: [2, 3, 7, 9], w: [5, 3, 3, 3], bias: true, opts: { stride: 2, pad: 3, dilation: 3 } },
  { name: 'pad3 dil5', x: [2, 5, 7, 9], w: [3, 5, 3, 3], bias: true, opts: { pad: 3, dilation: 5 } },
  { name: 'same pad1', x: [2, 3, 7, 9], w: [3, 3, 3, 3], bias: false, opts: { pad: 1 } },
  { name: 'anisotropic', x: [2, 5, 7, 9], w: [3, 5, 3, 2], bias: true, opts: { stride: [2, 1], pad: [1, 0], dilation: [1, 2] } },
  { name: '1x1', x: [2, 5, 7, 9], w: [3, 5, 1, 1], bias: true, opts: {} },
];

for (const c of convCases) {
  test(`conv2d ${c.name}: gradients`, () => {
    const rng = mulberry32(800);
    const inputs: Inputs = { x: randn(c.x, rng), w: randn(c.w, rng) };
    if (c.bias) inputs.b = randn([c.w[0]], rng);
    expectGradients(
      `conv2d ${c.name}`,
      801,
      inputs,
      (i) => op.conv2d(i.x, i.w, i.b ? i.b.data : null, c.opts),
      (i, dy) => {
        const g = op.conv2dBackward(i.x, i.w, dy, c.opts);
        return { x: g.dx, w: g.dw, b: g.db };
      },
    );
  });
}

test('conv2d directional check (the large-tensor path)', () => {
  const rng = mulberry32(850);
  const x = randn([2, 3, 7, 9], rng);
  const w = randn([5, 3, 3, 3], rng);
  const opts = { stride: 2, pad: 3, dilation: 3 };
  const dy = randn(op.conv2d(x, w, null, opts).shape, rng);
  const f = (wd: Float64Array): number => op.dot(op.conv2d(x, { shape: w.shape, data: wd }, null, opts).data, dy.data);
  const res = directionalCheck(f, w.data, op.conv2dBackward(x, w, dy, opts).dw.data, rng);
  assert.ok(res.relErr < 1e-6, `relErr ${res.relErr}`);
});

// ---------------------------------------------------------------------------------------------
// BatchNorm2d

test('batchnorm train: normalization and unbiased running variance', () => {
  const x = refTensor([1, 1, 1, 4], [1, 2, 3, 4]);
  const r = op.batchNorm2dTrain(x, [1], [0]);
  assert.is(r.batchMean[0], 2.5);
  assert.is(r.batchVar[0], 1.25);
  // mean 2.5, biased var 1.25, unbiased var 5/3; running stats start at mean 0 / var 1.
  assert.ok(Math.abs(r.runningMean[0] - 0.25) < 1e-15);
  assert.ok(Math.abs(r.runningVar[0] - (0.9 + 0.1 * (5 / 3))) < 1e-15);
  const inv = 1 / Math.sqrt(1.25 + 1e-5);
  assert.ok(allclose(r.y.data, [-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv], 1e-14, 0).ok);

  const r2 = op.batchNorm2dTrain(x, [2], [1], { runningMean: [1], runningVar: [3], momentum: 0.5, eps: 0 });
  assert.ok(Math.abs(r2.runningMean[0] - (0.5 + 1.25)) < 1e-15);
  assert.ok(Math.abs(r2.runningVar[0] - (1.5 + 0.5 * (5 / 3))) < 1e-15);
  assert.ok(Math.abs(r2.y.data[3] - (2 * 1.5 / Math.sqrt(1.25) + 1)) < 1e-14);
  assert.throws(() => op.batchNorm2dTrain(refTensor([1, 1, 1, 1], [3]), [1], [0]));
});

test('batchnorm train output has zero mean and unit variance per channel', () => {
  const x = uniform([2, 3, 5, 7], -3, 5, mulberry32(900));
  const r = op.batchNorm2dTrain(x, [1, 1, 1], [0, 0, 0], { eps: 0 });
  const m = op.mean(r.y, [0, 2, 3]);
  const v = op.mean(op.mul(r.y, r.y), [0, 2, 3]);
  assert.ok(allclose(m.data, [0, 0, 0], 0, 1e-12).ok);
  assert.ok(allclose(v.data, [1, 1, 1], 0, 1e-12).ok);
});

test('batchnorm train: gradients through batch statistics', () => {
  const rng = mulberry32(910);
  expectGradients(
    'batchnorm train',
    911,
    { x: randn([2, 3, 5, 7], rng), gamma: uniform([3], 0.5, 2, rng), beta: randn([3], rng) },
    (i) => op.batchNorm2dTrain(i.x, i.gamma.data, i.beta.data).y,
    (i, dy) => {
      const g = op.batchNorm2dTrainBackward(i.x, i.gamma.data, dy);
      return { x: g.dx, gamma: g.dgamma, beta: g.dbeta };
    },
  );
});

test('batchnorm eval: values and gradients', () => {
  const rng = mulberry32(920);
  const rm = randn([3], rng).data;
  const rv = uniform([3], 0.5, 2, rng).data;
  const y = op.batchNorm2dEval(refTensor([1, 3, 1, 1], [1, 1, 1]), [1, 1, 1], [0, 0, 0], rm, rv);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(y.data[c] - (1 - rm[c]) / Math.sqrt(rv[c] + 1e-5)) < 1e-14);
  expectGradients(
    'batchnorm eval',
    921,
    { x: randn([2, 3, 5, 7], rng), gamma: uniform([3], 0.5, 2, rng), beta: randn([3], rng) },
    (i) => op.batchNorm2dEval(i.x, i.gamma.data, i.beta.data, rm, rv),
    (i, dy) => {
      const g = op.batchNorm2dEvalBackward(i.x, i.gamma.data, rm, rv, dy);
      return { x: g.dx, gamma: g.dgamma, beta: g.dbeta };
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Squeeze-and-excitation

test('squeeze-excite: known gate and gradients', () => {
  // With zero weights the gate is sigmoid(0) = 0.5 everywhere.
  const x = randn([1, 4, 2, 3], mulberry32(1000));
  const y0 = op.squeezeExcite(x, refTensor([2, 4]), refTensor([4, 2]));
  assert.ok(allclose(y0.data, Array.from(x.data, (v) => v / 2), 0, 1e-15).ok);

  const rng = mulberry32(1001);
  for (const [c, hidden] of [
    [6, 3],
    [5, 2],
  ]) {
    expectGradients(
      `squeezeExcite C=${c} hidden=${hidden}`,
      1002,
      { x: randn([2, c, 5, 7], rng), w1: randn([hidden, c], rng), w2: randn([c, hidden], rng) },
      (i) => op.squeezeExcite(i.x, i.w1, i.w2),
      (i, dy) => {
        const g = op.squeezeExciteBackward(i.x, i.w1, i.w2, dy);
        return { x: g.dx, w1: g.dw1, w2: g.dw2 };
      },
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Pooling

test('maxpool: known values and first-max tie rule', () => {
  const x = refTensor([1, 1, 2, 4], [1, 5, 3, 3, 5, 2, 3, 3]);
  const y = op.maxPool2d(x);
  assert.equal(y.shape, [1, 1, 1, 2]);
  assert.equal(Array.from(y.data), [5, 3]);
  const dx = op.maxPool2dBackward(x, refTensor([1, 1, 1, 2], [10, 20]));
  // Both windows tie; the first maximum in row-major window order receives the whole gradient.
  assert.equal(Array.from(dx.data), [0, 10, 20, 0, 0, 0, 0, 0]);
  assert.equal(op.maxPool2d(refTensor([1, 1, 5, 5]), 3, 2).shape, [1, 1, 2, 2]);
});

test('maxpool and avgpool: gradients', () => {
  const rng = mulberry32(1100);
  const x = randn([2, 3, 7, 9], rng);
  const configs: [op.PerAxis, op.PerAxis][] = [
    [2, 2],
    [3, 2],
    [3, 1],
    [[2, 3], [1, 2]],
  ];
  for (const [k, s] of configs) {
    const tag = `k=${JSON.stringify(k)} s=${JSON.stringify(s)}`;
    expectGradients(`maxPool2d ${tag}`, 1101, { x }, (i) => op.maxPool2d(i.x, k, s), (i, dy) => ({
      x: op.maxPool2dBackward(i.x, dy, k, s),
    }));
    expectGradients(`avgPool2d ${tag}`, 1102, { x }, (i) => op.avgPool2d(i.x, k, s), (i, dy) => ({
      x: op.avgPool2dBackward(i.x.shape, dy, k, s),
    }));
  }
  expectGradients('globalAvgPool', 1103, { x }, (i) => op.globalAvgPool(i.x), (i, dy) => ({
    x: op.globalAvgPoolBackward(i.x.shape, dy),
  }));
});

test('avgpool and global average pool: known values', () => {
  const x = refTensor([1, 1, 2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(Array.from(op.avgPool2d(x).data), [3.5, 5.5]);
  const g = op.globalAvgPool(x);
  assert.equal(g.shape, [1, 1, 1, 1]);
  assert.is(g.data[0], 4.5);
  // Defaults are kernel 2 / stride 2, with trailing odd rows and columns dropped.
  assert.equal(op.avgPool2d(refTensor([1, 1, 3, 5])).shape, [1, 1, 1, 2]);
});

test('tolerance constants match the project contract', () => {
  assert.equal(FWD, { rtol: 1e-4, atol: 1e-5 });
  assert.equal(BWD, { rtol: 1e-3, atol: 1e-5 });
});

test.run();
