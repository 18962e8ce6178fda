// The page's local assets (written by scripts/build-web.mjs): bundled weights and synthetic pairs.
import { decodeImageBlob } from '../../src/io/image-browser.js';
import type { Image } from '../../src/io/image.js';
import type { AdaptPair } from '../../src/train/adapt-pairs.js';

export interface Manifest {
  /** Path of the bundled default weights, or null when the build had none. */
  weights: string | null;
  /** Synthetic rainy/clean pairs for the supervised half of adaptation. */
  pairs: Array<{ rainy: string; clean: string }>;
  /** A clean held-out photo for the synthetic example (rained in the page), or null. */
  example?: string | null;
}

/** The labelled batch of adaptation, defined once in src/train/adapt-pairs.ts. */
export type Pair = AdaptPair;

async function get(path: string): Promise<Response> {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`cannot load the page's asset ${path} (HTTP ${r.status}); rebuild with npm run build:web`);
  return r;
}

export async function loadManifest(): Promise<Manifest> {
  return (await (await get('assets/manifest.json')).json()) as Manifest;
}

export async function loadBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await get(path)).arrayBuffer());
}

/** Decodes one image asset. */
export async function loadImage(path: string): Promise<Image> {
  return decodeImageBlob(await (await get(path)).blob(), path);
}

export async function loadPairs(m: Manifest): Promise<Pair[]> {
  return Promise.all(
    m.pairs.map(async (p) => ({
      rainy: await decodeImageBlob(await (await get(p.rainy)).blob(), p.rainy),
      clean: await decodeImageBlob(await (await get(p.clean)).blob(), p.clean),
    })),
  );
}
