// conv2d and multiDilationConv vs float64 references: forward, dgrad, wgrad and bias gradients
// (autograd against central differences), fused epilogues, every tiling strategy, binding-limit
// splitting and refusal, and the autotuner.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as R from './ref/ops.js';
import { BWD, FWD, allclose, mulberry32, randn, type RefTensor } from './ref/tensor.js';
import { conv2d, multiDilationConv, type DilationBranch } from '../src/graph/conv.js';
import * as ops from '../src/graph/ops.js';
import { backward } from '../src/graph/autograd.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import {
  autotuneConv,
  checkConvConfig,
  conv2dBackwardBias,
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dForward,
  convTuning,
  defaultConvConfig,
  defaultWgradConfig,
  subgroupShare,
  type ConvTileConfig,
  type WgradTileConfig,
} from '../src/kernels/conv2d.js';
import type { Engine } from '../src/gpu/runtime.js';
import { engine, engineWith, gpu } from './helpers.js';
import { checkOp, type OpCase } from './gradcheck-gpu.js';

const rng = mulberry32(7);
const t = (shape: number[]) => randn(shape, rng);
type P = { stride?: number | [number, number]; padding?: number | [number, number]; dilation?: number | [number, number] };
const refOpts = (p: P) => ({ stride: p.stride, pad: p.padding, dilation: p.dilation });

function convCase(name: string, x: number[], w: number[], bias: boolean, p: P, directional = false): OpCase {
  const inputs = [t(x), t(w), ...(bias ? [t([w[0]])] : [])];
  return {
    name,
    inputs,
    directional,
    gpu: ([xx, ww, bb]) => conv2d(xx, ww, bb ?? null, p),
    ref: ([xx, ww, bb]) => R.conv2d(xx, ww, bb ? bb.data : null, refOpts(p)),
  };
}

const cases: OpCase[] = [
  convCase('conv2d 3x3 odd 7x9, 3->5, bias, batch 2', [2, 3, 7, 9], [5, 3, 3, 3], true, { padding: 1 }),
  convCase('conv2d stride 2, 9x7', [1, 3, 9, 7], [4, 3, 3, 3], true, { stride: 2, padding: 1 }),
  convCase('conv2d dilation 3, padding 3', [1, 5, 9, 11], [3, 5, 3, 3], true, { padding: 3, dilation: 3 }),
  convCase('conv2d dilation 5, padding 5, 7x9', [2, 3, 7, 9], [5, 3, 3, 3], true, { padding: 5, dilation: 5 }),
  convCase('conv2d 1x1, no bias, batch 3', [3, 5, 7, 9], [4, 5, 1, 1], false, {}),
  convCase('conv2d no padding, no bias', [1, 3, 8, 6], [2, 3, 3, 3], false, {}),
  convCase('conv2d 2x3 kernel, stride [2,1], padding [0,1], dilation [1,2]', [2, 3, 7, 9], [3, 3, 2, 3], true, { stride: [2, 1], padding: [0, 1], dilation: [1, 2] }),
  convCase('conv2d 5x5 stride 3 dilation 2', [1, 2, 13, 12], [3, 2, 5, 5], true, { stride: 3, padding: 2, dilation: 2 }),
  convCase('conv2d 20->18 (channel tails), directional', [2, 20, 6, 7], [18, 20, 3, 3], true, { padding: 1 }, true),
];

for (const c of cases) {
  test(c.name, async () => {
    await checkOp(await engine(), c);
  });
}

// ---- fused epilogues ------------------------------------------------------------------------

/** Values kept away from the activation kink so finite differences do not straddle it. */
for (const act of ['relu', 'leakyRelu'] as const) {
  test(`conv2d fused bias + ${act} vs reference`, async () => {
    const slope = 0.2;
    const f = (v: number) => (v > 0 ? v : act === 'relu' ? 0 : slope * v);
    await checkOp(await engine(), {
      name: `conv2d+${act}`,
      inputs: [t([2, 3, 7, 9]), t([4, 3, 3, 3]), t([4])],
      gpu: ([x, w, b]) => conv2d(x, w, b, { padding: 1, activation: act, negativeSlope: slope }),
      ref: ([x, w, b]) => {
        const y = R.conv2d(x, w, b.data, { pad: 1 });
        y.data.forEach((v, i) => (y.data[i] = f(v)));
        return y;
      },
    });
  });
}

test('conv2d fused epilogue matches the unfused ops', async () => {
  const e = await engine();
  const [xr, wr, br, gr] = [t([2, 6, 9, 7]), t([8, 6, 3, 3]), t([8]), t([2, 8, 9, 7])];
  const run = async (fused: boolean): Promise<Float32Array[]> => {
    let out: Float32Array[] = [];
    await tidy(async () => {
      const [x, w, b] = [gpu(e, xr, true), gpu(e, wr, true), gpu(e, br, true)];
      const y = fused ? conv2d(x, w, b, { padding: 1, activation: 'leakyRelu', negativeSlope: 0.1 }) : ops.leakyRelu(ops.add(conv2d(x, w, null, { padding: 1 }), ops.reshape(b, [1, 8, 1, 1])), 0.1);
      backward(ops.sum(ops.mul(y, gpu(e, gr))));
      out = [await y.read(), await x.grad!.read(), await w.grad!.read(), await b.grad!.read()];
      for (const v of [x, w, b]) v.grad!.dispose();
    });
    return out;
  };
  const a = await run(true);
  const b = await run(false);
  ['y', 'dx', 'dw', 'db'].forEach((n, i) => {
    const r = allclose(a[i], b[i], BWD.rtol, BWD.atol);
    assert.ok(r.ok, `${n}: ${r.message}`);
  });
});

// ---- multiDilationConv --------------------------------------------------------------------------

function refDetail(x: RefTensor, ws: RefTensor[], bs: RefTensor[], wf: RefTensor, bf: RefTensor, dil: number[]): RefTensor {
  const parts = ws.map((w, k) => R.conv2d(x, w, bs[k].data, { pad: dil[k], dilation: dil[k] }));
  return R.conv2d(R.concat(parts), wf, bf.data);
}

test('multiDilationConv vs conv2d x3 + concat + 1x1 (reference)', async () => {
  const dil = [1, 3, 5];
  await checkOp(await engine(), {
    name: 'multiDilationConv',
    inputs: [t([1, 3, 7, 9]), t([4, 3, 3, 3]), t([4, 3, 3, 3]), t([4, 3, 3, 3]), t([4]), t([4]), t([4]), t([5, 12, 1, 1]), t([5])],
    gpu: ([x, w1, w2, w3, b1, b2, b3, wf, bf]) =>
      multiDilationConv(x, [w1, w2, w3].map((w, k) => ({ weight: w, bias: [b1, b2, b3][k], dilation: dil[k] })), wf, bf),
    ref: ([x, w1, w2, w3, b1, b2, b3, wf, bf]) => refDetail(x, [w1, w2, w3], [b1, b2, b3], wf, bf, dil),
  });
});

test('multiDilationConv matches the unfused GPU composition (64-wide-ish channels, batch 2)', async () => {
  const e = await engine();
  const dil = [1, 3, 5];
  const C = 12;
  const refs = [t([2, C, 11, 10]), ...dil.map(() => t([C, C, 3, 3])), ...dil.map(() => t([C])), t([C, 3 * C, 1, 1]), t([C]), t([2, C, 11, 10])];
  const run = async (fused: boolean): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    await tidy(async () => {
      const ts = refs.slice(0, -1).map((r) => gpu(e, r, true));
      const [x, w1, w2, w3, b1, b2, b3, wf, bf] = ts;
      const ws = [w1, w2, w3];
      const bs = [b1, b2, b3];
      const y = fused
        ? multiDilationConv(x, ws.map((w, k): DilationBranch => ({ weight: w, bias: bs[k], dilation: dil[k] })), wf, bf)
        : conv2d(ops.concat(ws.map((w, k) => conv2d(x, w, bs[k], { padding: dil[k], dilation: dil[k] }))), wf, bf);
      backward(ops.sum(ops.mul(y, gpu(e, refs[refs.length - 1]))));
      out.push(await y.read());
      for (const v of ts) {
        out.push(await v.grad!.read());
        v.grad!.dispose();
      }
    });
    return out;
  };
  const a = await run(true);
  const b = await run(false);
  const names = ['y', 'dx', 'dw1', 'dw2', 'dw3', 'db1', 'db2', 'db3', 'dwf', 'dbf'];
  names.forEach((n, i) => {
    const r = allclose(a[i], b[i], BWD.rtol, 1e-4);
    assert.ok(r.ok, `${n}: ${r.message}`);
  });
});

test('multiDilationConv without biases, two branches', async () => {
  await checkOp(await engine(), {
    name: 'multiDilationConv no bias',
    inputs: [t([2, 2, 6, 5]), t([3, 2, 3, 3]), t([2, 2, 3, 3]), t([4, 5, 1, 1])],
    gpu: ([x, w1, w2, wf]) => multiDilationConv(x, [{ weight: w1, dilation: 2 }, { weight: w2, dilation: 1 }], wf),
    ref: ([x, w1, w2, wf]) => R.conv2d(R.concat([R.conv2d(x, w1, null, { pad: 2, dilation: 2 }), R.conv2d(x, w2, null, { pad: 1, dilation: 1 })]), wf, null),
  });
});

// ---- kernels under every tiling ---------------------------------------------------------------

async function kernelCheck(e: Engine, what: string, x: RefTensor, w: RefTensor, p: P, conv?: ConvTileConfig, wg?: WgradTileConfig): Promise<void> {
  const b = t([w.shape[0]]);
  const y = R.conv2d(x, w, b.data, refOpts(p));
  const dy = t(y.shape);
  const ref = R.conv2dBackward(x, w, dy, refOpts(p));
  await tidy(async () => {
    const [gx, gw, gb, gdy] = [gpu(e, x), gpu(e, w), gpu(e, b), gpu(e, dy)];
    const checks: Array<[string, Tensor, ArrayLike<number>]> = [
      ['fwd', conv2dForward(gx, gw, gb, { ...p, config: conv }), y.data],
      ['dgrad', conv2dBackwardData(gdy, gw, x.shape, { ...p, config: conv }), ref.dx.data],
      ['wgrad', conv2dBackwardFilter(gx, gdy, w.shape, { ...p, config: wg }), ref.dw.data],
      ['bgrad', conv2dBackwardBias(gdy), ref.db],
    ];
    for (const [n, got, want] of checks) {
      const r = allclose(await got.read(), want, FWD.rtol * 10, FWD.atol * 10);
      assert.ok(r.ok, `${what} ${n}: ${r.message}`);
    }
  });
}

/** The wgrad default for a geometry, computed like conv2dBackwardFilter does. */
function convTuningDefaults(e: Engine, x: number[], w: number[]): WgradTileConfig {
  return defaultWgradConfig(e, { N: x[0], Ci: x[1], H: x[2], W: x[3], Co: w[0], KH: w[2], KW: w[3], Ho: x[2], Wo: x[3], sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1 });
}

const tilings: Array<[string, ConvTileConfig, WgradTileConfig]> = [
  [
    'registers 64x(8x8)',
    { smem: false, wgX: 64, wgY: 1, tm: 8, tn: 8, bk: 16 },
    { kernel: 'pixels', wgX: 16, wgY: 1, tu: 4, tv: 7, tm: 4, tn: 4, bk: 16, targetWorkgroups: 7, maxSplitPixels: 50 },
  ],
  [
    'registers 32x(16x16) (the software default)',
    { smem: false, wgX: 32, wgY: 1, tm: 16, tn: 16, bk: 16 },
    { kernel: 'nhwc', wgX: 8, wgY: 1, tu: 16, tv: 8, tm: 4, tn: 4, bk: 16, targetWorkgroups: 64, maxSplitPixels: 4096 },
  ],
  [
    'registers 32x(8x16), wgrad with vec4 accumulators 8x(16x8)',
    { smem: false, wgX: 32, wgY: 1, tm: 8, tn: 16, bk: 16 },
    { kernel: 'nhwc4', wgX: 8, wgY: 1, tu: 16, tv: 8, tm: 4, tn: 4, bk: 16, targetWorkgroups: 5, maxSplitPixels: 40 },
  ],
  // Subgroup-shared weights (where the device has subgroups; refused otherwise, see below): the
  // lavapipe default, and 12 channels (a second, partial group of broadcasts).
  [
    'subgroup weights 64x(16x8) (the lavapipe default), wgrad with subgroup dy 8x(16x8)',
    { smem: false, subgroups: true, wgX: 64, wgY: 1, tm: 16, tn: 8, bk: 16 },
    { kernel: 'nhwc', subgroups: true, wgX: 8, wgY: 1, tu: 16, tv: 8, tm: 4, tn: 4, bk: 16, targetWorkgroups: 64, maxSplitPixels: 4096 },
  ],
  [
    'subgroup weights 32x(12x4), wgrad with subgroup dy 16x(12x2)',
    { smem: false, subgroups: true, wgX: 32, wgY: 1, tm: 12, tn: 4, bk: 16 },
    { kernel: 'nhwc', subgroups: true, wgX: 16, wgY: 1, tu: 12, tv: 2, tm: 4, tn: 4, bk: 16, targetWorkgroups: 7, maxSplitPixels: 50 },
  ],
  [
    'workgroup memory 16x16x(4x4)',
    { smem: true, wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 },
    { kernel: 'tiled', wgX: 16, wgY: 16, tu: 16, tv: 16, tm: 4, tn: 4, bk: 16, targetWorkgroups: 9, maxSplitPixels: 4096 },
  ],
  [
    'workgroup memory 8x4x(4x2), bk 8',
    { smem: true, wgX: 8, wgY: 4, tm: 4, tn: 2, bk: 8 },
    { kernel: 'tiled', wgX: 8, wgY: 4, tu: 16, tv: 16, tm: 4, tn: 2, bk: 8, targetWorkgroups: 3, maxSplitPixels: 30 },
  ],
];

for (const [name, conv, wg] of tilings) {
  test(`kernels with ${name}: 3x3 dil 3, stride 2, 1x1`, async () => {
    const e = await engine();
    if (conv.subgroups && subgroupShare(e) === 0) {
      assert.throws(() => checkConvConfig(e, conv), /'subgroups' feature/);
      return;
    }
    await kernelCheck(e, `${name} 3x3 d3`, t([2, 19, 10, 13]), t([21, 19, 3, 3]), { padding: 3, dilation: 3 }, conv, wg);
    await kernelCheck(e, `${name} 3x3 s2`, t([1, 5, 11, 9]), t([3, 5, 3, 3]), { stride: 2, padding: 1 }, conv, wg);
    await kernelCheck(e, `${name} 1x1`, t([2, 17, 7, 9]), t([6, 17, 1, 1]), {}, conv, wg);
    // Every per-axis parameter different (a swapped h/w anywhere shows): kernel 3x2, stride 1x2,
    // padding 2x0, dilation 2x3; and its transpose.
    await kernelCheck(e, `${name} per-axis`, t([2, 9, 11, 14]), t([10, 9, 3, 2]), { stride: [1, 2], padding: [2, 0], dilation: [2, 3] }, conv, wg);
    await kernelCheck(e, `${name} per-axis transposed`, t([1, 9, 14, 11]), t([10, 9, 2, 3]), { stride: [2, 1], padding: [0, 2], dilation: [3, 2] }, conv, wg);
  });
}

test('wgrad over NHWC copies with more input channels than one row of lanes covers (70 > 8 lanes x 8)', async () => {
  const e = await engine();
  const nhwc = { wgY: 1, tm: 4, tn: 4, bk: 16, targetWorkgroups: 16, maxSplitPixels: 64 };
  const x = t([1, 70, 6, 7]);
  const w = t([13, 70, 3, 3]);
  const dy = t([1, 13, 6, 7]);
  const p = { padding: 2, dilation: 2 };
  const want = R.conv2dBackward(x, w, dy, refOpts(p)).dw.data;
  await tidy(async () => {
    const [gx, gdy] = [gpu(e, x), gpu(e, dy)];
    for (const c of [
      { ...nhwc, kernel: 'nhwc', wgX: 8, tu: 16, tv: 8 },
      { ...nhwc, kernel: 'nhwc4', wgX: 8, tu: 16, tv: 8 },
      { ...nhwc, kernel: 'nhwc4', wgX: 8, tu: 8, tv: 4 },
      { ...nhwc, kernel: 'nhwc4', wgX: 16, tu: 4, tv: 8 },
    ] as WgradTileConfig[]) {
      const r = allclose(await conv2dBackwardFilter(gx, gdy, w.shape, { ...p, config: c }).read(), want, FWD.rtol * 10, FWD.atol * 10);
      assert.ok(r.ok, `${JSON.stringify(c)}: ${r.message}`);
    }
  });
});

test('the real-GPU defaults (workgroup memory) are valid and correct, wide and narrow', async () => {
  const e = await engine();
  const gpuLike = { adapter: { ...e.adapter, software: false }, limits: e.limits } as unknown as Engine;
  for (const [x, w] of [[[1, 64, 9, 10], [3, 64, 3, 3]], [[2, 3, 9, 10], [64, 3, 3, 3]]]) {
    const [Co, Ci] = w;
    const conv = defaultConvConfig(gpuLike, Co);
    const dgradConv = defaultConvConfig(gpuLike, Ci);
    assert.ok(conv.smem && dgradConv.smem);
    const wg = convTuningDefaults(gpuLike, x, w);
    await kernelCheck(e, `gpu defaults ${Ci}->${Co}`, t(x), t(w), { padding: 1 }, conv, wg);
    await kernelCheck(e, `gpu defaults ${Ci}->${Co} (dgrad tiles)`, t(x), t(w), { padding: 1 }, dgradConv, wg);
  }
});

// ---- binding limits ------------------------------------------------------------------------------

/** Forward and all gradients of multiDilationConv on `e`, driven by backward(y, { grad }). */
async function detailGrads(e: Engine, refs: RefTensor[], dil: number[]): Promise<Float32Array[]> {
  const ts = refs.slice(0, -1).map((r) => gpu(e, r, true));
  const [x, w1, w2, wf] = ts;
  const y = multiDilationConv(x, [{ weight: w1, dilation: dil[0] }, { weight: w2, dilation: dil[1] }], wf);
  const g = gpu(e, refs[refs.length - 1]);
  backward(y, { grad: g });
  const out = [await y.read()];
  for (const v of ts) out.push(await v.grad!.read());
  for (const v of [...ts, y, g]) {
    v.grad?.dispose();
    v.dispose();
  }
  return out;
}

test('convolutions over the binding limit split over the batch, or refuse naming the limit', async () => {
  const small = await engineWith({ limits: { maxStorageBufferBindingSize: 4096 } });
  try {
    // One image of x is 4*12*13*4 = 2496 bytes; the batch of 3 is 7488 bytes, over the limit.
    await kernelCheck(small, 'split', t([3, 4, 12, 13]), t([5, 4, 3, 3]), { padding: 2, dilation: 2 });
    await kernelCheck(small, 'split, 8 channels', t([3, 8, 9, 7]), t([5, 8, 3, 3]), { padding: 1, stride: 2 });
    const dil = [1, 2];
    const refs = [t([3, 4, 12, 13]), t([3, 4, 3, 3]), t([3, 4, 3, 3]), t([4, 6, 1, 1]), t([3, 4, 12, 13])];
    const got = await detailGrads(small, refs, dil);
    const want = await detailGrads(await engine(), refs, dil);
    ['y', 'dx', 'dw1', 'dw2', 'dwf'].forEach((n, i) => {
      const r = allclose(got[i], want[i], FWD.rtol * 10, FWD.atol * 10);
      assert.ok(r.ok, `multiDilationConv split ${n}: ${r.message}`);
    });
    const big = Tensor.fromData(small, new Float32Array(2 * 8 * 16 * 16), [2, 8, 16, 16]); // 8 KiB per image
    const w = Tensor.fromData(small, new Float32Array(4 * 8 * 9), [4, 8, 3, 3]);
    assert.throws(() => conv2dForward(big, w, null, { padding: 1 }), /one image of x \[2,8,16,16\].*maxStorageBufferBindingSize \(4096\)/);
    big.dispose();
    w.dispose();
  } finally {
    small.destroy();
  }
});

// ---- autotune --------------------------------------------------------------------------------

test('autotuneConv records a choice per shape class and later calls use it', async () => {
  const e = await engine();
  const before = convTuning(e).size;
  const candidates: { conv: ConvTileConfig[]; wgrad: WgradTileConfig[] } = {
    conv: [
      { smem: false, wgX: 32, wgY: 1, tm: 4, tn: 2, bk: 16 },
      { smem: false, wgX: 16, wgY: 1, tm: 8, tn: 1, bk: 16 },
    ],
    wgrad: [
      { kernel: 'pixels', wgX: 8, wgY: 1, tu: 4, tv: 2, tm: 4, tn: 4, bk: 16, targetWorkgroups: 8, maxSplitPixels: 4096 },
      { kernel: 'nhwc', wgX: 16, wgY: 1, tu: 8, tv: 4, tm: 4, tn: 4, bk: 16, targetWorkgroups: 8, maxSplitPixels: 4096 },
    ],
  };
  const chosen = await autotuneConv(e, [{ x: [1, 4, 9, 10], w: [6, 4, 3, 3], padding: 1 }], { reps: 1, candidates });
  assert.is(chosen.size, 3);
  assert.is(convTuning(e).size, before + 3);
  for (const k of chosen.keys()) assert.ok(k.includes('4->6:k3x3'), k);
  await kernelCheck(e, 'tuned', t([1, 4, 9, 10]), t([6, 4, 3, 3]), { padding: 1 });
  for (const k of chosen.keys()) convTuning(e).delete(k);
});

test('conv2d refuses mismatched shapes with a clear message', async () => {
  const e = await engine();
  const x = Tensor.fromData(e, new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
  const w = Tensor.fromData(e, new Float32Array(5 * 2 * 3 * 3), [5, 2, 3, 3]);
  assert.throws(() => conv2d(x, w), /expects 2 input channels/);
  assert.throws(() => conv2d(x, Tensor.fromData(e, new Float32Array(5 * 3 * 5 * 5), [5, 3, 5, 5])), /empty output/);
  x.dispose();
  w.dispose();
});

test.run();
