// runExperiment as a library call: a whole network given in code, callbacks per step, seed and variant, the results object.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Conv2d, PReLU, Sequential } from '../src/graph/layers.js';
import { Module } from '../src/graph/module.js';
import { sub } from '../src/graph/ops.js';
import type { Tensor } from '../src/core/tensor.js';
import type { NetworkContext } from '../src/train/experiment.js';
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

test.run();
