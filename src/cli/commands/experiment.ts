// `experiment <file.json> -o <dir>`: train layer variants under one budget, compare on held-out photos.
import { join } from 'node:path';
import { loadImages } from '../../data/dataset.js';
import { photosDir } from '../../data/photos.js';
import { checkWritableDir, makeDir, readFileBytes, writeFileAtomic } from '../../io/fs-node.js';
import { lossPlotSvg, smooth } from '../../train/plot.js';
import { DEFAULT_BASE, ExperimentSpecError, makeData, parseSpec, resultsTable, runVariant, type VariantResult } from '../../train/experiment.js';
import { parseArgs, required, UsageError } from '../args.js';
import { getEngine, progress } from '../common.js';

export const help = `usage: semi-drdnet experiment <file.json> -o <dir>

Trains every variant of the file under the same budget (steps, batch, patch, seed, data: rain
synthesized from the shipped photos) and evaluates each on the held-out photos. Writes
<dir>/results.md (PSNR, SSIM, params, ms/step), <dir>/results.json, <dir>/loss.svg (loss curves)
and <dir>/<variant>.jsonl (per-step logs). See experiments/variants.json for the format.`;

const enc = new TextEncoder();

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['out'], [], { o: 'out' });
  if (a.positionals.length !== 1) throw new UsageError('experiment: give one experiment file');
  const file = a.positionals[0];
  const out = required(a, 'out', '(-o <dir>)');
  // An experiment file is a few lines of JSON; the cap keeps a device or pipe from being read forever.
  const text = new TextDecoder().decode(await readFileBytes(file, { maxBytes: 16 * 2 ** 20 }));
  let spec;
  try {
    spec = parseSpec(text, file);
  } catch (e) {
    throw e instanceof ExperimentSpecError ? new UsageError(e.message) : e;
  }
  const base = { ...DEFAULT_BASE, ...spec.base };
  // The output folder is made before hours of training, not after.
  checkWritableDir(out);
  makeDir(out);
  const engine = await getEngine();
  const [train, heldout] = [await loadImages(photosDir('train')), await loadImages(photosDir('heldout'))];
  const data = makeData(train, heldout, base);
  const results: VariantResult[] = [];
  for (const [i, v] of spec.variants.entries()) {
    const r = await runVariant(engine, v, base, data, (s) =>
      progress(`experiment ${i + 1}/${spec.variants.length} ${v.name}: step ${s.step}/${base.steps} loss ${s.loss.toFixed(4)}`),
    );
    progress(`experiment ${v.name}: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}, ${r.ms_per_step.toFixed(0)} ms/step`, true);
    await writeFileAtomic(join(out, `${v.name}.jsonl`), enc.encode(r.log.map((l) => JSON.stringify(l)).join('\n') + '\n'));
    results.push(r);
  }
  const table = resultsTable(results, base);
  await writeFileAtomic(join(out, 'results.md'), enc.encode(table + '\n'));
  await writeFileAtomic(join(out, 'results.json'), enc.encode(JSON.stringify({ base, results: results.map(({ log, ...r }) => r) }, null, 2) + '\n'));
  const window = Math.max(1, Math.round(base.steps / 30));
  const series = results.map((r) => ({ name: r.name, points: smooth(r.log.map((l): [number, number] => [l.step, l.loss_sup]), window) }));
  await writeFileAtomic(join(out, 'loss.svg'), enc.encode(lossPlotSvg(series, `supervised loss (moving average over ${window} steps)`)));
  console.log(table);
  return 0;
}
