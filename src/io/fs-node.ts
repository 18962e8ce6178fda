// Node-only file helpers: crash-safe writes (checkpoints, images) and reads with one-line errors.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a parent path is not a directory';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'ENOSPC': return 'no space left on device';
    default: return (e?.message ?? String(err)).split('\n')[0]!;
  }
}

/**
 * Write via a same-directory temp file + fsync + rename so a crash mid-write never leaves
 * a half-written checkpoint under the real name (rename is atomic within one filesystem).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
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
    throw new Error(`cannot write '${path}': ${reason(err)}`);
  }
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new Error(`cannot read '${path}': ${reason(err)}`);
  }
  if (buf.byteLength === 0) throw new Error(`cannot read '${path}': file is empty`);
  // Hand out a plain Uint8Array so callers never depend on Buffer-only behaviour (e.g. slice aliasing).
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
