// Winograd F(2x2,3x3) conv: forward and dgrad vs the float64 reference over dilations, paddings, ragged tiles and channel tails; epilogues; multi-branch; tuner and stored entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as R from './ref/ops.js';
import { FWD, allclose, mulberry32, randn } from './ref/tensor.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { fileTuningStore } from '../src/io/tuning-store-node.js';
import {
  autotuneConv, conv2dBackwardData, conv2dForward, conv2dMultiBackwardData, conv2dMultiForward, convCandidates, convOutputSize, convTuning,
  adapterId, defaultConvConfig, defaultWinogradConfig, foldAffine, prepareTuning, recordConvConfigs, tuneStats, type ConvTileConfig,
} from '../src/kernels/conv2d.js';
import { engine, engineWith, gpu } from './helpers.js';

const rng = mulberry32(29);
const t = (shape: number[]) => randn(shape, rng);

/** The forward contract; dgrad as the conv kernel tests apply it (test/conv.test.ts kernelCheck: 10x the forward tolerance). */
const fwdClose = (got: Float32Array, want: ArrayLike<number>, what: string) => {
  const r = allclose(got, want, FWD.rtol, FWD.atol);
  assert.ok(r.ok, `${what}: ${r.message}`);
};
const dgradClose = (got: Float32Array, want: ArrayLike<number>, what: string) => {
  const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
  assert.ok(r.ok, `${what}: ${r.message}`);
};

const wino = (tm: number, tn: number, wgX = 64): ConvTileConfig => ({ algo: 'winograd', smem: false, wgX, wgY: 1, tm, tn, bk: 16 });

// One tile per invocation (the default shape) and several (TT > 1, lanes past the last tile).
const configs = (M: number): ConvTileConfig[] => [defaultWinogradConfig(M), wino(4, 4, 32), wino(16, 1)];

const shapes: Array<[string, number[], number[]]> = [
  ['3->16', [2, 3, 7, 9], [16, 3, 3, 3]],
  ['16->3', [2, 16, 9, 7], [3, 16, 3, 3]],
  ['5->7', [2, 5, 11, 13], [7, 5, 3, 3]],
];

for (const [name, xs, ws] of shapes) {
  test(`winograd fwd and dgrad ${name} (batch 2, odd H/W), dilations 1,2,3,5, paddings 0/1/d`, async () => {
    const e = await engine();
    const x = t(xs);
    const w = t(ws);
    await tidy(async () => {
      const [gx, gw] = [gpu(e, x), gpu(e, w)];
      for (const d of [1, 2, 3, 5]) {
        for (const pad of [...new Set([0, 1, d])]) {
          if (convOutputSize(xs[2], 3, 1, pad, d) < 1 || convOutputSize(xs[3], 3, 1, pad, d) < 1) continue;
          const o = { pad, dilation: d };
          const y = R.conv2d(x, w, null, o);
          const dy = t(y.shape);
          const dx = R.conv2dBackward(x, w, dy, o).dx;
          const gdy = gpu(e, dy);
          for (const c of configs(ws[0])) {
            fwdClose(await conv2dForward(gx, gw, null, { padding: pad, dilation: d, config: c }).read(), y.data, `fwd d${d} p${pad} ${JSON.stringify(c)}`);
          }
          for (const c of configs(ws[1])) {
            dgradClose(await conv2dBackwardData(gdy, gw, xs, { padding: pad, dilation: d, config: c }).read(), dx.data, `dgrad d${d} p${pad} ${JSON.stringify(c)}`);
          }
        }
      }
    });
  });
}

test('winograd per-axis padding and dilation (a swapped h/w shows)', async () => {
  const e = await engine();
  const x = t([1, 4, 10, 13]);
  const w = t([5, 4, 3, 3]);
  const o = { pad: [1, 3] as [number, number], dilation: [2, 3] as [number, number] };
  const y = R.conv2d(x, w, null, o);
  const dy = t(y.shape);
  const dx = R.conv2dBackward(x, w, dy, o).dx;
  await tidy(async () => {
    const p = { padding: o.pad, dilation: o.dilation };
    fwdClose(await conv2dForward(gpu(e, x), gpu(e, w), null, { ...p, config: wino(8, 1) }).read(), y.data, 'fwd');
    dgradClose(await conv2dBackwardData(gpu(e, dy), gpu(e, w), x.shape, { ...p, config: wino(4, 2) }).read(), dx.data, 'dgrad');
  });
});

test('winograd epilogues: bias, relu, leakyRelu, folded affine + PReLU', async () => {
  const e = await engine();
  const x = t([2, 5, 9, 11]);
  const w = t([7, 5, 3, 3]);
  const b = t([7]);
  const scale = t([7]);
  const slope = t([7]);
  const p = { padding: 3, dilation: 3 };
  const y = R.conv2d(x, w, b.data, { pad: 3, dilation: 3 });
  const act = (f: (v: number, m: number) => number) => Float64Array.from(y.data, (v, i) => f(v, Math.floor(i / (9 * 11)) % 7));
  await tidy(async () => {
    const [gx, gw, gb] = [gpu(e, x), gpu(e, w), gpu(e, b)];
    const c = defaultWinogradConfig(7);
    fwdClose(await conv2dForward(gx, gw, gb, { ...p, config: c }).read(), y.data, 'bias');
    fwdClose(await conv2dForward(gx, gw, gb, { ...p, activation: 'relu', config: c }).read(), act((v) => Math.max(v, 0)), 'relu');
    fwdClose(await conv2dForward(gx, gw, gb, { ...p, activation: 'leakyRelu', negativeSlope: 0.2, config: c }).read(), act((v) => (v > 0 ? v : 0.2 * v)), 'leakyRelu');
    // affine = [scale | shift | slope] with shift = bias (no BatchNorm): built by hand so the reference is plain.
    const affine = Tensor.fromData(e, Float32Array.from([...scale.data, ...b.data, ...slope.data]), [21]);
    const want = act((v, m) => {
      const u = (v - b.data[m]) * scale.data[m] + b.data[m];
      return u > 0 ? u : slope.data[m] * u;
    });
    fwdClose(await conv2dForward(gx, gw, null, { ...p, epilogue: { affine, prelu: true }, config: c }).read(), want, 'affine + PReLU');
    // foldAffine's own output drives the same path (what DrdNet.foldForInference builds).
    const folded = foldAffine(7, gb, null, gpu(e, slope));
    const wantFold = act((v, m) => (v > 0 ? v : slope.data[m] * v));
    fwdClose(await conv2dForward(gx, gw, null, { ...p, epilogue: { affine: folded, prelu: true }, config: c }).read(), wantFold, 'foldAffine + PReLU');
  });
});

// ---- multi-branch (multiDilationConv) --------------------------------------------------------------

test('winograd multi-branch (dilations 1,3,5, folded 1x1 fuse, bias, leakyRelu) fwd and dgrad', async () => {
  const e = await engine();
  const dil = [1, 3, 5];
  const x = t([2, 5, 11, 9]);
  const ws = dil.map(() => t([4, 5, 3, 3]));
  const wf = t([6, 12, 1, 1]);
  const b = t([6]);
  const ref = R.multiDilationConv2d(x, ws, wf, dil);
  const y = ref.y;
  y.data.forEach((v, i) => (y.data[i] = v + b.data[Math.floor(i / (11 * 9)) % 6]));
  const ya = Float64Array.from(y.data, (v) => (v > 0 ? v : 0.1 * v));
  // dgrad of the linear map x -> y (the bias and activation are the forward's only).
  const dy = t(y.shape);
  const dx = ref.dx(dy).data;
  await tidy(async () => {
    const gws = ws.map((w) => gpu(e, w));
    const branches = gws.map((w, k) => ({ weight: w, padding: [dil[k], dil[k]] as [number, number], dilation: [dil[k], dil[k]] as [number, number] }));
    const fuse = gpu(e, wf);
    for (const c of [defaultWinogradConfig(6), wino(4, 2, 32)]) {
      const got = conv2dMultiForward(gpu(e, x), branches, gpu(e, b), { fuse, activation: 'leakyRelu', negativeSlope: 0.1, config: c });
      fwdClose(await got.read(), ya, `multi fwd ${JSON.stringify(c)}`);
      dgradClose(await conv2dMultiBackwardData(gpu(e, dy), branches, x.shape, { fuse, config: c }).read(), dx, `multi dgrad ${JSON.stringify(c)}`);
    }
  });
});

// ---- configs, the tuner and stored entries -----------------------------------------------------------

test('winograd configs are validated; ineligible shapes refuse an explicit one', async () => {
  const e = await engine();
  const x = Tensor.fromData(e, new Float32Array(2 * 4 * 8 * 8), [2, 4, 8, 8]);
  const w3 = Tensor.fromData(e, new Float32Array(4 * 4 * 9), [4, 4, 3, 3]);
  const w1 = Tensor.fromData(e, new Float32Array(4 * 4), [4, 4, 1, 1]);
  try {
    assert.throws(() => conv2dForward(x, w3, null, { config: wino(8, 4) }), /invalid Winograd config/);
    assert.throws(() => conv2dForward(x, w3, null, { config: { ...wino(4, 1), smem: true } }), /invalid Winograd config/);
    assert.throws(() => conv2dForward(x, w3, null, { stride: 2, config: wino(4, 1) }), /stride-1 3x3/);
    assert.throws(() => conv2dForward(x, w1, null, { config: wino(4, 1) }), /stride-1 3x3/);
    assert.throws(() => conv2dForward(x, w3, null, { config: { ...wino(4, 1), algo: 'fft' as 'direct' } }), /unknown algo/);
  } finally {
    [x, w3, w1].forEach((v) => v.dispose());
  }
});

test('the tuner offers winograd for stride-1 3x3 passes only, and a pick is used by later calls', async () => {
  const e = await engine();
  assert.ok(convCandidates(e, 16, undefined, { winograd: true }).some((c) => c.algo === 'winograd'));
  assert.not.ok(convCandidates(e, 16).some((c) => c.algo === 'winograd'));
  // A candidate list with only Winograd: the tuner must pick it, and an untuned-config call of the
  // class runs it (recorded config) and matches the reference.
  const xs = [1, 4, 9, 10];
  const ws = [6, 4, 3, 3];
  const chosen = await autotuneConv(e, [{ x: xs, w: ws, padding: 2, dilation: 2, kinds: ['fwd', 'dgrad'] }], { reps: 1, candidates: { conv: [wino(4, 2)] } });
  try {
    assert.is(chosen.size, 2);
    for (const c of chosen.values()) assert.is((c as ConvTileConfig).algo, 'winograd');
    // Real timing: the built-in list for this shape includes Winograd (and times it right after the default).
    const stop = recordConvConfigs(e);
    const x = t(xs);
    const w = t(ws);
    const y = R.conv2d(x, w, null, { pad: 2, dilation: 2 });
    await tidy(async () => {
      fwdClose(await conv2dForward(gpu(e, x), gpu(e, w), null, { padding: 2, dilation: 2 }).read(), y.data, 'tuned fwd');
    });
    const used = [...stop().values()];
    assert.is(used.length, 1);
    assert.is((used[0] as ConvTileConfig).algo, 'winograd');
  } finally {
    for (const k of chosen.keys()) convTuning(e).delete(k);
  }
});

test('past the budget the tuner still times the first candidate of each algorithm, and only those', async () => {
  const e = await engine();
  const direct = (tm: number, tn: number): ConvTileConfig => ({ smem: false, wgX: 32, wgY: 1, tm, tn, bk: 16 });
  // budgetMs 0: nothing to spend on the second direct and second Winograd configs; the first of
  // each algorithm is timed regardless (a slow adapter, where one run takes seconds, still
  // compares the algorithms).
  const conv = [direct(4, 2), direct(8, 1), wino(4, 2), wino(4, 1)];
  const timed: ConvTileConfig[] = [];
  const chosen = await autotuneConv(e, [{ x: [1, 4, 9, 10], w: [6, 4, 3, 3], padding: 1, kinds: ['fwd'] }], {
    reps: 1, budgetMs: 0, candidates: { conv }, onTimed: (c) => timed.push(c as ConvTileConfig),
  });
  try {
    assert.equal(timed, [conv[0], conv[2]]);
  } finally {
    for (const k of chosen.keys()) convTuning(e).delete(k);
  }
});

test('a stored winograd entry round-trips through the tuning store and is used; a bad one is dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-wino-'));
  const store = fileTuningStore({ dir, version: 'test' });
  const xs = [1, 4, 9, 10];
  const ws = [6, 4, 3, 3];
  try {
    const e1 = await engineWith({ tune: true, tuningStore: store });
    let key = '';
    try {
      const chosen = await autotuneConv(e1, [{ x: xs, w: ws, padding: 1, kinds: ['fwd'] }], { reps: 1, candidates: { conv: [wino(8, 2)] } });
      key = [...chosen.keys()][0];
      await store.save(adapterId(e1), Object.fromEntries(convTuning(e1)));
    } finally {
      e1.destroy();
    }
    const e2 = await engineWith({ tune: true, tuningStore: store });
    try {
      await prepareTuning(e2);
      assert.is(tuneStats(e2).loaded, 1);
      assert.equal(convTuning(e2).get(key), wino(8, 2));
      const stop = recordConvConfigs(e2);
      const x = t(xs);
      const w = t(ws);
      const y = R.conv2d(x, w, null, { pad: 1 });
      await tidy(async () => {
        fwdClose(await conv2dForward(gpu(e2, x), gpu(e2, w), null, { padding: 1 }).read(), y.data, 'stored winograd fwd');
      });
      assert.equal(stop().get(key), wino(8, 2));
    } finally {
      e2.destroy();
    }
    const e3 = await engineWith({ tune: true, tuningStore: store });
    try {
      await store.save(adapterId(e3), { [key]: wino(16, 2) }); // tm * tn > 16: refused on load
      await prepareTuning(e3);
      assert.is(tuneStats(e3).loaded, 0);
      assert.equal(convTuning(e3).get(key), undefined);
      assert.equal(defaultConvConfig(e3, 6).algo, undefined, 'the default stays direct for this class');
    } finally {
      e3.destroy();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
