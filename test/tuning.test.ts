// Self-tuning: first use times and persists per adapter, later engines reuse without timing, corrupt files are ignored, tune:false never times; every candidate the tuner can pick (Winograd included) matches the float64 reference; derainImage announces tuning.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as R from './ref/ops.js';
import { FWD, allclose, mulberry32, randn } from './ref/tensor.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import type { Engine } from '../src/gpu/runtime.js';
import { fileTuningStore } from '../src/io/tuning-store-node.js';
import { raceCandidates } from '../src/kernels/conv/autotune.js';
import { TUNER_REVISION, pendingTuning, recordConvConfigs, tuningKey } from '../src/kernels/conv/config.js';
import { geometry } from '../src/kernels/conv/geometry.js';
import { dawnGpu } from '../src/gpu/node.js';
import {
  checkConvConfig, checkWgradConfig, conv2dBackwardData, conv2dBackwardFilter, conv2dForward, conv2dMultiForward, convCandidates, convTuning, defaultConvConfig, defaultWgradConfig, prepareTuning, tunePending, tuneStats, wgradCandidates,
  type ConvTileConfig, type WgradTileConfig,
} from '../src/kernels/conv2d.js';
import { engine, engineWith, gpu } from './helpers.js';
import { derainImage } from '../src/model/derain.js';
import { DrdNet } from '../src/model/drdnet.js';
import { preset } from '../src/model/config.js';

const rng = mulberry32(13);
const t = (shape: number[]) => randn(shape, rng);

/** One forward conv of a small shape class on `e` (notes the class as pending when `e` tunes). */
async function runConv(e: Engine): Promise<void> {
  await tidy(async () => {
    const x = Tensor.fromData(e, new Float32Array(4 * 9 * 10).fill(0.5), [1, 4, 9, 10]);
    const w = Tensor.fromData(e, new Float32Array(6 * 4 * 9).fill(0.1), [6, 4, 3, 3]);
    await conv2dForward(x, w, null, { padding: 1 }).read();
  });
}

const quick = { reps: 1, maxCandidates: 2 };

test('first use tunes and persists; a second engine reuses without timing; corrupt files are ignored; tune:false never times', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-tune-'));
  const store = fileTuningStore({ dir, version: 'test' });
  try {
    const e1 = await engineWith({ tune: true, tuningStore: store });
    try {
      await prepareTuning(e1);
      await runConv(e1);
      assert.is(pendingTuning(e1).size, 1, 'the untuned class is noted');
      const made = await tunePending(e1, quick);
      assert.is(made.size, 1);
      assert.is(tuneStats(e1).timed.length, 1);
      assert.is((await tunePending(e1, quick)).size, 0, 'nothing pending: no timing');
    } finally {
      e1.destroy();
    }
    const files = readdirSync(dir);
    assert.is(files.length, 1, `one file per adapter and version: ${files}`);
    assert.ok(files[0].endsWith('@test.json'));
    const saved = JSON.parse(readFileSync(join(dir, files[0]), 'utf8')) as { entries: Record<string, unknown> };
    const [key, config] = Object.entries(saved.entries)[0];

    const e2 = await engineWith({ tune: true, tuningStore: store });
    try {
      await prepareTuning(e2);
      assert.is(tuneStats(e2).loaded, 1);
      await runConv(e2);
      assert.is(pendingTuning(e2).size, 0, 'the stored class is not pending');
      assert.is((await tunePending(e2, quick)).size, 0);
      assert.is(tuneStats(e2).timed.length, 0, 'reused without timing');
      assert.equal(convTuning(e2).get(key), config);
    } finally {
      e2.destroy();
    }

    // An entry an earlier tuner stored (its revision is part of the key) is timed again.
    const older = key.replace(/^r\d+:/, `r${TUNER_REVISION - 1}:`);
    assert.ok(older !== key, key);
    for (const bad of ['{"entries": {"x', JSON.stringify({ entries: { [key]: { smem: false, tm: 5 } } }), JSON.stringify({ entries: { [older]: config } })]) {
      writeFileSync(join(dir, files[0]), bad);
      const e3 = await engineWith({ tune: true, tuningStore: store });
      try {
        await prepareTuning(e3);
        assert.is(tuneStats(e3).loaded, 0, `unusable file or entry ignored: ${bad}`);
        await runConv(e3);
        assert.is(pendingTuning(e3).size, 1);
      } finally {
        e3.destroy();
      }
    }

    const offDir = join(dir, 'off');
    const e4 = await engineWith({ tune: false, tuningStore: fileTuningStore({ dir: offDir, version: 'test' }) });
    try {
      await prepareTuning(e4);
      await runConv(e4);
      assert.is(pendingTuning(e4).size, 0);
      assert.is((await tunePending(e4)).size, 0);
      assert.is(tuneStats(e4).timed.length, 0);
      assert.not.ok(existsSync(offDir), 'tune:false writes no cache file');
    } finally {
      e4.destroy();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('derainImage says before it tunes (first use only), and the result does not change', async () => {
  const e = await engineWith({ tune: true, tuningStore: null });
  try {
    const m = new DrdNet(e, preset('micro'), 1);
    const img = { width: 23, height: 17, data: Float32Array.from({ length: 3 * 23 * 17 }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37)) };
    const calls: number[] = [];
    const first = await derainImage(m, img, { onTuning: (n) => calls.push(n) });
    assert.ok(calls.length === 1 && calls[0] > 0, `onTuning calls: ${calls}`);
    assert.ok(tuneStats(e).timed.length >= calls[0], 'the announced classes were timed');
    const second = await derainImage(m, img, { onTuning: (n) => calls.push(n) });
    assert.is(calls.length, 1, 'tuned classes are not announced again');
    let worst = 0;
    for (let i = 0; i < first.data.length; i++) worst = Math.max(worst, Math.abs(first.data[i] - second.data[i]));
    assert.ok(worst <= 1e-4, `tuned configs changed the output by ${worst}`);
    m.dispose();
  } finally {
    e.destroy();
  }
});

test('a multi-dilation conv is its own shape class, timed as the fused kernel', async () => {
  const e = await engineWith({ tune: true, tuningStore: null });
  try {
    await tidy(async () => {
      const x = Tensor.fromData(e, new Float32Array(4 * 9 * 10).fill(0.5), [1, 4, 9, 10]);
      const w = Tensor.fromData(e, new Float32Array(4 * 4 * 9).fill(0.1), [4, 4, 3, 3]);
      const branches = [1, 2].map((d) => ({ weight: w, padding: [d, d] as [number, number], dilation: [d, d] as [number, number] }));
      await conv2dMultiForward(x, branches, null).read();
    });
    const keys = [...pendingTuning(e).keys()];
    assert.is(keys.length, 1);
    assert.ok(keys[0].endsWith(':b2'), keys[0]);
    const made = await tunePending(e, quick);
    assert.equal([...made.keys()], keys);
  } finally {
    e.destroy();
  }
});

/** A race on a fake clock: each candidate's runs take `ms[name]` and its compile `compile` more. */
async function fakeRace(ms: Record<string, number | null>, opts: { reps: number; budgetMs: number; compile?: number }) {
  let clock = 0;
  const order: string[] = [];
  const { timed } = await raceCandidates(
    Object.keys(ms),
    (c) => c.replace(/\d+$/, ''), // "vec4-2" is the vec4 algorithm's second config
    async (c) => {
      order.push(c);
      const t = ms[c];
      clock += (opts.compile ?? 0) + 2 * (t ?? 0);
      return t;
    },
    async (c) => {
      order.push(`${c} again`);
      clock += ms[c]!;
      return ms[c]!;
    },
    { ...opts, now: () => clock },
  );
  return { order, timed: timed.map((x) => x.c) };
}

test('the tuner skips the other configs of an algorithm whose first config ran over 2x slower than the fastest', async () => {
  // SwiftShader's pattern: the default register tile 1200 ms, Winograd 900, vec4 rows 270.
  const slow = await fakeRace({ 'direct-1': 1200, 'wino-1': 900, 'vec4-1': 270, 'direct-2': 1100, 'wino-2': 800, 'vec4-2': 200 }, { reps: 1, budgetMs: Infinity });
  assert.equal(slow.timed, ['direct-1', 'wino-1', 'vec4-1', 'vec4-2']);
  // Within 2x, an algorithm's other configs still run (lavapipe: vec4 rows 1.3-1.6x the register tile).
  const close = await fakeRace({ 'direct-1': 200, 'wino-1': 500, 'vec4-1': 300, 'direct-2': 150, 'wino-2': 390, 'vec4-2': 280 }, { reps: 1, budgetMs: Infinity });
  assert.equal(close.timed, ['direct-1', 'wino-1', 'vec4-1', 'direct-2', 'vec4-2']);
  // A first config the device cannot run does not rule out its algorithm's others.
  const failed = await fakeRace({ 'direct-1': 100, 'vec4-1': null, 'vec4-2': 90 }, { reps: 1, budgetMs: Infinity });
  assert.equal(failed.timed, ['direct-1', 'vec4-2']);
});

test('the tuner\'s budget: first configs free, the rest and the rounds counted on its clock', async () => {
  // Each config costs 50 ms of compile and two runs: a budget of 250 covers direct-2 (50 + 2 x 100)
  // and nothing after it, rounds included.
  const r = await fakeRace({ 'direct-1': 100, 'vec4-1': 120, 'direct-2': 100, 'vec4-2': 110, 'direct-3': 90 }, { reps: 3, budgetMs: 250, compile: 50 });
  assert.equal(r.order, ['direct-1', 'vec4-1', 'direct-2']);
  // A config is not started when two runs at the fastest's speed no longer fit: with 150 left
  // after direct-2 and the fastest at 100, vec4-2 is skipped rather than overshooting by 270.
  const left = await fakeRace({ 'direct-1': 100, 'vec4-1': 120, 'direct-2': 100, 'vec4-2': 110 }, { reps: 1, budgetMs: 400, compile: 50 });
  assert.equal(left.order, ['direct-1', 'vec4-1', 'direct-2']);
  // With room left, rounds re-time only the candidates within 2x of the fastest.
  const rounds = await fakeRace({ 'direct-1': 100, 'vec4-1': 150, 'direct-2': 210 }, { reps: 2, budgetMs: Infinity });
  assert.equal(rounds.order, ['direct-1', 'vec4-1', 'direct-2', 'direct-1 again', 'vec4-1 again']);
});

/** A race whose candidates' runs take the given times in turn (screening run first). */
async function scriptedRace(runs: Record<string, number[]>) {
  let clock = 0;
  const order: string[] = [];
  const next = (c: string) => {
    order.push(c);
    const t = runs[c].shift()!;
    clock += t;
    return t;
  };
  const r = await raceCandidates(Object.keys(runs), (c) => c.replace(/-\d+$/, ''), async (c) => next(c), async (c) => next(c), { reps: 1, budgetMs: 600, now: () => clock });
  return { order, winner: r.winner };
}

test('the default is displaced only by a config that wins paired runs', async () => {
  // The default's screening run lands in a slow moment (300 instead of 100) and there are no
  // rounds (reps 1; the budget covers direct-2's screening): direct-2 (150) won on that one run
  // before the pairs; it loses the two pairs.
  const slowStart = await scriptedRace({ 'direct-1': [300, 100, 100], 'direct-2': [150, 150, 150], 'vec4-1': [400] });
  assert.equal(slowStart.order, ['direct-1', 'direct-2', 'vec4-1', 'direct-1', 'direct-2', 'direct-1', 'direct-2']);
  assert.is(slowStart.winner, 'direct-1');
  // One lucky run of the challenger is not enough: it wins one pair and loses two, and is not
  // chosen although its fastest run (85) is the fastest of all.
  const lucky = await scriptedRace({ 'direct-1': [130, 100, 100, 100], 'direct-2': [120, 85, 130, 130] });
  assert.equal(lucky.order, ['direct-1', 'direct-2', 'direct-1', 'direct-2', 'direct-1', 'direct-2', 'direct-1', 'direct-2']);
  assert.is(lucky.winner, 'direct-1');
  // A challenger that wins two pairs is chosen; one that wins a pair by DECISIVE (1.25x) at once.
  const better = await scriptedRace({ 'direct-1': [100, 100, 100], 'direct-2': [90, 90, 90] });
  assert.equal(better.order, ['direct-1', 'direct-2', 'direct-1', 'direct-2', 'direct-1', 'direct-2']);
  assert.is(better.winner, 'direct-2');
  const clear = await scriptedRace({ 'direct-1': [1000, 1000], 'vec4-1': [300, 300] });
  assert.equal(clear.order, ['direct-1', 'vec4-1', 'direct-1', 'vec4-1']);
  assert.is(clear.winner, 'vec4-1');
  // When the default wins the screening, nothing more is run.
  const order2: string[] = [];
  const r = await raceCandidates(['a-1', 'b-1'], (c) => c, async (c) => (order2.push(c), c === 'a-1' ? 1 : 2), async (c) => (order2.push(`${c} again`), 1), { reps: 1, budgetMs: 0 });
  assert.equal(order2, ['a-1', 'b-1']);
  assert.is(r.winner, 'a-1');
});

test('the test engine does not tune (deterministic suite)', async () => {
  assert.is((await engine()).tune, false);
});

// ---- every candidate the tuner can pick, against the float64 reference -------------------------

const refOpts = { pad: 2, dilation: 2 };
const params = { padding: 2, dilation: 2 };

async function checkCandidates(e: Engine, what: string, convs: ConvTileConfig[], wgrads: WgradTileConfig[]): Promise<void> {
  const x = t([2, 5, 9, 11]);
  const w = t([7, 5, 3, 3]);
  const y = R.conv2d(x, w, null, refOpts);
  const dy = t(y.shape);
  const ref = R.conv2dBackward(x, w, dy, refOpts);
  const close = (got: Float32Array, want: ArrayLike<number>, label: string) => {
    const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
    assert.ok(r.ok, `${what} ${label}: ${r.message}`);
  };
  await tidy(async () => {
    const [gx, gw, gdy] = [gpu(e, x), gpu(e, w), gpu(e, dy)];
    for (const c of convs) {
      close(await conv2dForward(gx, gw, null, { ...params, config: c }).read(), y.data, `fwd ${JSON.stringify(c)}`);
      close(await conv2dBackwardData(gdy, gw, x.shape, { ...params, config: c }).read(), ref.dx.data, `dgrad ${JSON.stringify(c)}`);
    }
    for (const c of wgrads) close(await conv2dBackwardFilter(gx, gdy, w.shape, { ...params, config: c }).read(), ref.dw.data, `wgrad ${JSON.stringify(c)}`);
  });
}

const geom = (Ci: number, Co: number) => ({ N: 2, Ci, H: 9, W: 11, Co, KH: 3, KW: 3, Ho: 9, Wo: 11, sh: 1, sw: 1, ph: 2, pw: 2, dh: 2, dw: 2 });

test('every software candidate (narrow and wide layers) matches the reference', async () => {
  const e = await engine();
  const soft = { ...e, adapter: { ...e.adapter, software: true }, limits: e.limits } as unknown as Engine;
  // The shape below (3x3, stride 1) is Winograd- and vec4-eligible: their candidates are checked too.
  const convs = [4, 8, 64].flatMap((M) => convCandidates(soft, M, undefined, { winograd: true, vec4: true }));
  const wgrads = [[3, 64], [64, 3], [64, 64], [8, 8]].flatMap(([ci, co]) => wgradCandidates(soft, geom(ci, co)));
  await checkCandidates(e, 'software', uniq(convs), uniq(wgrads));
});

test('every GPU candidate (workgroup-memory tiles) matches the reference', async () => {
  const e = await engine();
  const gpuLike = { adapter: { ...e.adapter, software: false }, limits: e.limits } as unknown as Engine;
  const convs = [3, 64].flatMap((M) => convCandidates(gpuLike, M, defaultConvConfig(gpuLike, M)));
  await checkCandidates(e, 'gpu', uniq(convs), uniq(wgradCandidates(gpuLike, geom(64, 64))));
});

test('subgroup-shared register tiles are candidates exactly where the device has subgroups', async () => {
  const e = await engine();
  const soft = (subgroupMinSize: number) => ({ ...e, adapter: { ...e.adapter, software: true, subgroupMinSize }, limits: e.limits }) as unknown as Engine;
  const none = convCandidates(soft(0), 64);
  assert.ok(none.length > 0 && none.every((c) => !c.subgroups), 'no subgroups: none offered');
  assert.not.ok(defaultConvConfig(soft(0), 64).subgroups);
  // lavapipe (8): the default shares weights, and the plain register default is still timed early.
  const eight = convCandidates(soft(8), 64);
  assert.equal(eight[0], defaultConvConfig(soft(8), 64));
  assert.ok(eight[0].subgroups);
  assert.ok(eight.slice(0, 4).some((c) => !c.subgroups && !c.algo), 'a plain register config among the heads');
  // SwiftShader (4): offered, not the default; a share of 4 allows any wgX multiple of 4.
  const four = convCandidates(soft(4), 64);
  assert.not.ok(four[0].subgroups);
  assert.ok(four.some((c) => c.subgroups));
  assert.throws(() => checkConvConfig(soft(8), { smem: false, subgroups: true, wgX: 36, wgY: 1, tm: 16, tn: 8, bk: 16 }), /multiple of 8/);
  // wgrad: 'nhwc' only, the same rule.
  const g = geom(64, 64);
  assert.ok(wgradCandidates(soft(0), g).every((c) => !c.subgroups));
  const w8 = wgradCandidates(soft(8), g);
  assert.ok(w8[0].subgroups && w8[0].kernel === 'nhwc', 'lavapipe: the default shares dy');
  assert.ok(w8.every((c) => !c.subgroups || c.kernel === 'nhwc'));
  assert.ok(w8.some((c) => c.kernel === 'nhwc' && !c.subgroups));
  assert.throws(() => checkWgradConfig(soft(8), { ...w8[0], kernel: 'pixels' }), /'nhwc' kernel only/);
  assert.throws(() => checkWgradConfig(soft(0), w8[0]), /'subgroups' feature/);
  assert.throws(() => checkConvConfig(soft(8), { algo: 'vec4', smem: false, subgroups: true, wgX: 64, wgY: 1, tm: 8, tn: 8, bk: 16 }), /direct register tiles only/);
});

test('a stored subgroup choice is not used on a device without subgroups (the default runs instead)', async () => {
  const adapter = (await dawnGpu().requestAdapter())!;
  const device = await adapter.requestDevice(); // without the 'subgroups' feature
  const e = await engineWith({ device, adapter });
  try {
    assert.is(e.adapter.subgroupMinSize, 0);
    const params = { padding: 1 };
    const rnd = mulberry32(5);
    const x = randn([1, 16, 10, 12], rnd);
    const w = randn([16, 16, 3, 3], rnd);
    const g = geometry('test', x.shape, w.shape, params);
    // As an engine on this adapter whose device had subgroups would have stored them.
    convTuning(e).set(tuningKey(e, 'fwd', g), { smem: false, subgroups: true, wgX: 64, wgY: 1, tm: 16, tn: 8, bk: 16 });
    convTuning(e).set(tuningKey(e, 'wgrad', g), { ...defaultWgradConfig(e, g), kernel: 'nhwc', subgroups: true, wgX: 8, tu: 16, tv: 2 });
    const y = R.conv2d(x, w, null, { pad: 1 });
    const dy = randn(y.shape, rnd);
    const close = (got: Float32Array, want: ArrayLike<number>, label: string) => {
      const r = allclose(got, want, FWD.rtol * 10, FWD.atol * 10);
      assert.ok(r.ok, `${label}: ${r.message}`);
    };
    const stop = recordConvConfigs(e);
    await tidy(async () => {
      const [gx, gw, gdy] = [gpu(e, x), gpu(e, w), gpu(e, dy)];
      close(await conv2dForward(gx, gw, null, params).read(), y.data, 'fwd');
      close(await conv2dBackwardFilter(gx, gdy, w.shape, params).read(), R.conv2dBackward(x, w, dy, { pad: 1 }).dw.data, 'wgrad');
    });
    const used = [...stop().values()];
    assert.is(used.length, 2);
    assert.ok(used.every((c) => !c.subgroups), JSON.stringify(used));
  } finally {
    e.destroy();
    device.destroy();
  }
});

function uniq<T>(xs: T[]): T[] {
  return [...new Map(xs.map((x) => [JSON.stringify(x), x])).values()];
}

test.run();
