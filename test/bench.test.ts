// Bench: case selection (--quick, --filter, --exclude as the CI runs them on both software adapters) and a profiled case's JSON row.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchCase } from '../src/bench/case.js';
import { formatProfile, runCases, selectCases, toJsonLine } from '../src/bench/harness.js';
import { engine } from './helpers.js';
import { runCli } from './run-cli.js';
import { allCases } from '../src/bench/cases/index.js';

const names = (cs: BenchCase[]) => cs.map((c) => `${c.name} ${c.shape}`);

test('selectCases: quick set, filter and exclude match name or shape', () => {
  const quick = selectCases(allCases, { quick: true });
  assert.ok(quick.length > 0 && quick.every((c) => c.quick), 'the quick set holds quick cases only');
  assert.ok(quick.length < allCases.length, 'the quick set is a subset');
  const noDerain = selectCases(allCases, { quick: true, exclude: 'model.derain' });
  assert.ok(quick.some((c) => c.name === 'model.derain'), 'the quick set times derain');
  assert.equal(names(noDerain), names(quick.filter((c) => c.name !== 'model.derain')));
  // Shapes match too, and filter and exclude combine.
  const convs = selectCases(allCases, { filter: 'conv2d' });
  assert.ok(convs.length > 0 && convs.every((c) => c.name.includes('conv2d')));
  const byShape = selectCases(allCases, { filter: 'conv2d', exclude: '64->64' });
  assert.ok(byShape.length > 0 && byShape.length < convs.length && byShape.every((c) => !c.shape.includes('64->64')));
  // Lists: any of the filters, none of the exclusions.
  const gemms = selectCases(allCases, { filter: 'gemm' });
  assert.equal(names(selectCases(allCases, { filter: ['gemm', 'conv2d'] })).sort(), names([...gemms, ...convs]).sort());
  const neither = selectCases(allCases, { filter: 'conv2d', exclude: ['64->64', 'dgrad'] });
  assert.ok(neither.length > 0 && neither.length < byShape.length && neither.every((c) => !c.shape.includes('64->64') && !c.name.includes('dgrad')));
});

test('bench --list: repeated --filter and --exclude all apply (not only the last)', () => {
  const r = runCli(['bench', '--list', '--filter', 'gemm', '--filter', 'conv2d', '--exclude', '64->64', '--exclude', 'dgrad']);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.some((l) => l.includes('gemm')) && lines.some((l) => l.includes('conv2d')), r.stdout);
  assert.ok(!lines.some((l) => l.includes('64->64') || l.includes('dgrad')), r.stdout);
});

test('a profiled case carries GPU time per kernel label in its JSON row', async () => {
  const e = await engine();
  const [c] = selectCases(allCases, { filter: 'gemm', quick: true }).slice(0, 1);
  assert.ok(c, 'a quick gemm case');
  const [r] = await runCases(e, [c], { reps: 5, profile: e.device.features.has('timestamp-query') });
  if (!e.device.features.has('timestamp-query')) return; // Engine.profile's refusal is tested in engine.test.ts
  const row = JSON.parse(toJsonLine(r)) as { kernels?: Array<{ label: string; count: number; ms: number }> };
  assert.ok(row.kernels && row.kernels.length > 0 && row.kernels.every((k) => k.label && k.count > 0 && k.ms >= 0), JSON.stringify(row));
  assert.ok(row.kernels.some((k) => k.label.startsWith('matmul')), JSON.stringify(row.kernels));
  assert.match(formatProfile(r), /^profile of gemm .*dispatches/);
});

test.run();
