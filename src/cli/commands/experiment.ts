// `experiment <file.json> -o <dir>`: train layer variants (several seeds) under one budget, compare on held-out photos under two rain recipes.
import { basename, dirname, join, resolve } from 'node:path';
import { checkWritableDir, makeDir, readFileBytes, realPathOf, writeFileAtomic } from '../../io/fs-node.js';
import { lossPlotSvg, meanBand, smooth } from '../../train/plot.js';
import { ExperimentSpecError, parseSpec, resolveBase, resultsTable, type ExperimentResults } from '../../train/experiment.js';
import { runExperiment } from '../../train/experiment-node.js';
import { parseArgs, required, UsageError } from '../args.js';
import { getEngine, progress } from '../common.js';

export const help = `usage: semi-drdnet experiment <file.json> -o <dir>

Trains every variant of the file once per seed under the same budget (steps, or minutes of
training) and data (rain synthesized from the shipped photos), and evaluates each on the held-out
photos under the labelled rain recipe and under a second one never labelled. A variant may name a
"module": a .ts or .js file next to the experiment file whose exported factories build the whole
network or replace the rain gate, the rain residual block or the detail block. Writes
<dir>/results.md (mean ± std per variant, the paired test against the first variant),
<dir>/results.json, <dir>/loss.svg (mean loss per variant with its range over the seeds) and
<dir>/<variant>.seed<k>.jsonl (per-step logs). See experiments/variants.json for the format.`;

const enc = new TextEncoder();

/** The files an experiment writes into its folder: these three and one log per run. */
const OUTPUTS = { table: 'results.md', json: 'results.json', plot: 'loss.svg' } as const;
const runLogName = (variant: string, seed: number) => `${variant}.seed${seed}.jsonl`;
/** Matches every name runLogName can make. */
const RUN_LOG = /^.+\.seed\d+\.jsonl$/;
const isOutputName = (name: string) => (Object.values(OUTPUTS) as string[]).includes(name) || RUN_LOG.test(name);

/** results.json: the results without the per-step logs (those go to their own files). */
export function resultsJson(res: ExperimentResults): string {
  const variants = res.variants.map((v) => ({ ...v, seeds: v.seeds.map(({ log, ...s }) => s) }));
  return JSON.stringify({ ...res, variants }, null, 2) + '\n';
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['out'], [], { o: 'out' });
  if (a.positionals.length !== 1) throw new UsageError('experiment: give one experiment file');
  const file = a.positionals[0];
  const out = required(a, 'out', '(-o <dir>)');
  // The files written into <dir> must not replace the experiment file.
  const specReal = realPathOf(file);
  if (dirname(specReal) === realPathOf(out) && isOutputName(basename(specReal))) {
    throw new UsageError(`-o '${out}' would overwrite the experiment file '${file}' (results go to ${basename(specReal)} there): choose another folder`);
  }
  // An experiment file is a few lines of JSON; the cap keeps a device or pipe from being read forever.
  const text = new TextDecoder().decode(await readFileBytes(file, { maxBytes: 16 * 2 ** 20 }));
  let spec;
  try {
    spec = parseSpec(text, file);
  } catch (e) {
    throw e instanceof ExperimentSpecError ? new UsageError(e.message) : e;
  }
  const base = resolveBase(spec);
  // The output folder is made before hours of training, not after.
  checkWritableDir(out);
  makeDir(out);
  const budget = base.minutes === null ? `/${base.steps}` : ` (${base.minutes} min)`;
  const res = await runExperiment(spec, {
    engine: await getEngine(),
    dir: dirname(resolve(file)),
    onStep: (s, r) => progress(`experiment ${r.run}/${r.runs} ${r.variant} seed ${r.seed}: step ${s.step}${budget} loss ${s.loss.toFixed(4)}`),
    onSeed: async (s, r) => {
      progress(`experiment ${r.run}/${r.runs} ${r.variant} seed ${r.seed}: PSNR ${s.psnr.toFixed(2)} / ${s.psnr_shift.toFixed(2)} dB, SSIM ${s.ssim.toFixed(4)} / ${s.ssim_shift.toFixed(4)}, ${s.steps} steps, ${s.ms_per_step.toFixed(0)} ms/step`, true);
      await writeFileAtomic(join(out, runLogName(r.variant, r.seed)), enc.encode(s.log.map((l) => JSON.stringify(l)).join('\n') + '\n'));
    },
  });
  const table = resultsTable(res);
  await writeFileAtomic(join(out, OUTPUTS.table), enc.encode(table + '\n'));
  await writeFileAtomic(join(out, OUTPUTS.json), enc.encode(resultsJson(res)));
  const steps = Math.min(...res.variants.flatMap((v) => v.seeds.map((s) => s.steps)));
  const window = Math.max(1, Math.round(steps / 30));
  const series = res.variants.map((v) => ({ name: v.name, ...meanBand(v.seeds.map((s) => smooth(s.log.map((l): [number, number] => [l.step, l.loss_sup]), window))) }));
  const seeds = base.seeds.length;
  await writeFileAtomic(join(out, OUTPUTS.plot), enc.encode(lossPlotSvg(series, `supervised loss: mean over ${seeds} seed${seeds === 1 ? '' : 's'}, band min-max (moving average over ${window} steps)`)));
  console.log(table);
  return 0;
}
