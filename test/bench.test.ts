// Bench case selection (no GPU): --quick, --filter and --exclude as the CI runs them on both software adapters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchCase } from '../src/bench/case.js';
import { selectCases } from '../src/bench/harness.js';
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
});

test.run();
