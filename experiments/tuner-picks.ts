// How consistent and how good the conv tuner's picks are on a noisy machine: tunes one shape class
// afresh TRIALS times (printing each pick), or, with `--time`, times the given configs against
// each other in interleaved rounds (fastest and median run of each).
//   node scripts/run-ts.mjs experiments/tuner-picks.ts N,C,H,dil fwd|dgrad|wgrad [TRIALS]
//   node scripts/run-ts.mjs experiments/tuner-picks.ts N,C,H,dil fwd|dgrad|wgrad --time ROUNDS 'cfg-json' ...
// See experiments/tuner-picks.md. Not part of the package or the tests.
import '../src/node.js';
import { Engine } from '../src/gpu/runtime.js';
import { Tensor } from '../src/core/tensor.js';
import { autotuneConv } from '../src/kernels/conv/autotune.js';
import { convTuning, type ConvTileConfig, type WgradTileConfig } from '../src/kernels/conv/config.js';
import { conv2dBackwardData, conv2dForward } from '../src/kernels/conv/forward.js';
import { conv2dBackwardFilter } from '../src/kernels/conv/wgrad.js';

const [N, C, H, D] = process.argv[2].split(',').map(Number);
const kind = process.argv[3] as 'fwd' | 'dgrad' | 'wgrad';
const engine = await Engine.create({ tune: false });
const shape = { x: [N, C, H, H], w: [C, C, 3, 3], padding: D, dilation: D, kinds: [kind] };
if (process.argv[4] === '--time') {
  const rounds = Number(process.argv[5]);
  const cfgs = process.argv.slice(6).map((s) => JSON.parse(s) as ConvTileConfig & WgradTileConfig);
  const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const x = Tensor.fromData(engine, rnd(N * C * H * H), [N, C, H, H]);
  const w = Tensor.fromData(engine, rnd(C * C * 9), [C, C, 3, 3]);
  const p = { padding: D, dilation: D };
  const runs = cfgs.map((config) => () =>
    kind === 'fwd' ? conv2dForward(x, w, null, { ...p, config })
    : kind === 'dgrad' ? conv2dBackwardData(x, w, [N, C, H, H], { ...p, config })
    : conv2dBackwardFilter(x, x, [C, C, 3, 3], { ...p, config }));
  for (const r of runs) r().dispose();
  await engine.sync();
  const times = cfgs.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    for (const [k, r] of runs.entries()) {
      const t0 = performance.now();
      r().dispose();
      await engine.sync();
      times[k].push(performance.now() - t0);
    }
  }
  for (const [k, c] of cfgs.entries()) {
    const t = times[k].sort((a, b) => a - b);
    console.log(JSON.stringify({ config: c, min_ms: +t[0].toFixed(2), median_ms: +t[Math.floor(t.length / 2)].toFixed(2) }));
  }
} else {
  for (let i = 0; i < Number(process.argv[4] ?? 6); i++) {
    convTuning(engine).clear();
    const t0 = performance.now();
    const chosen = await autotuneConv(engine, [shape], { reps: 3, budgetMs: 4000 });
    console.log(JSON.stringify({ pick: [...chosen.values()][0], tune_ms: Math.round(performance.now() - t0) }));
  }
}
process.exit(0);
