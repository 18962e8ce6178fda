// `derain <images...> -o <dir|file>`: deraining with tiling for any image size.
import { basename, extname, join } from 'node:path';
import { checkOutputFile, checkWritableDir, makeDir, realPathOf } from '../../io/fs-node.js';
import { formatFromPath, type ImageFormat } from '../../io/image.js';
import { readImage, writeImage } from '../../io/image-node.js';
import { derainImage, MIN_TILE } from '../../model/derain.js';
import { int, oneOf, parseArgs, required, str, UsageError } from '../args.js';
import { ensembleArg, isDirectory, loadWeightsFile, progress, reportError } from '../common.js';

export const help = `usage: semi-drdnet derain <images...> -o <dir|file> [--weights W] [--tile N] [--format png|jpg]
              [--ensemble 1|2|4]

Derains PNG/JPEG images. Outputs keep the input's base name and extension unless --format.
No output may replace an input or another output: such a command is refused before any work.
  -o, --out <path>    output directory (created if needed), or a .png/.jpg/.jpeg file name for
                      a single input
  --weights <file>    safetensors weights (default: the bundled weights, when present)
  --tile <N>          output pixels per tile side, at least ${MIN_TILE} (default, and at most: as
                      large as the GPU's limits allow); tiles carry the full receptive field, so
                      tiling does not change the result
  --format png|jpg    output format (must agree with the extension of a -o file)
  --ensemble 1|2|4    flip self-ensemble: also derain the left-right (2) and up-down (4) mirror
                      images and average the results; 2x or 4x the time for a somewhat better
                      result (held-out photos: about +0.2 dB PSNR at 4)
A PNG output keeps an input's transparency and 16-bit depth (a JPEG output is opaque, 8-bit).`;

interface Job {
  input: string;
  target: string;
  format: ImageFormat;
}

/**
 * Where each input goes. Usage errors, before anything is read or computed: an unknown output
 * extension, --format disagreeing with it, several inputs for one file, an output that is an input
 * (compared by real path) and two inputs landing on one output.
 */
export function planOutputs(inputs: string[], out: string, format: ImageFormat | undefined): Job[] {
  const outFormat = formatFromPath(out);
  // A trailing slash says "folder" whatever the name looks like.
  const outIsDir = isDirectory(out) || /[\\/]$/.test(out);
  let jobs: Job[];
  if (!outIsDir && outFormat !== null) {
    if (inputs.length > 1) throw new UsageError(`-o must be a directory for ${inputs.length} images, got the file name '${out}'`);
    if (format && format !== outFormat) throw new UsageError(`--format ${format} does not match the extension of -o '${out}'`);
    checkOutputFile(out, 'image'); // its folder exists and is writable: checked before the network runs
    jobs = [{ input: inputs[0]!, target: out, format: outFormat }];
  } else {
    const ext = extname(out);
    if (!outIsDir && ext !== '') {
      throw new UsageError(`-o '${out}' has the unknown image extension '${ext}' (use .png, .jpg or .jpeg for a file, or a folder)`);
    }
    checkWritableDir(out);
    jobs = inputs.map((input) => {
      const own = formatFromPath(input);
      const fmt = format ?? own ?? 'png';
      const suffix = !format && own ? extname(input) : `.${fmt}`;
      return { input, target: join(out, basename(input, extname(input)) + suffix), format: fmt };
    });
  }
  const inputsByReal = new Map(inputs.map((i) => [realPathOf(i), i]));
  const seen = new Map<string, string>();
  for (const j of jobs) {
    const real = realPathOf(j.target);
    const victim = inputsByReal.get(real);
    if (victim !== undefined) throw new UsageError(`the output '${j.target}' would overwrite the input '${victim}'`);
    if (isDirectory(j.target)) throw new UsageError(`the output '${j.target}' is a directory`);
    const prev = seen.get(real);
    if (prev !== undefined) throw new UsageError(`'${prev}' and '${j.input}' would both be written to '${j.target}'`);
    seen.set(real, j.input);
  }
  return jobs;
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['out', 'weights', 'tile', 'format', 'ensemble'], [], { o: 'out' });
  const inputs = a.positionals;
  if (inputs.length === 0) throw new UsageError('give at least one image');
  const out = required(a, 'out', '(-o <dir|file>)');
  const format = oneOf(a, 'format', ['png', 'jpg'] as const);
  const tile = int(a, 'tile', undefined, MIN_TILE);
  const ensemble = ensembleArg(a);
  const jobs = planOutputs(inputs, out, format);
  const weights = str(a, 'weights');
  if (weights !== undefined) {
    for (const j of jobs) if (realPathOf(j.target) === realPathOf(weights)) throw new UsageError(`the output '${j.target}' would overwrite the weights '${weights}'`);
  }
  const { model } = await loadWeightsFile(weights, 'derain');
  let failed = 0;
  for (const [i, { input, target, format: fmt }] of jobs.entries()) {
    try {
      const img = await readImage(input);
      const label = `derain ${i + 1}/${inputs.length} ${basename(input)} ${img.width}x${img.height}`;
      const result = await derainImage(model, img, {
        tile,
        ensemble,
        // The counts span the ensemble's passes: say which pass, and the tile within it.
        onTile: (d, n) => {
          if (n === 1 && inputs.length === 1) return;
          const per = n / (ensemble ?? 1);
          progress(`${label} tile ${((d - 1) % per) + 1}/${per}` + (per < n ? ` (pass ${Math.ceil(d / per)} of ${n / per})` : ''));
        },
      });
      if (target !== out) makeDir(out); // only once there is something to write
      await writeImage(target, result, fmt);
      progress(`${label} -> ${target}`, true);
    } catch (e) {
      failed++;
      progress('', false);
      reportError('derain', e);
    }
  }
  return failed > 0 ? 1 : 0;
}
