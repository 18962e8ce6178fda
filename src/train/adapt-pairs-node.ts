// Node side of the bundled adaptation pairs: made from the shipped photos (data/photos/train) for the
// `adapt` command, or written as PNG assets for the page (scripts/build-web.mjs).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { photosDir } from '../data/photos.js';
import { readFileBytes } from '../io/fs-node.js';
import { decodeImage, encodeImage } from '../io/image-node.js';
import { ADAPT_PAIR_SOURCES, adaptPairStem, makeAdaptPair, type AdaptPair } from './adapt-pairs.js';

export async function loadAdaptPairs(): Promise<AdaptPair[]> {
  const dir = photosDir('train');
  return Promise.all(
    ADAPT_PAIR_SOURCES.map(async ([name], i) => makeAdaptPair(decodeImage(await readFileBytes(join(dir, name)), name), i)),
  );
}

/** Writes the pairs into `dir` as PNGs; returns their page-relative paths (under assets/pairs/). */
export async function writeAdaptPairs(dir: string): Promise<Array<{ rainy: string; clean: string }>> {
  const pairs = await loadAdaptPairs();
  return pairs.map((p, i) => {
    const stem = adaptPairStem(i);
    writeFileSync(join(dir, `${stem}-rainy.png`), encodeImage(p.rainy, 'png'));
    writeFileSync(join(dir, `${stem}-clean.png`), encodeImage(p.clean, 'png'));
    return { rainy: `assets/pairs/${stem}-rainy.png`, clean: `assets/pairs/${stem}-clean.png` };
  });
}
