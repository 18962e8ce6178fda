// Node's tuning store: one JSON file per adapter and package version in the user's cache folder, written atomically; a corrupt file reads as empty.
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TuningStore } from './tuning-store.js';
import { packageVersion, writeFileAtomic } from './fs-node.js';

/** Options of `fileTuningStore`. */
export interface FileTuningStoreOptions {
  /** Folder of the files (default $XDG_CACHE_HOME/semi-drdnet or ~/.cache/semi-drdnet). */
  dir?: string;
  /** Part of the file name, so a new release never reuses choices made for other kernels (default: package.json's version). */
  version?: string;
}

/** The cache folder: $XDG_CACHE_HOME/semi-drdnet, else ~/.cache/semi-drdnet. */
export function tuningCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'semi-drdnet');
}

function versionOrZero(): string {
  try {
    return packageVersion();
  } catch {
    return '0';
  }
}

/** A file name from free text (adapter descriptions hold spaces, slashes and parentheses). */
const safeName = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120) || 'adapter';

/** Tuning store in files: `<dir>/<adapter>@<version>.json` holding `{ entries: {...} }`. */
export function fileTuningStore(opts: FileTuningStoreOptions = {}): TuningStore {
  const dir = () => opts.dir ?? tuningCacheDir();
  let version: string | undefined = opts.version;
  const file = (adapter: string) => join(dir(), `${safeName(adapter)}@${safeName((version ??= versionOrZero()))}.json`);
  return {
    async load(adapter) {
      try {
        const o = JSON.parse(await readFile(file(adapter), 'utf8')) as { entries?: unknown };
        const e = o?.entries;
        return e && typeof e === 'object' && !Array.isArray(e) ? (e as Record<string, unknown>) : null;
      } catch {
        return null; // missing, unreadable or corrupt: tune again and overwrite it
      }
    },
    async save(adapter, entries) {
      await mkdir(dir(), { recursive: true });
      await writeFileAtomic(file(adapter), new TextEncoder().encode(JSON.stringify({ adapter, entries }, null, 1) + '\n'));
    },
  };
}
