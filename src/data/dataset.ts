// Node dataset loaders: paired folders (rain/ + norain/) and unlabelled folders, with one-line
// errors that name the offending file. The patch sampler itself is platform-neutral (sampler.ts).
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Image } from '../io/image.js';
import { fsCause } from '../io/fs-node.js';
import { readImage } from '../io/image-node.js';

export { PatchSampler, pairBatches, imageBatches } from './sampler.js';
export type { SamplerItem, SamplerState, PatchSamplerOptions, ImageBatch, PairPatchBatch } from './sampler.js';

/** A rainy image and its clean ground truth, read from a dataset folder. */
export interface ImagePair {
  /** The rainy file's name (e.g. norain-12x2.png), used to report per-image results. */
  name: string;
  rainy: Image;
  clean: Image;
  rainyPath: string;
  cleanPath: string;
}

export interface NamedImage {
  name: string;
  image: Image;
  path: string;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** Natural order (img2 before img10), independent of the locale. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      if (x.length !== y.length) return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length || (a < b ? -1 : a > b ? 1 : 0);
}

function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : fsCause(err);
    throw new Error(`cannot read directory '${dir}': ${why}`);
  }
}

function isImageFile(e: Dirent, dir: string): boolean {
  if (e.name.startsWith('.') || !IMAGE_EXT.has(extname(e.name).toLowerCase())) return false;
  if (e.isFile()) return true;
  // Follow symlinks to files; a looping one is kept so that reading it reports the loop by name.
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(join(dir, e.name), { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return true;
  }
}

/** Image file names (.png, .jpg, .jpeg; hidden files skipped) in natural order. */
export function listImages(dir: string): string[] {
  return entries(dir)
    .filter((e) => isImageFile(e, dir))
    .map((e) => e.name)
    .sort(naturalCompare);
}

const stem = (f: string): string => basename(f, extname(f));

/**
 * Candidate clean stems for a rainy stem, most specific first: the same name; the Rain100/200
 * scale suffix dropped (norain-12x2 -> norain-12); rain- -> norain- (rain-12 -> norain-12); the
 * DDN/Rain1400 streak index dropped (12_3 -> 12).
 */
export function cleanCandidates(rainyStem: string): string[] {
  const out = [rainyStem];
  const scale = /^(.+?)x\d+$/.exec(rainyStem);
  if (scale) out.push(scale[1]);
  const prefix = /^rain([-_].+)$/i.exec(rainyStem);
  if (prefix) out.push(`norain${prefix[1]}`);
  const ddn = /^(.+)_\d+$/.exec(rainyStem);
  if (ddn) out.push(ddn[1]);
  return out;
}

/**
 * Matches rainy to clean file names (pure; used by loadPairs). Every rainy file needs a clean
 * partner and every clean file needs at least one rainy file; either failure names the file.
 */
export function matchPairs(rainy: readonly string[], clean: readonly string[], where = { rain: 'rain', norain: 'norain' }): Array<[string, string]> {
  const byStem = new Map<string, string>();
  for (const f of clean) {
    const s = stem(f);
    const prev = byStem.get(s);
    if (prev !== undefined) throw new Error(`ambiguous clean images '${join(where.norain, prev)}' and '${join(where.norain, f)}' (same name)`);
    byStem.set(s, f);
  }
  const used = new Set<string>();
  const pairs: Array<[string, string]> = [];
  for (const r of rainy) {
    const match = cleanCandidates(stem(r)).find((s) => byStem.has(s));
    if (match === undefined) throw new Error(`no clean image in '${where.norain}' matches rainy image '${join(where.rain, r)}'`);
    const c = byStem.get(match)!;
    used.add(c);
    pairs.push([r, c]);
  }
  for (const c of clean) {
    if (!used.has(c)) throw new Error(`clean image '${join(where.norain, c)}' has no rainy image in '${where.rain}'`);
  }
  return pairs;
}

/** Maps over items with at most `limit` promises in flight, keeping the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (err) {
        failed = true; // stop the other workers after their current item
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The folder holding the rainy images: rain/, or its only image-holding subfolder (Rain200H's rain/X2/). */
function rainyFolder(rainDir: string): string {
  if (listImages(rainDir).length > 0) return rainDir;
  const subs = entries(rainDir).filter((e) => e.isDirectory() && !e.name.startsWith('.') && listImages(join(rainDir, e.name)).length > 0);
  return subs.length === 1 ? join(rainDir, subs[0].name) : rainDir;
}

export interface PairFiles {
  name: string;
  rainyPath: string;
  cleanPath: string;
}

/**
 * The pairs of a paired dataset without reading the pixels: `<dir>/rain/` (or `<dir>/rain/X2/`)
 * and `<dir>/norain/`, matched by name (see cleanCandidates), in natural order of the rainy names.
 * Errors, one line each: a missing or empty folder, an unmatched file.
 */
export function pairFiles(dir: string): PairFiles[] {
  const rainDir = rainyFolder(join(dir, 'rain'));
  const cleanDir = join(dir, 'norain');
  const rainy = listImages(rainDir);
  const clean = listImages(cleanDir);
  if (rainy.length === 0) throw new Error(`no images (.png, .jpg) in '${rainDir}'`);
  if (clean.length === 0) throw new Error(`no images (.png, .jpg) in '${cleanDir}'`);
  return matchPairs(rainy, clean, { rain: rainDir, norain: cleanDir }).map(([r, c]) => ({
    name: r,
    rainyPath: join(rainDir, r),
    cleanPath: join(cleanDir, c),
  }));
}

/** Reads one pair; an unreadable image or a size mismatch is a one-line error naming the file(s). */
export async function readPair(p: PairFiles, clean?: Promise<Image>): Promise<ImagePair> {
  const [rainy, ci] = await Promise.all([readImage(p.rainyPath), clean ?? readImage(p.cleanPath)]);
  if (rainy.width !== ci.width || rainy.height !== ci.height) {
    throw new Error(`size mismatch: '${p.rainyPath}' is ${rainy.width}x${rainy.height} but '${p.cleanPath}' is ${ci.width}x${ci.height}`);
  }
  return { ...p, rainy, clean: ci };
}

/**
 * Loads a paired dataset (see pairFiles) into memory: every image as float32, 12 bytes a pixel.
 * Errors, one line each: a missing or empty folder, an unmatched file, an unreadable image, a
 * size mismatch.
 */
export async function loadPairs(dir: string): Promise<ImagePair[]> {
  const files = pairFiles(dir);
  const cache = new Map<string, Promise<Image>>(); // a clean image may serve several rainy ones (DDN)
  return mapLimit(files, 8, async (p) => {
    let clean = cache.get(p.cleanPath);
    if (!clean) cache.set(p.cleanPath, (clean = readImage(p.cleanPath)));
    return readPair(p, clean);
  });
}

/** Loads every image of an unlabelled folder (e.g. real rainy photos), in natural order. */
export async function loadImages(dir: string): Promise<NamedImage[]> {
  const files = listImages(dir);
  if (files.length === 0) throw new Error(`no images (.png, .jpg) in '${dir}'`);
  return mapLimit(files, 8, async (f) => ({ name: f, image: await readImage(join(dir, f)), path: join(dir, f) }));
}
