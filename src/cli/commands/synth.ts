// `synth --clean <dir> -o <dir> --rain light|heavy|real --seed N`: synthetic rainy/clean pairs.
import { rmSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { listImages } from '../../data/dataset.js';
import { RAIN_PRESET_NAMES, rngFor, synthesizeRain } from '../../data/synth.js';
import { toByte, type Image } from '../../io/image.js';
import { readImage, writeImage } from '../../io/image-node.js';
import { checkWritableDir, finished, makeDir, samePath, unfinishedOutput } from '../../io/fs-node.js';
import { psnr } from '../../train/metrics.js';
import { oneOf, parseArgs, required, seedArg, UsageError } from '../args.js';
import { progress, reportError } from '../common.js';

export const help = `usage: semi-drdnet synth --clean <dir> -o <dir> [--rain light|heavy|real] [--seed N]

Adds synthetic rain (the Photoshop recipe: gaussian noise, motion blur, levels, screen blend) to
every PNG/JPEG in --clean and writes a paired dataset that train and eval read:
  <out>/rain/<name>.png     the rainy image
  <out>/norain/<name>.png   the clean image (a PNG copy)
  --clean <dir>   folder of clean images (e.g. data/photos/train)
  -o, --out <dir> output folder (created if needed; existing files of the same names are replaced)
  --rain <preset> light (one layer, default), heavy (several layers, longer and denser streaks),
                  real (haze veil and uneven, softer streaks: a stand-in for real rain)
  --seed <N>      seed (default 1); an image's rain depends only on the seed and its file name`;

/** The 8-bit image a PNG of `img` holds, to report PSNR as a reader of the files would see it. */
function quantised(img: Image): Image {
  return { ...img, data: img.data.map((v) => toByte(v) / 255) };
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['clean', 'out', 'rain', 'seed'], [], { o: 'out' }, 0);
  const cleanDir = required(a, 'clean', '(--clean <dir>)');
  const out = required(a, 'out', '(-o <dir>)');
  const preset = oneOf(a, 'rain', RAIN_PRESET_NAMES, 'light')!;
  const seed = seedArg(a, 1);
  const files = listImages(cleanDir);
  if (files.length === 0) throw new Error(`no images (.png, .jpg) in '${cleanDir}'`);
  const names = new Map<string, string>();
  for (const f of files) {
    const name = basename(f, extname(f));
    const prev = names.get(name);
    if (prev) throw new Error(`'${join(cleanDir, prev)}' and '${join(cleanDir, f)}' would both be written as ${name}.png`);
    names.set(name, f);
  }
  for (const sub of ['rain', 'norain']) {
    if (samePath(join(out, sub), cleanDir)) throw new UsageError(`-o '${out}' would write into the --clean folder '${cleanDir}' and replace its images`);
  }
  checkWritableDir(out);
  makeDir(join(out, 'rain'));
  makeDir(join(out, 'norain'));
  let sum = 0;
  let written = 0;
  // As derain does: an image that fails is named on one line and the others go on (exit 1 at the end).
  for (const [i, [name, f]] of [...names].entries()) {
    progress(`synth ${i + 1}/${names.size} ${f}`);
    try {
      const clean = await readImage(join(cleanDir, f));
      const { rainy } = synthesizeRain(clean, preset, rngFor(seed, name));
      const p = psnr(quantised(rainy), quantised(clean));
      // A pair without rain would teach "change nothing" (a few pixels can miss every streak).
      if (p === Infinity) throw new Error(`'${join(cleanDir, f)}' (${clean.width}x${clean.height}) came out without visible rain under the ${preset} recipe (too small or too bright for its streaks): no pair written`);
      // A pair is whole or absent: the clean half, written first, goes again if the rainy one
      // fails or a signal comes before it (train refuses a clean image without its partner).
      // Both opaque (the rainy one has no alpha), so the pair differs by the rain only.
      const cleanPath = join(out, 'norain', `${name}.png`);
      unfinishedOutput(cleanPath);
      try {
        await writeImage(cleanPath, { width: clean.width, height: clean.height, data: clean.data }, 'png');
        await writeImage(join(out, 'rain', `${name}.png`), rainy, 'png');
      } catch (e) {
        rmSync(cleanPath, { force: true });
        throw e;
      } finally {
        finished(cleanPath);
      }
      sum += p;
      written++;
    } catch (e) {
      progress('', false);
      reportError('synth', e);
    }
  }
  const failed = names.size - written;
  progress(
    `synth: ${written} pair${written === 1 ? '' : 's'} (${preset}, seed ${seed}) -> ${out}` +
      (written > 0 ? `; mean input PSNR ${(sum / written).toFixed(2)} dB` : '') +
      (failed > 0 ? `; ${failed} image${failed === 1 ? '' : 's'} failed` : ''),
    true,
  );
  return failed > 0 ? 1 : 0;
}
