// Assertions for error paths: catch the error and check it is one line naming what is wrong.
import * as assert from 'uvu/assert';

export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, none thrown');
}

export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection, none happened');
}

/** Every error must be a single line containing all the given fragments. */
export function assertMessage(err: Error, ...parts: string[]): void {
  assert.instance(err, Error);
  assert.not.ok(err.message.includes('\n'), `multi-line message: ${err.message}`);
  for (const p of parts) assert.ok(err.message.includes(p), `'${err.message}' lacks '${p}'`);
}
