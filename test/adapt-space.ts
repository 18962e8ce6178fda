// Shared fixtures of the contrastive-space tests (patchnce, fft): a tiny adaptation case run twice, and a CLI adapt setup.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeImage } from '../src/io/image-node.js';
import { weightsToBytes } from '../src/model/weights.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { adaptToPhotos, type AdaptOptions, type ContrastiveSpace } from '../src/train/adapt.js';
import type { AdaptPair } from '../src/train/adapt-pairs.js';
import type { Engine } from '../src/gpu/runtime.js';
import { engine } from './helpers.js';

/** A 20x20 pair and photo and 2-step options in `space`. */
export function tinyAdaptCase(space: ContrastiveSpace) {
  const img = (f: (i: number) => number) => ({ width: 20, height: 20, data: Float32Array.from({ length: 3 * 400 }, (_, i) => f(i)) });
  const pairs: AdaptPair[] = [{ rainy: img((i) => ((i * 13) % 17) / 17), clean: img((i) => ((i * 7) % 11) / 11) }];
  const photo = img((i) => ((i * 31) % 23) / 23);
  const opts: Partial<AdaptOptions> = { steps: 2, patch: 16, batch: 1, lr: 1e-3, contrastiveSpace: space };
  return { pairs, photo, opts };
}

/** Adapts a fresh micro model on the case; returns the records and the first parameter's values. */
export async function adaptOnce(e: Engine, c: ReturnType<typeof tinyAdaptCase>) {
  const m = new DrdNet(e, preset('micro'), 3);
  const r = await adaptToPhotos(e, m, [c.photo], c.pairs, c.opts);
  const w = await m.parameters()[0]!.read();
  m.dispose();
  return { r, w };
}

/** Micro weights and a 24x24 photo in a new folder, and the `adapt` arguments every CLI case shares. */
export async function adaptCliSetup(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const weights = join(dir, 'micro.safetensors');
  const photo = join(dir, 'photo.png');
  const m = new DrdNet(await engine(), preset('micro'), 3);
  writeFileSync(weights, await weightsToBytes(m));
  m.dispose();
  writeFileSync(photo, encodeImage({ width: 24, height: 24, data: Float32Array.from({ length: 3 * 576 }, (_, i) => ((i * 37) % 101) / 100) }, 'png'));
  const out = join(dir, 'adapted.safetensors');
  return { out, common: [photo, '-o', out, '--weights', weights, '--steps', '2', '--patch', '16', '--batch', '1'] };
}
