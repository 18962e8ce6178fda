// The source tree's layering (ARCHITECTURE.md): imports point down, stay inside src/, form no cycle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkLayers } from '../scripts/check-layers.mjs';

test('every import in src/ points to its own level or a lower one, stays in src/ (WGSL aside), and no cycle exists', () => {
  const problems: string[] = checkLayers();
  assert.equal(problems, [], problems.join('\n'));
});

test.run();
