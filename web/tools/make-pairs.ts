// Build-time tool (run by scripts/build-web.mjs): a few small synthetic rain pairs for the page's
// adaptation, rained with the project's synthesiser on crops of data/photos/train.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, encodeImage } from '../../src/io/image-node.js';
import { readFileBytes } from '../../src/io/fs-node.js';
import type { Image } from '../../src/io/image.js';
import { rngFor, synthesizeRain, type RainPreset } from '../../src/data/synth.js';

/** Varied scenes and both synthetic rain strengths; 96 px crops keep the assets around 0.3 MB. */
const SOURCES: Array<[string, RainPreset]> = [
  ['astronaut-00.png', 'heavy'],
  ['gravel-01.png', 'light'],
  ['retina-10.png', 'heavy'],
  ['rocket-02.png', 'light'],
  ['cell-11.png', 'heavy'],
  ['astronaut-11.png', 'light'],
  ['rocket-10.png', 'heavy'],
  ['retina-01.png', 'light'],
];
const SIZE = 96;
const SEED = 1;

function centerCrop(img: Image, s: number): Image {
  const x0 = (img.width - s) >> 1;
  const y0 = (img.height - s) >> 1;
  const out = new Float32Array(3 * s * s);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < s; y++) {
      const src = c * img.width * img.height + (y0 + y) * img.width + x0;
      out.set(img.data.subarray(src, src + s), (c * s + y) * s);
    }
  }
  return { width: s, height: s, data: out };
}

/** Writes the pairs into `dir`; returns their page-relative paths. */
export async function makePairs(root: string, dir: string): Promise<Array<{ rainy: string; clean: string }>> {
  const out: Array<{ rainy: string; clean: string }> = [];
  for (const [i, [name, preset]] of SOURCES.entries()) {
    const clean = decodeImage(await readFileBytes(join(root, 'data/photos/train', name)), name);
    // Rain is made on the whole photo: the presets' streak lengths are tuned to ~256 px images.
    const { rainy } = synthesizeRain(clean, preset, rngFor(SEED, name));
    const stem = `${i}-${name.replace(/\.png$/, '')}-${preset}`;
    writeFileSync(join(dir, `${stem}-rainy.png`), encodeImage(centerCrop(rainy, SIZE), 'png'));
    writeFileSync(join(dir, `${stem}-clean.png`), encodeImage(centerCrop(clean, SIZE), 'png'));
    out.push({ rainy: `assets/pairs/${stem}-rainy.png`, clean: `assets/pairs/${stem}-clean.png` });
  }
  return out;
}
