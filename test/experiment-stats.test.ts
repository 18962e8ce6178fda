// Experiment statistics and summaries: the paired t-test against scipy's values, sample std, seed lists, the mean/band of loss curves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveBase, summarise, type SeedResult } from '../src/train/experiment.js';
import { meanBand } from '../src/train/plot.js';
import { mean, pairedTTest, sampleStd, studentTwoSidedP } from '../src/train/stats.js';

const close = (got: number, want: number, rel: number, what: string) => assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `${what}: ${got} vs ${want}`);

test('pairedTTest and studentTwoSidedP match scipy.stats.ttest_rel / t.sf', () => {
  // scipy 1.17: stats.ttest_rel(b, a).statistic / .pvalue
  const cases: Array<[number[], number[], number, number]> = [
    [[24.71, 24.8, 24.65], [24.93, 25.1, 24.88], 9.93399267798767, 0.009981862701585832],
    [[1, 2, 3, 4], [1.1, 2.3, 2.9, 4.2], 1.4638501094227998, 0.23944259863600298],
    [[0.5, 0.7], [0.6, 0.75], 3.0000000000000044, 0.20483276469913317],
    [[10, 11, 12, 13, 14], [10.5, 10.9, 12.8, 13.1, 14.9], 2.2691267417693455, 0.08581037844004435],
  ];
  for (const [a, b, t, p] of cases) {
    const r = pairedTTest(a, b);
    close(r.t, t, 1e-9, `t of ${b}`);
    close(r.p, p, 1e-9, `p of ${b}`);
    assert.is(r.df, a.length - 1);
  }
  // 2 * t.sf(|t|, df)
  close(studentTwoSidedP(2.5, 3), 0.08770664700806556, 1e-9, 't=2.5 df=3');
  close(studentTwoSidedP(-0.3, 1), 0.8144528418445154, 1e-9, 't=-0.3 df=1');
  close(studentTwoSidedP(12, 40), 7.82417130425598e-15, 1e-6, 't=12 df=40');
  // Identical runs: no difference; one pair: no test; a constant non-zero shift: certain.
  assert.is(pairedTTest([1, 2], [1, 2]).p, 1);
  assert.ok(Number.isNaN(pairedTTest([1], [2]).p));
  assert.is(pairedTTest([1, 2, 3], [2, 3, 4]).p, 0);
  close(sampleStd([1, 2, 4]), 1.5275252316519465, 1e-12, 'sample std');
  assert.is(sampleStd([3]), 0);
  assert.is(mean([1, 2, 6]), 3);
});

test('summarise: mean, sample std and the paired test per metric; resolveBase: a lone seed starts three, minutes uncap steps', () => {
  const run = (seed: number, psnr: number): SeedResult => ({ seed, psnr, ssim: psnr / 100, psnr_shift: psnr - 5, ssim_shift: 0.5, ms_per_step: 10, steps: 4, train_s: 1, log: [] });
  const base = [run(1, 20), run(2, 21), run(3, 22)];
  const other = summarise('x', 5, [run(1, 21), run(2, 21.5), run(3, 23.5)], base);
  close(other.psnr_mean, 22, 1e-12, 'mean');
  close(other.psnr_std, sampleStd([21, 21.5, 23.5]), 1e-12, 'std');
  close(other.vs_baseline!.psnr.meanDiff, 1, 1e-12, 'meanDiff');
  close(other.vs_baseline!.psnr.p, pairedTTest([20, 21, 22], [21, 21.5, 23.5]).p, 1e-12, 'p');
  assert.is(other.vs_baseline!.ssim_shift.p, 1);
  assert.is(summarise('b', 5, base, null).vs_baseline, undefined);
  assert.equal(resolveBase({ variants: [] }).seeds, [1, 2, 3]);
  assert.equal(resolveBase({ base: { seed: 7 }, variants: [] }).seeds, [7, 8, 9]);
  assert.is(resolveBase({ base: { minutes: 2 }, variants: [] }).steps, null);
  assert.is(resolveBase({ base: { minutes: 2, steps: 50 }, variants: [] }).steps, 50);
});

test('meanBand: pointwise mean with min-max band over the steps every run reached', () => {
  const r = meanBand([[[1, 1], [2, 4], [3, 9]], [[1, 3], [2, 2]]]);
  assert.equal(r.points, [[1, 2], [2, 3]]);
  assert.equal(r.band, [[1, 1, 3], [2, 2, 4]]);
});

test.run();
