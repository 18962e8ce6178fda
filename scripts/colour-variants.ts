// Writes colour variants of every photo in a folder (as is, grey, and two channel rotations) so a
// model trained on a handful of photos does not learn their colour casts.
//   node scripts/run-ts.mjs scripts/colour-variants.ts <in-dir> <out-dir>
import { mkdirSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { readImage, writeImage } from '../src/io/image-node.js';
import type { Image } from '../src/io/image.js';

const [inDir, outDir] = process.argv.slice(2);
if (!inDir || !outDir) {
  console.error('usage: colour-variants.ts <in-dir> <out-dir>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

function channels(img: Image, order: [number, number, number]): Image {
  const n = img.width * img.height;
  const data = new Float32Array(3 * n);
  order.forEach((src, c) => data.set(img.data.subarray(src * n, src * n + n), c * n));
  return { ...img, data };
}

function grey(img: Image): Image {
  const n = img.width * img.height;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const y = 0.299 * img.data[i] + 0.587 * img.data[n + i] + 0.114 * img.data[2 * n + i];
    data[i] = data[n + i] = data[2 * n + i] = y;
  }
  return { ...img, data };
}

for (const f of readdirSync(inDir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort()) {
  const img = await readImage(join(inDir, f));
  const stem = basename(f, extname(f));
  const variants: Array<[string, Image]> = [['', img], ['-grey', grey(img)], ['-gbr', channels(img, [1, 2, 0])], ['-brg', channels(img, [2, 0, 1])]];
  for (const [suffix, v] of variants) await writeImage(join(outDir, `${stem}${suffix}.png`), v, 'png');
}
