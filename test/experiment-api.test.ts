// runExperiment as a library call: a whole network given in code, callbacks per step, seed and variant, the results object.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Conv2d, PReLU, Sequential } from '../src/graph/layers.js';
import { Module } from '../src/graph/module.js';
import { sub } from '../src/graph/ops.js';
import type { Tensor } from '../src/core/tensor.js';
import type { NetworkContext } from '../src/train/experiment.js';
import { resultsTable } from '../src/train/experiment.js';
import { runExperiment } from '../src/train/experiment-node.js';
import { engine } from './helpers.js';

/** A researcher's whole network: rain = conv(PReLU(conv(x))), final = derained = x - rain. */
class TwoConv extends Module {
  readonly body: Sequential;
  constructor({ engine: e, rng, config }: NetworkContext) {
    super();
    this.body = this.child('body', new Sequential(new Conv2d(e, rng, 3, config.channels, 3, { padding: 1 }), new PReLU(e, config.channels), new Conv2d(e, rng, config.channels, 3, 3, { padding: 1 })));
  }
  forward(x: Tensor) {
    const rain = this.body.forward(x);
    const derained = sub(x, rain);
    return { rain, derained, final: derained };
  }
}

test('runExperiment: a network factory in code, 2 seeds, onStep/onSeed/onVariant, mean/std/test in the returned object', async () => {
  const e = await engine();
  const live = e.memory().liveBytes;
  const steps: string[] = [];
  const seeds: string[] = [];
  const variants: string[] = [];
  const res = await runExperiment(
    {
      base: { preset: 'micro', steps: 2, batch: 2, patch: 32, seeds: [4, 5], contrastive: false },
      variants: [{ name: 'baseline' }, { name: 'two-conv', factories: { network: (ctx) => new TwoConv(ctx) } }],
    },
    {
      engine: e,
      onStep: (r, run) => steps.push(`${run.variant}/${run.seed}/${r.step}`),
      onSeed: (s, run) => void seeds.push(`${run.run}/${run.runs} ${run.variant}/${s.seed}`),
      onVariant: (v, i) => void variants.push(`${i} ${v.name}`),
    },
  );
  assert.equal(steps, ['baseline/4/1', 'baseline/4/2', 'baseline/5/1', 'baseline/5/2', 'two-conv/4/1', 'two-conv/4/2', 'two-conv/5/1', 'two-conv/5/2']);
  assert.equal(seeds, ['1/4 baseline/4', '2/4 baseline/5', '3/4 two-conv/4', '4/4 two-conv/5']);
  assert.equal(variants, ['0 baseline', '1 two-conv']);
  const [b, t] = res.variants;
  assert.is(t.params, 3 * 4 * 9 + 4 + 4 + (4 * 3 * 9 + 3)); // conv 3->4, PReLU, conv 4->3
  assert.ok(t.seeds.every((s) => s.log.length === 2 && Number.isFinite(s.psnr) && Number.isFinite(s.ssim_shift)));
  assert.ok(Number.isFinite(t.vs_baseline!.psnr.p) && b.vs_baseline === undefined);
  assert.is(res.heldout.images, 8);
  assert.ok(res.heldout.psnr > res.heldout.psnr_shift, 'the real recipe is harder than light rain');
  assert.is(e.memory().liveBytes, live, 'tensors left alive by the runs');
});

test('runExperiment with a time budget: steps until the minutes pass (warm-up steps free), lr milestones by elapsed time, the table says so', async () => {
  const e = await engine();
  const res = await runExperiment({ base: { preset: 'micro', minutes: 0.002, batch: 2, patch: 32, seeds: [1], contrastive: false }, variants: [{ name: 'only' }] }, { engine: e });
  assert.is(res.budget, 'minutes');
  assert.is(res.base.steps, null);
  const [run] = res.variants[0].seeds;
  assert.ok(run.steps > 3, `${run.steps} steps`);
  const timed = run.log.slice(3).reduce((a, r) => a + r.ms, 0);
  assert.ok(timed >= 0.002 * 60000 && timed - run.log[run.log.length - 1].ms < 0.002 * 60000, `timed ${timed} ms`);
  // Each step's lr is 1e-3 x 0.2 per budget fraction (50, 75, 90%) that the timed steps before it had used up.
  let before = 0;
  run.log.forEach((r, i) => {
    const passed = [0.5, 0.75, 0.9].filter((f) => before >= f * 0.002 * 60000).length;
    assert.ok(Math.abs(r.lr - 1e-3 * 0.2 ** passed) < 1e-12, `step ${r.step}: lr ${r.lr}, ${passed} milestones passed`);
    if (i >= 3) before += r.ms;
  });
  const md = resultsTable(res);
  assert.ok(md.includes('0.002 min of training per variant and seed (time budget') && md.includes('| steps |'), md);
});

test.run();
