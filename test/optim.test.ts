// Optimizers and the learning-rate schedule against PyTorch (test/fixtures/optim, from
// `scripts/torch_fixtures.py optim`): Adam (bias correction, eps, weight decay) and SGD (momentum,
// dampening, weight decay) over 6 steps, MultiStepLR at and around every milestone, and the lr a
// resumed training run logs.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from './helpers.js';
import { allclose } from './ref/tensor.js';
import { runCli } from './run-cli.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { Tensor } from '../src/core/tensor.js';
import { Adam, SGD, multiStepLr, type Optimizer } from '../src/train/optim.js';

const PATH = 'test/fixtures/optim/optim.safetensors';
const file = parseSafetensors(new Uint8Array(readFileSync(PATH)), PATH);
const get = (n: string): Float32Array => {
  const e = file.tensors.get(n);
  if (!e) throw new Error(`${PATH}: no tensor '${n}'`);
  return toFloat32(e, n, PATH);
};
const cases = JSON.parse(file.metadata.cases) as Record<string, Record<string, number | number[]>>;
const STEPS = 6;

// float32 kernels against float64 PyTorch: parameters are O(1), updates 1e-3..1e-1.
const RTOL = 1e-5;
const ATOL = 1e-6;

function make(name: string, p: Tensor): Optimizer {
  const o = cases[name];
  const n = (k: string) => o[k] as number | undefined;
  if (name.startsWith('adam')) return new Adam([p], { lr: n('lr')!, betas: o.betas as [number, number], eps: n('eps'), weightDecay: n('weight_decay') });
  return new SGD([p], { lr: n('lr')!, momentum: n('momentum'), dampening: n('dampening'), weightDecay: n('weight_decay') });
}

for (const name of ['adam', 'adam_wd_eps', 'sgd', 'sgd_momentum']) {
  test(`${name} matches torch.optim over ${STEPS} steps (${JSON.stringify(cases[name])})`, async () => {
    const e = await engine();
    const p = Tensor.fromData(e, get('p0'), [get('p0').length]);
    const opt = make(name, p);
    try {
      for (let i = 0; i < STEPS; i++) {
        p.grad = Tensor.fromData(e, get(`grad.${i}`), p.shape);
        opt.step();
        const r = allclose(await p.read(), get(`${name}.step${i + 1}`), RTOL, ATOL);
        assert.ok(r.ok, `${name} after step ${i + 1}: ${r.message}`);
        opt.zeroGrad();
      }
    } finally {
      opt.dispose();
      p.dispose();
    }
  });
}

const ms = cases.multistep as { base: number; milestones: number[]; gamma: number };
const torchLr = Array.from(get('multistep.lr'));

test('multiStepLr equals MultiStepLR at, before and after every milestone', () => {
  // torchLr[i] is the lr of the (i+1)-th optimizer step, after i scheduler steps.
  for (let i = 0; i < torchLr.length; i++) {
    const got = multiStepLr(ms.base, ms.milestones, ms.gamma, i);
    assert.ok(Math.abs(got - torchLr[i]) <= 1e-7 * ms.base, `step ${i}: lr ${got}, PyTorch ${torchLr[i]}`);
  }
  for (const m of ms.milestones) assert.ok(multiStepLr(ms.base, ms.milestones, ms.gamma, m) < multiStepLr(ms.base, ms.milestones, ms.gamma, m - 1), `lr drops at milestone ${m}`);
});

test('a resumed training run logs PyTorch MultiStepLR learning rates on every step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-optim-'));
  const data = join(dir, 'pairs');
  let r = runCli(['synth', '--clean', 'data/photos/heldout', '-o', data, '--rain', 'light', '--seed', '1']);
  assert.is(r.status, 0, r.stderr);
  const ckpt = join(dir, 'c.safetensors');
  const logPath = join(dir, 'run.jsonl');
  const args = ['train', '--preset', 'micro', '--data', data, '--batch', '1', '--patch', '16', '--seed', '3', '--lr', String(ms.base), '--milestones', ms.milestones.join(','), '--gamma', String(ms.gamma), '-o', ckpt, '--log', logPath];
  r = runCli([...args, '--steps', '4']);
  assert.is(r.status, 0, r.stderr);
  r = runCli([...args, '--steps', '10', '--resume', ckpt]);
  assert.is(r.status, 0, r.stderr);
  const lines = readFileSync(logPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; lr: number });
  assert.equal(lines.map((l) => l.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const l of lines) assert.ok(Math.abs(l.lr - torchLr[l.step - 1]) <= 1e-7 * ms.base, `logged step ${l.step}: lr ${l.lr}, PyTorch ${torchLr[l.step - 1]}`);
});

test.run();
