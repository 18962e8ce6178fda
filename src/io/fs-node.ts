// Node-only file helpers: crash-safe writes (checkpoints, images), capped reads, line-atomic logs,
// output-folder checks, and one-line errors that name the path and the cause.
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, existsSync, constants, readFileSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, realpathSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { safetensorsReadLimit } from './safetensors.js';

const CAUSES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'already exists',
  ELOOP: 'too many levels of symbolic links',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  EFBIG: 'file too large',
};

/** The cause of a filesystem error in a few words (never Node's multi-part message). */
export function fsCause(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e?.code && CAUSES[e.code]) || (e?.message ?? String(err)).split('\n')[0]!;
}

/** One line naming the operation, the path and the cause, e.g. "cannot write 'x': read-only file system". */
export function fsError(verb: string, path: string, err: unknown): Error {
  return new Error(`cannot ${verb} '${path}': ${fsCause(err)}`);
}

/** Files that are not outputs yet (temp files of writes in progress, half a pair): what `removeUnfinished` deletes. */
const unfinished = new Set<string>();

/** Marks `path` as not a finished output until `finished(path)`: a signal's exit removes it. */
export function unfinishedOutput(path: string): void {
  unfinished.add(path);
}

/** `path` is a finished output (or gone): a signal leaves it alone. */
export function finished(path: string): void {
  unfinished.delete(path);
}

/** Deletes every unfinished output now (synchronously: a signal handler calls it right before exiting). */
export function removeUnfinished(): void {
  for (const p of unfinished) rmSync(p, { force: true });
  unfinished.clear();
}

/**
 * Write via a same-directory temp file + fsync + rename so a crash mid-write never leaves
 * a half-written checkpoint under the real name (rename is atomic within one filesystem).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  unfinishedOutput(tmp);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fsError('write', path, err);
  } finally {
    finished(tmp);
  }
}

export interface ReadLimit {
  /** Never read more than this many bytes (devices and pipes have no size to trust). */
  maxBytes: number;
  /**
   * Given the file's first bytes (up to 64 KiB), the most bytes this format can need (the cap for
   * devices and pipes), or throw when the head already shows the file is unusable (wrong magic, a
   * size over budget).
   */
  fromHead?: (head: Uint8Array) => number;
}

/** 2 GiB: a Node Buffer's practical limit and far above any weights file this project writes. */
export const DEFAULT_MAX_READ = 2 ** 31 - 1;
const HEAD_BYTES = 64 * 1024;
const CHUNK = 4 * 2 ** 20;

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 3 : 0)} MiB`;

/**
 * Reads a whole file, but never more than the limit: a regular file's size is checked before
 * reading, and a device or pipe (/dev/zero, a FIFO) is read in chunks and abandoned once it
 * passes the limit, so no input can grow memory without bound.
 */
export async function readFileBytes(path: string, limit: ReadLimit = { maxBytes: DEFAULT_MAX_READ }): Promise<Uint8Array> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fsError('read', path, err);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new Error(`cannot read '${path}': is a directory`);
    let max = limit.maxBytes;
    if (st.isFile() && st.size > max) throw new Error(`cannot read '${path}': ${mib(st.size)} is more than the limit of ${mib(max)}`);
    const chunks: Buffer[] = [];
    let total = 0;
    let headChecked = !limit.fromHead;
    for (;;) {
      const want = headChecked ? Math.min(CHUNK, max + 1 - total) : HEAD_BYTES;
      const buf = Buffer.allocUnsafe(Math.max(1, want));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw fsError('read', path, err);
      }
      if (n > 0) {
        chunks.push(buf.subarray(0, n));
        total += n;
      }
      if (!headChecked && (total >= HEAD_BYTES || n === 0)) {
        headChecked = true;
        const need = total > 0 ? limit.fromHead!(Buffer.concat(chunks)) : max;
        // A regular file's size is known and already checked; only a stream needs the tighter cap.
        if (!st.isFile()) max = Math.min(max, need);
      }
      if (total > max) throw new Error(`cannot read '${path}': longer than the ${mib(max)} its format allows (a device or a pipe?)`);
      if (n === 0) break;
    }
    if (total === 0) throw new Error(`cannot read '${path}': file is empty`);
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    // Hand out a plain Uint8Array so callers never depend on Buffer-only behaviour (e.g. slice aliasing).
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } finally {
    closeSync(fd);
  }
}

/** The real path of `p`, or of its folder plus its name when `p` does not exist yet. */
export function realPathOf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    try {
      return resolve(realpathSync(dirname(p)), basename(p));
    } catch {
      return resolve(p);
    }
  }
}

/** Whether two paths name the same file once symlinks and `..` are resolved. */
export function samePath(a: string, b: string): boolean {
  return realPathOf(a) === realPathOf(b);
}

/**
 * Checks, before any work, that `dir` is a folder this process can write into, or that it can be
 * created (its nearest existing ancestor is a writable folder). Throws one line naming the path.
 */
export function checkWritableDir(dir: string, what = 'output folder'): void {
  let p = resolve(dir);
  for (;;) {
    const st = statOrNull(p);
    if (st) {
      if (!st.isDirectory()) throw new Error(`cannot use ${what} '${dir}': ${p === resolve(dir) ? '' : `'${p}' `}exists and is not a directory`);
      try {
        accessSync(p, constants.W_OK | constants.X_OK);
      } catch (err) {
        throw new Error(`cannot use ${what} '${dir}': ${p === resolve(dir) ? '' : `'${p}': `}${fsCause(err)}`);
      }
      return;
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

/** The folder an output file goes into must exist already and be writable (checked before training). */
export function checkOutputFile(path: string, what = 'output'): void {
  // 'out/' resolves to 'out' and would pass every check below, to fail at the write hours later.
  if (/[\\/]$/.test(path) || ['.', '..'].includes(basename(path))) throw new Error(`cannot write ${what} '${path}': names a folder, not a file`);
  const dir = dirname(resolve(path));
  if (!statOrNull(dir)) throw new Error(`cannot write ${what} '${path}': folder '${dirname(path)}' does not exist`);
  checkWritableDir(dir, `the folder of ${what} '${path}'`);
  if (statOrNull(path)?.isDirectory()) throw new Error(`cannot write ${what} '${path}': is a directory`);
}

/** Minimal write surface, so tests can simulate a disk that fills up mid-line. */
export interface LineSink {
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number;
}

/**
 * An append-only JSONL file whose lines are whole: each line is written at the known end of the
 * file, and a failed or short write (ENOSPC) is cut back to the last complete line before the
 * error (one line naming the path) is thrown.
 */
export class LineLog {
  #fd: number;
  #size: number;
  /** Pipes and devices take plain writes; regular files positioned ones at the known end. */
  #seekable: boolean;

  private constructor(readonly path: string, fd: number, size: number, private readonly sink: LineSink) {
    this.#fd = fd;
    this.#size = size;
    this.#seekable = fstatSync(fd).isFile();
  }

  /**
   * Opens `path` for appending. `keep(line)` selects the existing lines to keep (e.g. steps up
   * to the one a run resumes from); without it the file is emptied. A half line is always dropped.
   */
  static open(path: string, keep?: (line: string) => boolean, sink: LineSink = { write: writeSync }): LineLog {
    let fd: number;
    try {
      fd = openSync(path, keep ? 'a+' : 'w');
    } catch (err) {
      throw fsError('write', path, err);
    }
    try {
      let size = 0;
      if (keep) {
        const st = fstatSync(fd);
        const text = st.isFile() ? readAll(fd, st.size).toString('utf8') : '';
        const lines = text.split('\n');
        lines.pop(); // the text after the last newline is empty or a half-written line
        let kept = 0;
        for (const l of lines) {
          if (!keep(l)) break;
          kept += Buffer.byteLength(l) + 1;
        }
        if (st.isFile()) ftruncateSync(fd, kept);
        size = kept;
      }
      return new LineLog(path, fd, size, sink);
    } catch (err) {
      closeSync(fd);
      throw err instanceof Error && err.message.startsWith('cannot') ? err : fsError('write', path, err);
    }
  }

  append(line: string): void {
    const buf = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
    let done = 0;
    try {
      while (done < buf.length) {
        const n = this.sink.write(this.#fd, buf, done, buf.length - done, this.#seekable ? this.#size + done : null);
        if (n <= 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
        done += n;
      }
    } catch (err) {
      if (done > 0 && this.#seekable) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          // the write error below is the one worth reporting
        }
      }
      throw fsError('write', this.path, err);
    }
    this.#size += buf.length;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let pos = 0;
  while (pos < size) {
    const n = readSync(fd, buf, pos, size - pos, pos);
    if (n === 0) break;
    pos += n;
  }
  return buf.subarray(0, pos);
}

/**
 * mkdir -p with a one-line error naming the folder (e.g. a plain file in the way). One component
 * at a time: Node 20's recursive mkdirSync loops forever when mkdir(2) answers ENOENT under a
 * folder that exists (as root under /proc).
 */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let p = resolve(dir); !statOrNull(p); p = dirname(p)) {
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError('create folder', dir, err);
    }
  }
  if (!statOrNull(dir)?.isDirectory()) throw new Error(`cannot create folder '${dir}': already exists and is not a directory`);
}

/** stat, or null where nothing is there (a missing path, or a plain file where a folder would be). */
function statOrNull(p: string): Stats | null {
  try {
    return statSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw fsError('read', p, err);
  }
}

/** Whether `p` is `dir` or lies inside it, once symlinks and `..` are resolved. */
export function isInside(p: string, dir: string): boolean {
  const a = realPathOf(p);
  const d = realPathOf(dir);
  return a === d || a.startsWith(d.endsWith(sep) ? d : d + sep);
}

/** A safetensors file's bytes, the read capped by what its header declares (no endless devices). */
export function readSafetensorsBytes(path: string): Promise<Uint8Array> {
  return readFileBytes(path, safetensorsReadLimit(path));
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The package root: the nearest folder above this module with a package.json (dist/, src/io/ or a test bundle). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the semi-drdnet package root above ${fileURLToPath(import.meta.url)}`);
}
