// Checkpoints (contract): weights + optim.<param>.m/.v + state.step, state.rng, state.epoch_cursor,
// and state.milestones (the run's lr schedule, so a resumed run keeps it).
import type { NamedSerializableTensor, ParsedSafetensors } from '../io/safetensors.js';
import { toFloat32 } from '../io/safetensors.js';
import type { Module } from '../graph/module.js';
import { saveModule } from '../graph/state.js';
import { DrdNet } from '../model/drdnet.js';
import { checkFinite, weightsToBytes } from '../model/weights.js';
import type { Adam } from './optim.js';

/** Whatever the trainer needs besides weights and Adam moments to continue bit for bit. */
export interface TrainState {
  step: number;
  /** Concatenated generator states (4 words each). */
  rng: Uint32Array;
  /** Data order: sampler states flattened to integers. */
  epochCursor: number[];
  /** Steps where the learning rate decays; absent in checkpoints written before they were stored. */
  milestones?: number[];
}

/** Whether a parsed file carries Adam moments (a checkpoint), not weights alone. */
export function hasOptimizerState(file: ParsedSafetensors): boolean {
  return [...file.tensors.keys()].some((k) => k.startsWith('optim.'));
}

const i64 = (values: ArrayLike<number>): BigInt64Array => BigInt64Array.from(Array.from(values, (v) => BigInt(v)));

/** A checkpoint of any module (DrdNet's config goes into the metadata, as in weights files). */
export async function checkpointBytes(model: Module, opt: Adam, state: TrainState): Promise<Uint8Array> {
  const extra: NamedSerializableTensor[] = [];
  const names = model.namedParameters().map(([n]) => n);
  for (let i = 0; i < names.length; i++) {
    extra.push({ name: `optim.${names[i]}.m`, dtype: 'F32', shape: [...opt.m[i].shape], data: await opt.m[i].read() });
    extra.push({ name: `optim.${names[i]}.v`, dtype: 'F32', shape: [...opt.v[i].shape], data: await opt.v[i].read() });
  }
  extra.push({ name: 'state.step', dtype: 'I64', shape: [1], data: i64([state.step]) });
  extra.push({ name: 'state.rng', dtype: 'I64', shape: [state.rng.length], data: i64(state.rng) });
  extra.push({ name: 'state.epoch_cursor', dtype: 'I64', shape: [state.epochCursor.length], data: i64(state.epochCursor) });
  if (state.milestones) extra.push({ name: 'state.milestones', dtype: 'I64', shape: [state.milestones.length], data: i64(state.milestones) });
  return model instanceof DrdNet ? weightsToBytes(model, extra) : saveModule(model, { extra });
}

function ints(file: ParsedSafetensors, name: string, source: string): number[] {
  const e = file.tensors.get(name);
  if (!e) throw new Error(`${source}: not a training checkpoint (missing '${name}')`);
  if (e.dtype !== 'I64') throw new Error(`${source}: '${name}' must be I64, got ${e.dtype}`);
  const view = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  return Array.from({ length: e.data.byteLength / 8 }, (_, i) => Number(view.getBigInt64(8 * i, true)));
}

/** Restores Adam moments and returns the trainer state (weights are loaded separately). */
export function restoreCheckpoint(file: ParsedSafetensors, model: Module, opt: Adam, source: string): TrainState {
  const names = model.namedParameters().map(([n]) => n);
  names.forEach((n, i) => {
    for (const [key, t] of [[`optim.${n}.m`, opt.m[i]], [`optim.${n}.v`, opt.v[i]]] as const) {
      const e = file.tensors.get(key);
      if (!e) throw new Error(`${source}: missing tensor '${key}'`);
      if (e.shape.join() !== t.shape.join()) throw new Error(`${source}: tensor '${key}' has shape [${e.shape}], expected [${t.shape}]`);
      const values = toFloat32(e, key, source);
      checkFinite(values, key, source, { maxAbs: Infinity, nonNegative: key.endsWith('.v') }); // a NaN or negative second moment poisons every later step
      t.write(values);
    }
  });
  const step = checkpointStep(file, source);
  opt.stepCount = step;
  return { step, rng: Uint32Array.from(ints(file, 'state.rng', source)), epochCursor: ints(file, 'state.epoch_cursor', source), milestones: checkpointMilestones(file, source) };
}

/** The step a checkpoint was saved at (read without restoring anything). */
export function checkpointStep(file: ParsedSafetensors, source: string): number {
  return ints(file, 'state.step', source)[0];
}

/** The lr milestones a checkpoint's run used, or undefined for a checkpoint without them. */
export function checkpointMilestones(file: ParsedSafetensors, source: string): number[] | undefined {
  return file.tensors.has('state.milestones') ? ints(file, 'state.milestones', source) : undefined;
}
