// Eval-mode folding: the conv's affine epilogue (BatchNorm scale/shift, PReLU slopes) and the SE pass with the skip added against float64, and DrdNet's folded inference against its layer-by-layer eval path (outputs and dispatch counts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as R from './ref/ops.js';
import { FWD, allclose, mulberry32, randn, relL2, uniform, type RefTensor } from './ref/tensor.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { noGrad } from '../src/graph/autograd.js';
import { BatchNorm2d } from '../src/graph/layers.js';
import { composeFusedBias, conv2dForward, conv2dMultiForward, defaultWinogradConfig, foldAffine, type ConvTileConfig } from '../src/kernels/conv2d.js';
import { squeezeExciteForward } from '../src/kernels/se.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { engine, engineWith, gpu } from './helpers.js';

const rng = mulberry32(23);
const t = (shape: number[]) => randn(shape, rng);

/** y -> prelu((y - mean) * gamma / sqrt(var + eps) + beta) per channel, in float64. */
function bnPreluRef(y: RefTensor, bn: { g: RefTensor; b: RefTensor; m: RefTensor; v: RefTensor } | null, slope: RefTensor | null, eps: number): Float64Array {
  const [, C, H, W] = y.shape;
  const out = new Float64Array(y.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / (H * W)) % C;
    let v = y.data[i];
    if (bn) v = ((v - bn.m.data[c]) * bn.g.data[c]) / Math.sqrt(bn.v.data[c] + eps) + bn.b.data[c];
    if (slope && v < 0) v *= slope.data[slope.data.length === 1 ? 0 : c];
    out[i] = v;
  }
  return out;
}

const tilings: Array<[string, ConvTileConfig]> = [
  ['registers 32x(16x16)', { smem: false, wgX: 32, wgY: 1, tm: 16, tn: 16, bk: 16 }],
  ['registers 64x(8x8)', { smem: false, wgX: 64, wgY: 1, tm: 8, tn: 8, bk: 16 }],
  ['workgroup memory 16x16x(4x4)', { smem: true, wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 }],
  ['workgroup memory 8x8x(8x8), bk 8', { smem: true, wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 8 }],
];

test('the affine epilogue (bias, eval BatchNorm, PReLU per channel or shared) matches float64 on every tiling family', async () => {
  const e = await engine();
  const Co = 7;
  const x = t([2, 5, 9, 11]);
  const w = t([Co, 5, 3, 3]);
  const bias = t([Co]);
  const bn = { g: t([Co]), b: t([Co]), m: t([Co]), v: uniform([Co], 0.2, 2, rng) };
  const slopes = [t([Co]), t([1])];
  const eps = 1e-5;
  const y = R.conv2d(x, w, bias.data, { pad: 2, dilation: 2 });
  for (const [name, config] of tilings) {
    await tidy(async () => {
      const [gx, gw, gb] = [gpu(e, x), gpu(e, w), gpu(e, bias)];
      const gbn = { weight: gpu(e, bn.g), bias: gpu(e, bn.b), runningMean: gpu(e, bn.m), runningVar: gpu(e, bn.v), eps };
      const cases: Array<[string, Tensor, Float64Array]> = [
        ['bias + BN', foldAffine(Co, gb, gbn, null), bnPreluRef(y, bn, null, eps)],
        ['bias + PReLU', foldAffine(Co, gb, null, gpu(e, slopes[0])), bnPreluRef(y, null, slopes[0], eps)],
        ...slopes.map((s, i): [string, Tensor, Float64Array] => [`bias + BN + PReLU (${i ? 'shared' : 'per channel'})`, foldAffine(Co, gb, gbn, gpu(e, s)), bnPreluRef(y, bn, s, eps)]),
      ];
      for (const [what, affine, want] of cases) {
        const prelu = what.includes('PReLU');
        const got = await conv2dForward(gx, gw, null, { padding: 2, dilation: 2, config, epilogue: { affine, prelu } }).read();
        const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
        assert.ok(r.ok, `${name} ${what}: ${r.message}`);
      }
    });
  }
});

test('the residual epilogue adds a skip after BN + PReLU on every tiling family, multi-branch, and over split batches', async () => {
  const Co = 5;
  const x = t([3, 3, 12, 13]);
  const w = t([Co, 3, 3, 3]);
  const w2 = t([Co, 3, 3, 3]);
  const bias = t([Co]);
  const slope = t([Co]);
  const res = t([3, Co, 12, 13]);
  const conv = R.conv2d(x, w, bias.data, { pad: 2, dilation: 2 });
  const want = bnPreluRef(conv, null, slope, 0).map((v, i) => v + res.data[i]);
  // Two branches (d2 and d1) summed, then bias, PReLU and the skip.
  const sum = R.conv2d(x, w2, null, { pad: 1, dilation: 1 });
  const wantMulti = bnPreluRef({ shape: conv.shape, data: conv.data.map((v, i) => v + sum.data[i]) }, null, slope, 0).map((v, i) => v + res.data[i]);
  const configs: Array<[string, ConvTileConfig]> = [...tilings, ['winograd', defaultWinogradConfig(Co)]];
  // One image of the output or the residual is 5*12*13*4 = 3120 bytes: a 4096-byte binding limit runs one image per launch.
  for (const [what, e] of [['whole batch', await engine()], ['one image per launch', await engineWith({ limits: { maxStorageBufferBindingSize: 4096 } })]] as const) {
    // The workgroup-memory tilings pad the packed weights to 64 channels: over the small limit.
    for (const [name, config] of what === 'whole batch' ? configs : configs.filter(([, c]) => !c.smem)) {
      await tidy(async () => {
        const [gx, gw, gr] = [gpu(e, x), gpu(e, w), gpu(e, res)];
        const affine = foldAffine(Co, gpu(e, bias), null, gpu(e, slope));
        const got = await conv2dForward(gx, gw, null, { padding: 2, dilation: 2, config, epilogue: { affine, prelu: true, residual: gr } }).read();
        const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
        assert.ok(r.ok, `${what}, ${name}: ${r.message}`);
        const branches = [{ weight: gw, padding: [2, 2] as [number, number], dilation: [2, 2] as [number, number] }, { weight: gpu(e, w2), padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number] }];
        const gotMulti = await conv2dMultiForward(gx, branches, null, { config, epilogue: { affine, prelu: true, residual: gr } }).read();
        const rm = allclose(gotMulti, wantMulti, FWD.rtol * 10, FWD.atol * 10);
        assert.ok(rm.ok, `${what}, ${name}, two branches: ${rm.message}`);
      });
    }
    if (what !== 'whole batch') e.destroy();
  }
  const e = await engine();
  await tidy(async () => {
    const affine = foldAffine(Co, gpu(e, bias), null, null);
    assert.throws(() => conv2dForward(gpu(e, x), gpu(e, w), null, { padding: 0, epilogue: { affine, prelu: false, residual: gpu(e, res) } }), /residual \[3,5,12,13\] does not match the output \[3,5,10,11\]/);
  });
});

test('the affine epilogue on the fused multi-dilation conv (composed bias, BN, PReLU)', async () => {
  const e = await engine();
  const C = 6;
  const x = t([1, C, 10, 9]);
  const ws = [t([C, C, 3, 3]), t([C, C, 3, 3])];
  const bs = [t([C]), t([C])];
  const wf = t([C, 2 * C, 1, 1]);
  const bf = t([C]);
  const bn = { g: t([C]), b: t([C]), m: t([C]), v: uniform([C], 0.2, 2, rng) };
  const slope = t([C]);
  const cat = R.concat([R.conv2d(x, ws[0], bs[0].data, { pad: 1, dilation: 1 }), R.conv2d(x, ws[1], bs[1].data, { pad: 3, dilation: 3 })]);
  const want = bnPreluRef(R.conv2d(cat, wf, bf.data), bn, slope, 1e-5);
  for (const [name, config] of [tilings[0], tilings[2]]) {
    await tidy(async () => {
      const gws = ws.map((q) => gpu(e, q));
      const gwf = gpu(e, wf);
      const bias = composeFusedBias(gwf, [C, C], bs.map((q) => gpu(e, q)), gpu(e, bf))!;
      const affine = foldAffine(C, bias, { weight: gpu(e, bn.g), bias: gpu(e, bn.b), runningMean: gpu(e, bn.m), runningVar: gpu(e, bn.v), eps: 1e-5 }, gpu(e, slope));
      const branches = gws.map((weight, i) => ({ weight, padding: [i ? 3 : 1, i ? 3 : 1] as [number, number], dilation: [i ? 3 : 1, i ? 3 : 1] as [number, number] }));
      const got = await conv2dMultiForward(gpu(e, x), branches, null, { fuse: gwf, config, epilogue: { affine, prelu: true } }).read();
      const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
      assert.ok(r.ok, `${name}: ${r.message}`);
    });
  }
});

test('the SE pass with the skip connection added matches float64 (x * gate + residual)', async () => {
  const e = await engine();
  for (const [shape, hd] of [[[2, 5, 7, 9], 2], [[1, 16, 33, 31], 1]] as Array<[number[], number]>) {
    const C = shape[1];
    const [x, w1, w2, res] = [t(shape), t([hd, C]), t([C, hd]), t(shape)];
    const se = R.squeezeExcite(x, w1, w2);
    const want = se.data.map((v, i) => v + res.data[i]);
    await tidy(async () => {
      const { y } = squeezeExciteForward(gpu(e, x), gpu(e, w1), gpu(e, w2), false, gpu(e, res));
      const r = allclose(await y.read(), want, FWD.rtol, FWD.atol);
      assert.ok(r.ok, `${shape}: ${r.message}`);
    });
  }
});

/** Random BatchNorm statistics and affine parameters, so folding has something to fold. */
function randomiseBn(model: DrdNet): void {
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    const C = m.weight.size;
    m.weight.write(uniform([C], 0.5, 1.5, rng).data);
    m.bias.write(randn([C], rng).data.map((v) => v * 0.1));
    m.runningMean.write(randn([C], rng).data.map((v) => v * 0.1));
    m.runningVar.write(uniform([C], 0.5, 2, rng).data);
  }
}

for (const name of ['micro', 'tiny'] as const) {
  test(`DrdNet ${name}: folded inference equals the layer-by-layer eval path, with fewer dispatches`, async () => {
    const e = await engine();
    const c = preset(name);
    const model = new DrdNet(e, c, 3).eval();
    randomiseBn(model);
    const x = Tensor.fromData(e, uniform([1, 3, 20, 23], 0, 1, rng).data, [1, 3, 20, 23]);
    try {
      const run = async () => {
        const before = e.counters.dispatches;
        const out = await tidy(async () => {
          const o = noGrad(() => model.forward(x));
          return [await o.final.read(), await o.rain.read()];
        });
        return { out, dispatches: e.counters.dispatches - before };
      };
      const plain = await run();
      const live = e.pool.stats().liveBuffers;
      const unfold = model.foldForInference();
      const folded = await run();
      // Later folded runs reuse the packed weights the first one cached: fewer dispatches, same output.
      const cached = await run();
      assert.ok(cached.dispatches < folded.dispatches, `cached packs: ${cached.dispatches} dispatches vs ${folded.dispatches} on the first folded run`);
      assert.equal(Array.from(cached.out[0]), Array.from(folded.out[0]), 'cached packs give the same output');
      unfold();
      assert.is(e.pool.stats().liveBuffers, live, 'unfold frees the epilogues and the cached packs');
      const again = await run();
      assert.is(again.dispatches, plain.dispatches, 'unfold returns to the layer path');
      for (const i of [0, 1]) {
        const err = relL2(folded.out[i], plain.out[i]);
        assert.ok(err <= 1e-4, `${name} ${i ? 'rain' : 'final'}: relative L2 ${err.toExponential(2)} > 1e-4`);
      }
      // Per forward, folding drops: every BatchNorm pass (2 per block, 1 per branch body), the
      // branch heads' PReLU, the detail blocks' composed-bias dispatches (1 + dilations each) and
      // the skip additions: the rain blocks' (done by the SE pass), the detail blocks' and each
      // branch's long skip (done by a conv epilogue).
      const branches = c.detail ? 2 : 1;
      const blocks = c.rainBlocks + (c.detail ? c.detailBlocks : 0);
      const saved = 2 * blocks + 2 * branches + (c.detail ? 2 * c.detailBlocks * (1 + c.dilations.length) : 0) + (c.se ? c.rainBlocks : 0) + (c.detail ? c.detailBlocks : 0) + branches;
      assert.is(plain.dispatches - folded.dispatches, saved, `dispatches per forward: ${plain.dispatches} layer by layer, ${folded.dispatches} folded`);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
}

test('folding is not used while gradients are recorded or BatchNorm trains', async () => {
  const e = await engine();
  const model = new DrdNet(e, preset('micro'), 4).eval();
  const x = Tensor.fromData(e, uniform([1, 3, 12, 12], 0, 1, rng).data, [1, 3, 12, 12]);
  const unfold = model.foldForInference();
  try {
    const count = async (f: () => Promise<void>) => {
      const before = e.counters.dispatches;
      await f();
      return e.counters.dispatches - before;
    };
    const foldedCount = await count(() => tidy(async () => void (await noGrad(() => model.forward(x)).final.read())));
    model.train();
    const trainCount = await count(() => tidy(async () => void (await noGrad(() => model.forward(x)).final.read())));
    assert.ok(trainCount > foldedCount, `training BN runs the layer path (${trainCount} vs ${foldedCount} dispatches)`);
  } finally {
    unfold();
    x.dispose();
    model.dispose();
  }
});

test.run();
