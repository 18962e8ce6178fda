// Values named in the API's error messages with their type where it could be the wrong one
// ('32' (a string), a Uint8Array of 3072), so a message never reads "expected 32, got 32".

/** A value as an error message names it. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}' (a string)`;
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${'length' in v ? (v as unknown as ArrayLike<unknown>).length : `${v.byteLength} bytes`}`;
  return `a ${(v as object).constructor?.name ?? 'object'}`;
}

/** Throws unless `v` is undefined or a function: `what` names the option. */
export function checkCallback(what: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') throw new Error(`${what} must be a function, got ${describeValue(v)}`);
}
