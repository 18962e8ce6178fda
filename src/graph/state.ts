// Any module's state as safetensors with PyTorch state_dict names: save, and load with checks.
import { parseSafetensors, serializeSafetensors, toFloat32, type NamedSerializableTensor, type ParsedSafetensors } from '../io/safetensors.js';
import { BatchNorm2d } from './layers.js';
import type { Module } from './module.js';
import { shapeStr } from '../core/tensor.js';

/** Prefixes of training state that loaders skip (checkpoints carry Adam moments and counters). */
export const STATE_PREFIXES = ['optim.', 'state.'];

/**
 * Largest magnitude a weight or BN statistic may have. Trained values sit far below it; above it
 * (3e38 is still finite) a forward pass overflows float32 into Inf and NaN.
 */
export const MAX_ABS_VALUE = 1e6;

/** Weights (or training state) with NaN, Inf, absurd or impossible values. */
export class NonFiniteWeightsError extends Error {}

/** What `checkFinite` accepts. */
export interface FiniteCheck {
  /** Default MAX_ABS_VALUE; Infinity allows any finite value (Adam's second moments can be large). */
  maxAbs?: number;
  /** Refuse negative values (default: for names ending in running_var, a variance). */
  nonNegative?: boolean;
}

/** Throws one line naming the tensor when a value is NaN, infinite, beyond `maxAbs`, or a negative where none may be. */
export function checkFinite(values: ArrayLike<number>, name: string, source: string, opts: FiniteCheck = {}): void {
  const maxAbs = opts.maxAbs ?? MAX_ABS_VALUE;
  const nonNegative = opts.nonNegative ?? name.endsWith('running_var');
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(Math.abs(v) <= maxAbs) || (nonNegative && v < 0)) {
      const what = Number.isNaN(v) ? 'NaN' : !Number.isFinite(v) ? String(v) : nonNegative && v < 0 ? `the negative value ${v}` : `${v}, beyond +-${maxAbs}`;
      throw new NonFiniteWeightsError(`${source}: tensor '${name}' holds ${what} at index ${i} (broken or diverged weights)`);
    }
  }
}

/** Options of `loadModule` (names used in its error messages). */
export interface LoadModuleOptions {
  /** Names the file in errors (default 'safetensors'). */
  source?: string;
  /** Describes the module in errors about unexpected tensors (default: its class name). */
  what?: string;
}

/** Options of `saveModule`. */
export interface SaveModuleOptions {
  /** String metadata stored in the file's `__metadata__` (with format 'pt'). */
  metadata?: Record<string, string>;
  /** More tensors to store (a checkpoint's optimizer moments and counters); float ones must be finite. */
  extra?: NamedSerializableTensor[];
}

/**
 * The module's parameters and buffers in state_dict order as safetensors bytes, with PyTorch's I64
 * `num_batches_tracked` after each BatchNorm's running_var, so torch's load_state_dict takes it.
 * Every value is checked first (`checkFinite`): a broken model is never saved.
 */
export async function saveModule(module: Module, opts: SaveModuleOptions = {}): Promise<Uint8Array> {
  const bns = new Map(module.namedModules().filter((e): e is [string, BatchNorm2d] => e[1] instanceof BatchNorm2d));
  const out: NamedSerializableTensor[] = [];
  for (const [name, t] of module.stateDict()) {
    const data = await t.read();
    checkFinite(data, name, 'cannot save weights');
    out.push({ name, dtype: 'F32', shape: [...t.shape], data });
    if (name.endsWith('.running_var') || name === 'running_var') {
      const prefix = name.slice(0, -'running_var'.length).replace(/\.$/, '');
      const bn = bns.get(prefix);
      if (bn) out.push({ name: `${prefix ? `${prefix}.` : ''}num_batches_tracked`, dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(bn.numBatchesTracked)) });
    }
  }
  // Adam moments may be large (v holds squared gradients) but never non-finite, and v never negative.
  for (const t of opts.extra ?? []) if (t.data instanceof Float32Array) checkFinite(t.data, t.name, 'cannot save weights', { maxAbs: Infinity, nonNegative: t.name.endsWith('.v') });
  return serializeSafetensors([...out, ...(opts.extra ?? [])], { format: 'pt', ...opts.metadata });
}

/**
 * Copies safetensors bytes (or an already parsed file) into the module: every name must match a
 * parameter or buffer with the same shape and every parameter must be present; values must pass
 * `checkFinite`. `optim.*` and `state.*` entries (checkpoint state) are skipped. Nothing is written
 * unless everything checks out.
 */
export function loadModule(module: Module, bytes: Uint8Array | ParsedSafetensors, opts: LoadModuleOptions = {}): void {
  const source = opts.source ?? 'safetensors';
  const file = bytes instanceof Uint8Array ? parseSafetensors(bytes, source) : bytes;
  const what = opts.what ?? `${module.constructor.name} module`;
  const state = new Map(module.stateDict());
  const bns = new Map(module.namedModules().filter((e): e is [string, BatchNorm2d] => e[1] instanceof BatchNorm2d).map(([p, bn]) => [p ? `${p}.num_batches_tracked` : 'num_batches_tracked', bn]));
  const writes: Array<() => void> = [];
  for (const [name, entry] of file.tensors) {
    if (STATE_PREFIXES.some((p) => name.startsWith(p))) continue;
    const bn = bns.get(name);
    if (bn) {
      if (entry.dtype === 'I64' && entry.data.byteLength >= 8) {
        const n = Number(new DataView(entry.data.buffer, entry.data.byteOffset, 8).getBigInt64(0, true));
        writes.push(() => (bn.numBatchesTracked = n));
      }
      continue;
    }
    const t = state.get(name);
    if (!t) throw new Error(`${source}: unexpected tensor '${name}' for a ${what}`);
    if (entry.shape.join() !== t.shape.join()) throw new Error(`${source}: tensor '${name}' has shape ${shapeStr(entry.shape)}, expected ${shapeStr(t.shape)} for a ${what}`);
    const data = toFloat32(entry, name, source);
    checkFinite(data, name, source);
    writes.push(() => t.write(data));
    state.delete(name);
  }
  const missing = [...state.keys()];
  if (missing.length) throw new Error(`${source}: missing tensor '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
  for (const w of writes) w();
}
