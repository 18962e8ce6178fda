// The example experiment in its CI-sized form (2 seeds, a variant from a .ts module), end to end through the CLI; refusals of malformed files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preset } from '../src/model/config.js';

const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/semi-drdnet.js', 'experiment', ...args], { encoding: 'utf8', timeout: 600000 });

interface Seed { seed: number; psnr: number; ssim: number; psnr_shift: number; ssim_shift: number; ms_per_step: number; steps: number }
interface Summary { name: string; params: number; seeds: Seed[]; psnr_mean: number; psnr_std: number; ssim_mean: number; ssim_std: number; psnr_shift_mean: number; vs_baseline?: Record<string, { p: number; meanDiff: number; df: number }> }

test('experiments/variants.ci.json: every variant (one from experiments/cbam-gate.ts) per seed; per-seed and mean/std fields; table, plot, logs', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'semi-drdnet-exp-')), 'exp');
  const r = cli('experiments/variants.ci.json', '-o', out);
  assert.is(r.status, 0, r.stderr);
  const files = readdirSync(out).sort();
  for (const f of ['results.md', 'results.json', 'loss.svg', 'baseline.seed1.jsonl', 'baseline.seed2.jsonl', 'cbam-gate.seed2.jsonl']) assert.ok(files.includes(f), `missing ${f}`);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { base: { seeds: number[] }; budget: string; variants: Summary[] };
  assert.equal(res.base.seeds, [1, 2]);
  assert.is(res.budget, 'steps');
  assert.equal(res.variants.map((v) => v.name), ['baseline', 'no-se', 'no-detail', 'dilations-1-2-4', 'no-contrastive', 'cbam-gate']);
  for (const v of res.variants) {
    assert.equal(v.seeds.map((s) => s.seed), [1, 2], v.name);
    for (const s of v.seeds) assert.ok([s.psnr, s.ssim, s.psnr_shift, s.ssim_shift].every(Number.isFinite) && s.ms_per_step > 0 && s.steps === 4, JSON.stringify(s));
    const psnrs = v.seeds.map((s) => s.psnr);
    assert.ok(Math.abs(v.psnr_mean - (psnrs[0] + psnrs[1]) / 2) < 1e-9, `${v.name} psnr_mean`);
    assert.ok(Math.abs(v.psnr_std - Math.abs(psnrs[0] - psnrs[1]) / Math.SQRT2) < 1e-9, `${v.name} psnr_std (sample std)`);
    assert.ok(Number.isFinite(v.ssim_mean) && Number.isFinite(v.ssim_std) && Number.isFinite(v.psnr_shift_mean));
    if (v.name === 'baseline') assert.is(v.vs_baseline, undefined);
    else assert.ok(v.vs_baseline!.psnr.df === 1 && Math.abs(v.vs_baseline!.psnr.meanDiff - (v.psnr_mean - res.variants[0].psnr_mean)) < 1e-9, `${v.name} paired test`);
  }
  // Seeds differ in initialisation and crops, so the two runs of a variant differ.
  assert.not.equal(res.variants[0].seeds[0].psnr, res.variants[0].seeds[1].psnr);
  const params = Object.fromEntries(res.variants.map((v) => [v.name, v.params]));
  assert.ok(params['no-detail'] < params.baseline && params['no-se'] < params.baseline);
  // The module's gate replaced SE: its 5x5 (options.kernel) spatial conv 2->1 adds 2*25+1 per rain block.
  assert.is(params['cbam-gate'] - params.baseline, preset('micro').rainBlocks * (2 * 25 + 1));
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  for (const part of ['paired t-test over the 2 seeds', '±', 'PSNR real (dB)', 'step budget', '| cbam-gate |']) assert.ok(md.includes(part), `results.md lacks '${part}'`);
  const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
  assert.match(svg, /<polyline/);
  assert.match(svg, /<polygon/);
});

test('experiment refusals: unknown keys, bad seeds, seed with seeds, a module that is not .ts/.js (usage, exit 2); a missing or broken module (exit 1, before training)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-exp-bad-'));
  const spec = (base: object, variant: object) => {
    const file = join(dir, `e${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ base: { preset: 'micro', steps: 1, ...base }, variants: [{ name: 'a' }, { name: 'b', ...variant }] }));
    return file;
  };
  const usage: Array<[object, object, string]> = [
    [{}, { modul: './x.ts' }, "unknown key 'modul'"],
    [{ seeds: [] }, {}, "'seeds' must be a non-empty list"],
    [{ seeds: [1, 1] }, {}, 'distinct'],
    [{ seed: 1, seeds: [1, 2] }, {}, "both 'seed' and 'seeds'"],
    [{ minutes: 0 }, {}, "'minutes' must be a positive number"],
    [{ shiftRain: 'drizzle' }, {}, "'shiftRain' must be one of light, heavy, real"],
    [{}, { module: './gate.py' }, 'must be the path of a .ts or .js file'],
    [{}, { options: { k: 1 } }, 'names none'],
    // Values that would fail or mislead hours in, refused before the first step.
    [{ steps: 2.5 }, {}, "base setting 'steps' must be an integer >= 1, got 2.5"],
    [{ patch: 16.5 }, {}, "'patch' must be an integer >= 1"],
    [{ lr: 1e999 }, {}, "'lr' must be a finite number"],
    [{ vggTap: 9 }, {}, "'vggTap' must be an integer from 1 to 5, got 9"],
    [{}, { train: { lr: 0 } }, `"train" setting 'lr' of variant 'b' must be a positive number, got 0`],
    [{}, { train: { lr: 'fast' } }, "'lr' of variant 'b' must be a finite number, got \"fast\""],
    [{}, { train: { contrastive: 1 } }, "'contrastive' of variant 'b' must be a boolean"],
  ];
  for (const [base, variant, msg] of usage) {
    const r = cli(spec(base, variant), '-o', join(dir, 'out'));
    assert.is(r.status, 2, `${msg}: ${r.stderr}`);
    assert.ok(r.stderr.includes(msg), `'${r.stderr.trim()}' lacks '${msg}'`);
    assert.not.ok(existsSync(join(dir, 'out')), `${msg}: the output folder was made`);
  }
  writeFileSync(join(dir, 'broken.ts'), 'export const rainGate = (;\n');
  for (const [module, msg] of [['./absent.ts', 'absent.ts: no such variant module'], ['./broken.ts', 'broken.ts:1:']]) {
    const r = cli(spec({}, { module }), '-o', join(dir, 'out'));
    assert.is(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(msg) && !r.stderr.includes('step'), r.stderr);
  }
  const bad = cli('package.json', '-o', join(dir, 'out'));
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /needs a non-empty "variants" array/);
});

test.run();
