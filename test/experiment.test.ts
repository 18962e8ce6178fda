// The example experiment in its CI-sized form, end to end through the CLI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('experiments/variants.ci.json trains every variant and writes the table and plot', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'semi-drdnet-exp-')), 'exp');
  const r = spawnSync(process.execPath, ['bin/semi-drdnet.js', 'experiment', 'experiments/variants.ci.json', '-o', out], { encoding: 'utf8', timeout: 600000 });
  assert.is(r.status, 0, r.stderr);
  const files = readdirSync(out).sort();
  for (const f of ['results.md', 'results.json', 'loss.svg', 'baseline.jsonl', 'no-contrastive.jsonl']) assert.ok(files.includes(f), `missing ${f}`);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.is(res.results.length, 5);
  for (const v of res.results) {
    assert.ok(Number.isFinite(v.psnr) && v.params > 0 && v.ms_per_step > 0, JSON.stringify(v));
  }
  const params = Object.fromEntries(res.results.map((v: { name: string; params: number }) => [v.name, v.params]));
  assert.ok(params['no-detail'] < params.baseline && params['no-se'] < params.baseline);
  assert.match(readFileSync(join(out, 'loss.svg'), 'utf8'), /<polyline/);
  const bad = spawnSync(process.execPath, ['bin/semi-drdnet.js', 'experiment', 'package.json', '-o', out], { encoding: 'utf8' });
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /needs a non-empty "variants" array/);
});

test.run();
