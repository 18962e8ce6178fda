// Any module's state as safetensors with PyTorch state_dict names: save, and load with checks.
import { parseSafetensors, serializeSafetensors, toFloat32, type NamedSerializableTensor, type ParsedSafetensors } from '../io/safetensors.js';
import { BatchNorm2d } from './layers.js';
import type { Module } from './module.js';
import { shapeStr } from './tensor.js';

/** Prefixes of training state that loaders skip (checkpoints carry Adam moments and counters). */
export const STATE_PREFIXES = ['optim.', 'state.'];

/** Options of `loadModule` (names used in its error messages). */
export interface LoadModuleOptions {
  /** Names the file in errors (default 'safetensors'). */
  source?: string;
  /** Describes the module in errors about unexpected tensors (default: its class name). */
  what?: string;
}

/**
 * The module's parameters and buffers in state_dict order as safetensors bytes, with PyTorch's I64
 * `num_batches_tracked` after each BatchNorm's running_var, so torch's load_state_dict takes it.
 */
export async function saveModule(module: Module, opts: { metadata?: Record<string, string>; extra?: NamedSerializableTensor[] } = {}): Promise<Uint8Array> {
  const bns = new Map(module.namedModules().filter((e): e is [string, BatchNorm2d] => e[1] instanceof BatchNorm2d));
  const out: NamedSerializableTensor[] = [];
  for (const [name, t] of module.stateDict()) {
    const data = await t.read();
    checkFinite(data, name, 'module');
    out.push({ name, dtype: 'F32', shape: [...t.shape], data });
    if (name.endsWith('.running_var') || name === 'running_var') {
      const prefix = name.slice(0, -'running_var'.length).replace(/\.$/, '');
      const bn = bns.get(prefix);
      if (bn) out.push({ name: `${prefix ? `${prefix}.` : ''}num_batches_tracked`, dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(bn.numBatchesTracked)) });
    }
  }
  return serializeSafetensors([...out, ...(opts.extra ?? [])], { format: 'pt', ...opts.metadata });
}

/**
 * Copies safetensors bytes (or an already parsed file) into the module: every name must match a
 * parameter or buffer with the same shape and every parameter must be present; values must be
 * finite (and BatchNorm variances >= 0). Nothing is written unless everything checks out.
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
    if (entry.shape.join() !== t.shape.join()) throw new Error(`${source}: tensor '${name}' has shape ${shapeStr(entry.shape)}, expected ${shapeStr(t.shape)}`);
    const data = toFloat32(entry, name, source);
    checkFinite(data, name, source);
    if (name.endsWith('running_var')) {
      const neg = data.findIndex((v) => v < 0);
      if (neg >= 0) throw new Error(`${source}: tensor '${name}' has a negative variance (${data[neg]}) at index ${neg}`);
    }
    writes.push(() => t.write(data));
    state.delete(name);
  }
  const missing = [...state.keys()];
  if (missing.length) throw new Error(`${source}: missing tensor '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
  for (const w of writes) w();
}

/** Throws naming the tensor and the first non-finite value's index. */
export function checkFinite(data: ArrayLike<number>, name: string, source: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${source}: tensor '${name}' has a non-finite value (${data[i]}) at index ${i}`);
  }
}
