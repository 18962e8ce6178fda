// `derain <images...> -o <dir|file>`: deraining with tiling for any image size.
import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { formatFromPath, type ImageFormat } from '../../io/image.js';
import { readImage, writeImage } from '../../io/image-node.js';
import { derainImage } from '../../model/derain.js';
import { int, oneOf, parseArgs, required, str, UsageError } from '../args.js';
import { isDirectory, loadWeightsFile, progress } from '../common.js';

export const help = `usage: semi-drdnet derain <images...> -o <dir|file> [--weights W] [--tile N] [--format png|jpg]

Derains PNG/JPEG images. Outputs keep the input's base name and extension unless --format.
  -o, --out <path>    output directory (created if needed), or a file name for a single input
  --weights <file>    safetensors weights (default: the bundled weights, when present)
  --tile <N>          output pixels per tile side (default: as large as the GPU's limits allow);
                      tiles carry the full receptive field, so tiling does not change the result
  --format png|jpg    output format`;

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['out', 'weights', 'tile', 'format'], [], { o: 'out' });
  const inputs = a.positionals;
  if (inputs.length === 0) throw new UsageError('derain: give at least one image');
  const out = required(a, 'out', '(-o <dir|file>)');
  const format = oneOf(a, 'format', ['png', 'jpg'] as const);
  const tile = int(a, 'tile', undefined, 1);
  const outFormat = formatFromPath(out);
  const toFile = inputs.length === 1 && outFormat !== null && !isDirectory(out);
  if (inputs.length > 1 && outFormat !== null && !isDirectory(out)) throw new UsageError(`derain: -o must be a directory for ${inputs.length} images`);
  const { model } = await loadWeightsFile(str(a, 'weights'), 'derain');
  let failed = 0;
  for (const [i, input] of inputs.entries()) {
    try {
      const img = await readImage(input);
      const label = `derain ${i + 1}/${inputs.length} ${basename(input)} ${img.width}x${img.height}`;
      const result = await derainImage(model, img, {
        tile,
        onTile: (d, n) => (n > 1 || inputs.length > 1) && progress(`${label} tile ${d}/${n}`),
      });
      const fmt: ImageFormat = format ?? (toFile ? outFormat! : (formatFromPath(input) ?? 'png'));
      const target = toFile ? out : join(out, basename(input, extname(input)) + (format ? `.${fmt}` : extname(input) || '.png'));
      if (!toFile) mkdirSync(out, { recursive: true }); // only once there is something to write
      await writeImage(target, result, fmt);
      progress(`${label} -> ${target}`, true);
    } catch (e) {
      failed++;
      progress('', false);
      process.stderr.write(`semi-drdnet derain: ${(e as Error).message}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}
