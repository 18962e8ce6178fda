// The clean photos shipped in data/photos (scripts/make_photos.py; sources and licences in
// data/photos/SOURCES.md): train/ holds crops of 5 photos, heldout/ 8 whole photos whose sources
// never appear in train/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PhotoSplit = 'train' | 'heldout';

/** The repository (or package) root: the nearest ancestor of this module holding package.json. */
function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/** Absolute path of data/photos/<split>; throws if this checkout or package lacks it. */
export function photosDir(split: PhotoSplit): string {
  const dir = join(root(), 'data', 'photos', split);
  if (!existsSync(dir)) throw new Error(`the bundled photos are missing: no '${dir}' (regenerate with scripts/make_photos.py)`);
  return dir;
}
