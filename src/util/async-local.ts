// Async-context-local values where the platform has them (Node's AsyncLocalStorage), else null.

/** The part of Node's AsyncLocalStorage the engine uses. */
export interface AsyncLocal<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

type NodeProcess = { getBuiltinModule?: (id: string) => { AsyncLocalStorage?: new () => AsyncLocal<unknown> } | undefined };

// process.getBuiltinModule (Node >= 20.16) needs no import, so browser bundles stay free of node: modules.
const Als = (globalThis as { process?: NodeProcess }).process?.getBuiltinModule?.('node:async_hooks')?.AsyncLocalStorage;

/** A new async-context-local slot, or null where async contexts cannot be followed (browsers today). */
export function asyncLocal<T>(): AsyncLocal<T> | null {
  return Als ? (new Als() as AsyncLocal<T>) : null;
}
