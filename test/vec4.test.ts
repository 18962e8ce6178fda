// Vec4-row direct conv (algo 'vec4'): forward and dgrad vs the float64 reference over kernel sizes, dilations, paddings, ragged rows and channel tails; epilogues with a residual; multi-branch; validation and the tuner's offer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as R from './ref/ops.js';
import { FWD, allclose, mulberry32, randn } from './ref/tensor.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import {
  autotuneConv, conv2dBackwardData, conv2dForward, conv2dMultiBackwardData, conv2dMultiForward, convCandidates, convOutputSize, convTuning,
  defaultVec4Config, type ConvTileConfig,
} from '../src/kernels/conv2d.js';
import { engine, gpu } from './helpers.js';

const rng = mulberry32(41);
const t = (shape: number[]) => randn(shape, rng);

/** The forward contract; dgrad as the conv kernel tests apply it (test/conv.test.ts kernelCheck: 10x the forward tolerance). */
const close = (got: Float32Array, want: ArrayLike<number>, what: string, slack = 1) => {
  const r = allclose(got, want, FWD.rtol * slack, FWD.atol * slack);
  assert.ok(r.ok, `${what}: ${r.message}`);
};

const vec4 = (tm: number, tn: number, wgX = 64): ConvTileConfig => ({ algo: 'vec4', smem: false, wgX, wgY: 1, tm, tn, bk: 16 });

// Every channel and pixel tile, and a workgroup narrower than a row.
const configs = [vec4(4, 4), vec4(4, 8), vec4(8, 4), vec4(8, 8, 32), vec4(16, 4), vec4(16, 8)];

type Geo = { pad: [number, number]; dilation: [number, number] };
const shapes: Array<[string, number[], number[], Geo[]]> = [
  // Widths 9, 13 and 6 leave a partial row tile for tn 4 and 8; channels 3, 7, 21 a partial channel tile.
  ['3x3, 5->7', [2, 5, 11, 13], [7, 5, 3, 3], [1, 2, 3].flatMap((d) => [...new Set([0, 1, d])].map((p): Geo => ({ pad: [p, p], dilation: [d, d] })))],
  ['3x3, 19->21 (wider than a channel tile)', [1, 19, 6, 9], [21, 19, 3, 3], [{ pad: [3, 3], dilation: [3, 3] }]],
  ['3x3, 16->3', [2, 16, 7, 6], [3, 16, 3, 3], [{ pad: [1, 1], dilation: [1, 1] }]],
  ['1x1, 17->6', [2, 17, 7, 9], [6, 17, 1, 1], [{ pad: [0, 0], dilation: [1, 1] }]],
  // Every per-axis value different (a swapped h/w shows): kernel 3x2, padding 2x0, dilation 2x3.
  ['3x2 per-axis', [2, 9, 11, 14], [10, 9, 3, 2], [{ pad: [2, 0], dilation: [2, 3] }]],
];

for (const [name, xs, ws, geos] of shapes) {
  test(`vec4 fwd and dgrad ${name}`, async () => {
    const e = await engine();
    const x = t(xs);
    const w = t(ws);
    await tidy(async () => {
      const [gx, gw] = [gpu(e, x), gpu(e, w)];
      for (const o of geos) {
        if (convOutputSize(xs[2], ws[2], 1, o.pad[0], o.dilation[0]) < 1 || convOutputSize(xs[3], ws[3], 1, o.pad[1], o.dilation[1]) < 1) continue;
        const y = R.conv2d(x, w, null, o);
        const dy = t(y.shape);
        const dx = R.conv2dBackward(x, w, dy, o).dx;
        const gdy = gpu(e, dy);
        const p = { padding: o.pad, dilation: o.dilation };
        for (const c of configs) {
          const what = `${JSON.stringify(o)} ${JSON.stringify(c)}`;
          close(await conv2dForward(gx, gw, null, { ...p, config: c }).read(), y.data, `fwd ${what}`);
          close(await conv2dBackwardData(gdy, gw, xs, { ...p, config: c }).read(), dx.data, `dgrad ${what}`, 10);
        }
      }
    });
  });
}

test('vec4 epilogues: bias + relu, leakyRelu, affine + PReLU + residual', async () => {
  const e = await engine();
  const x = t([2, 5, 9, 11]);
  const w = t([7, 5, 3, 3]);
  const b = t([7]);
  const scale = t([7]);
  const slope = t([7]);
  const y = R.conv2d(x, w, null, { pad: 2, dilation: 2 });
  const res = t(y.shape);
  const per = (f: (v: number, m: number, i: number) => number) => Float64Array.from(y.data, (v, i) => f(v, Math.floor(i / 99) % 7, i));
  const p = { padding: 2, dilation: 2 };
  await tidy(async () => {
    const [gx, gw, gb] = [gpu(e, x), gpu(e, w), gpu(e, b)];
    for (const c of [vec4(4, 8), vec4(16, 4)]) {
      const what = JSON.stringify(c);
      close(await conv2dForward(gx, gw, gb, { ...p, activation: 'relu', config: c }).read(), per((v, m) => Math.max(v + b.data[m], 0)), `bias + relu ${what}`);
      close(await conv2dForward(gx, gw, gb, { ...p, activation: 'leakyRelu', negativeSlope: 0.2, config: c }).read(), per((v, m) => (v + b.data[m] > 0 ? v + b.data[m] : 0.2 * (v + b.data[m]))), `leakyRelu ${what}`);
      // affine = [scale | shift | slope], then PReLU, then the residual added.
      const affine = Tensor.fromData(e, Float32Array.from([...scale.data, ...b.data, ...slope.data]), [21]);
      const want = per((v, m, i) => {
        const u = v * scale.data[m] + b.data[m];
        return (u > 0 ? u : slope.data[m] * u) + res.data[i];
      });
      close(await conv2dForward(gx, gw, null, { ...p, epilogue: { affine, prelu: true, residual: gpu(e, res) }, config: c }).read(), want, `affine + PReLU + residual ${what}`);
    }
  });
});

test('vec4 multi-branch (dilations 1,3,5, folded 1x1 fuse) fwd and dgrad', async () => {
  const e = await engine();
  const dil = [1, 3, 5];
  const x = t([2, 5, 11, 9]);
  const ws = dil.map(() => t([4, 5, 3, 3]));
  const wf = t([6, 12, 1, 1]);
  const ref = R.multiDilationConv2d(x, ws, wf, dil);
  const dy = t(ref.y.shape);
  const dx = ref.dx(dy).data;
  await tidy(async () => {
    const branches = ws.map((w, k) => ({ weight: gpu(e, w), padding: [dil[k], dil[k]] as [number, number], dilation: [dil[k], dil[k]] as [number, number] }));
    const fuse = gpu(e, wf);
    for (const c of [vec4(8, 8), vec4(4, 4, 32)]) {
      close(await conv2dMultiForward(gpu(e, x), branches, null, { fuse, config: c }).read(), ref.y.data, `multi fwd ${JSON.stringify(c)}`);
      close(await conv2dMultiBackwardData(gpu(e, dy), branches, x.shape, { fuse, config: c }).read(), dx, `multi dgrad ${JSON.stringify(c)}`, 10);
    }
  });
});

test('vec4 configs are validated; a strided conv refuses an explicit one and is never offered one', async () => {
  const e = await engine();
  const x = Tensor.fromData(e, new Float32Array(2 * 4 * 8 * 8), [2, 4, 8, 8]);
  const w = Tensor.fromData(e, new Float32Array(4 * 4 * 9), [4, 4, 3, 3]);
  try {
    assert.throws(() => conv2dForward(x, w, null, { config: vec4(12, 4) }), /invalid vec4 config/);
    assert.throws(() => conv2dForward(x, w, null, { config: vec4(4, 2) }), /invalid vec4 config/);
    assert.throws(() => conv2dForward(x, w, null, { config: { ...vec4(4, 4), smem: true } }), /invalid vec4 config/);
    assert.throws(() => conv2dForward(x, w, null, { stride: 2, config: vec4(4, 4) }), /needs a stride-1 conv/);
    assert.throws(() => conv2dBackwardData(Tensor.fromData(e, new Float32Array(2 * 4 * 16), [2, 4, 4, 4]), w, [2, 4, 8, 8], { stride: 2, padding: 1, config: vec4(4, 4) }), /needs a stride-1 conv/);
  } finally {
    [x, w].forEach((v) => v.dispose());
  }
  assert.ok(convCandidates(e, 16, undefined, { vec4: true }).some((c) => c.algo === 'vec4'));
  assert.not.ok(convCandidates(e, 16).some((c) => c.algo === 'vec4'));
  assert.equal(defaultVec4Config(3).tm, 4);
  // The tuner's own lists: vec4 rows are timed for a stride-1 pass, never for a strided one.
  for (const stride of [1, 2]) {
    const timed: ConvTileConfig[] = [];
    const chosen = await autotuneConv(e, [{ x: [1, 4, 9, 10], w: [6, 4, 3, 3], stride, padding: 1, kinds: ['fwd', 'dgrad'] }], {
      reps: 1, budgetMs: 0, onTimed: (c) => timed.push(c as ConvTileConfig),
    });
    for (const k of chosen.keys()) convTuning(e).delete(k);
    assert.is(timed.filter((c) => c.algo === 'vec4').length, stride === 1 ? 2 : 0, `stride ${stride}: ${JSON.stringify(timed)}`);
  }
});

test.run();
