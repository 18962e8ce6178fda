// Semi-DRDNet weights in safetensors: PyTorch DRD-Net names, architecture read from shapes and
// from the "semi_drdnet.config" metadata, strict validation that names the offending tensor.
import type { Engine } from '../gpu/runtime.js';
import { shapeStr } from '../graph/tensor.js';
import { parseSafetensors, serializeSafetensors, toFloat32, type NamedSerializableTensor, type ParsedSafetensors } from '../io/safetensors.js';
import { type DrdConfig, makeConfig, validateConfig } from './config.js';
import { DrdNet } from './drdnet.js';

export const CONFIG_KEY = 'semi_drdnet.config';
/** Prefixes of training state that the weights loader skips (checkpoints carry them). */
const STATE_PREFIXES = ['optim.', 'state.'];

/**
 * Largest magnitude a weight, BN statistic or Adam moment may have. Trained values sit far below
 * it; above it (3e38 is still finite) a forward pass overflows float32 into Inf and NaN.
 */
export const MAX_ABS_VALUE = 1e6;

/** Weights (or training state) with NaN, Inf, absurd or impossible values. */
export class NonFiniteWeightsError extends Error {}

/**
 * Throws one line naming the tensor when a value is NaN, infinite or beyond `maxAbs`, or when the
 * tensor is a variance or Adam second moment (names ending .running_var, .v) with a value below 0.
 */
export function checkFinite(values: Float32Array, name: string, source: string, maxAbs = MAX_ABS_VALUE): void {
  const nonNegative = name.endsWith('.running_var') || name.endsWith('.v');
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(Math.abs(v) <= maxAbs) || (nonNegative && v < 0)) {
      const what = Number.isNaN(v) ? 'NaN' : !Number.isFinite(v) ? String(v) : nonNegative && v < 0 ? `the negative value ${v}` : `${v}, beyond +-${maxAbs}`;
      throw new NonFiniteWeightsError(`${source}: tensor '${name}' holds ${what} at index ${i} (broken or diverged weights)`);
    }
  }
}

function maxIndex(names: string[], re: RegExp): number {
  let n = 0;
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** Reads the architecture from tensor shapes, and what shapes cannot show from the metadata. */
export function configFromWeights(file: ParsedSafetensors, source: string): DrdConfig {
  const names = [...file.tensors.keys()];
  const head = file.tensors.get('rain_net.0.rain_net_head.0.weight');
  if (!head) throw new Error(`${source}: missing tensor 'rain_net.0.rain_net_head.0.weight' (not a DRD-Net weights file?)`);
  if (head.shape.length !== 4) throw new Error(`${source}: tensor 'rain_net.0.rain_net_head.0.weight' has shape ${shapeStr(head.shape)}, expected [C,3,3,3]`);
  let meta: Partial<DrdConfig> = {};
  const raw = file.metadata[CONFIG_KEY];
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new Error(`${source}: metadata '${CONFIG_KEY}' is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(`${source}: metadata '${CONFIG_KEY}' must be a JSON object, got ${JSON.stringify(parsed)}`);
    }
    meta = parsed as Partial<DrdConfig>;
  }
  const channels = head.shape[0];
  const se = file.tensors.get('rain_net.0.rain_residual_blocks.0.rain_residual_block_body.0.weight');
  const config = makeConfig(channels, maxIndex(names, /^rain_net\.0\.rain_residual_blocks\.(\d+)\./), maxIndex(names, /^back_net\.0\.back_residual_blocks\.(\d+)\./), {
    detail: names.some((n) => n.startsWith('back_net.')),
    se: meta.se ?? (se !== undefined || !names.some((n) => n.includes('rain_residual_blocks.'))),
    seHidden: se?.shape[0] ?? meta.seHidden ?? Math.max(1, Math.floor(channels / 16)),
    dilations: meta.dilations ?? [1, 3, 5],
    detailInput: meta.detailInput ?? 'O',
    preset: meta.preset,
  });
  if (config.detail && !meta.dilations) {
    // conv1..convK are the dilated branches and conv{K+1} the fuse; maxIndex gives K + 2.
    const branches = maxIndex(names, /^back_net\.0\.back_residual_blocks\.0\.back_residual_block_body\.0\.conv(\d+)\./) - 2;
    if (branches > 0 && branches !== config.dilations.length) {
      throw new Error(`${source}: detail blocks have ${branches} dilated branches but no '${CONFIG_KEY}' metadata gives their dilations`);
    }
  }
  validateConfig(config);
  return config;
}

/** Copies every tensor of the file into the model, checking names and shapes both ways. */
export function assignWeights(model: DrdNet, file: ParsedSafetensors, source: string): void {
  const state = new Map(model.stateDict());
  const bns = new Map(model.batchNorms().map(([p, bn]) => [`${p}.num_batches_tracked`, bn]));
  for (const [name, entry] of file.tensors) {
    if (STATE_PREFIXES.some((p) => name.startsWith(p))) continue;
    const bn = bns.get(name);
    if (bn) {
      if (entry.dtype === 'I64' && entry.data.byteLength >= 8) {
        bn.numBatchesTracked = Number(new DataView(entry.data.buffer, entry.data.byteOffset, 8).getBigInt64(0, true));
      }
      continue;
    }
    const t = state.get(name);
    if (!t) throw new Error(`${source}: unexpected tensor '${name}' for a ${describe(model.config)} model`);
    if (entry.shape.join() !== t.shape.join()) {
      throw new Error(`${source}: tensor '${name}' has shape ${shapeStr(entry.shape)}, expected ${shapeStr(t.shape)}`);
    }
    const values = toFloat32(entry, name, source);
    checkFinite(values, name, source);
    t.write(values);
    state.delete(name);
  }
  const missing = [...state.keys()];
  if (missing.length) throw new Error(`${source}: missing tensor '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
}

export function describe(c: DrdConfig): string {
  return `${c.preset ? `${c.preset} ` : ''}${c.channels}-channel ${c.rainBlocks}+${c.detail ? c.detailBlocks : 0}-block`;
}

/** Builds a model from safetensors bytes. */
export function loadModel(engine: Engine, bytes: Uint8Array, source: string): { model: DrdNet; file: ParsedSafetensors } {
  const file = parseSafetensors(bytes, source);
  const model = new DrdNet(engine, configFromWeights(file, source));
  try {
    assignWeights(model, file, source);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, file };
}

/**
 * The model's tensors in PyTorch state_dict order (with I64 num_batches_tracked), as safetensors.
 * Every float tensor, `extra` ones included, is checked first: a non-finite model is never saved.
 */
export async function weightsToBytes(model: DrdNet, extra: NamedSerializableTensor[] = []): Promise<Uint8Array> {
  const bns = new Map(model.batchNorms());
  const out: NamedSerializableTensor[] = [];
  for (const [name, t] of model.stateDict()) {
    const data = await t.read();
    checkFinite(data, name, 'cannot save weights');
    out.push({ name, dtype: 'F32', shape: [...t.shape], data });
    if (name.endsWith('.running_var')) {
      const bn = bns.get(name.slice(0, -'.running_var'.length));
      if (bn) out.push({ name: name.replace(/running_var$/, 'num_batches_tracked'), dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(bn.numBatchesTracked)) });
    }
  }
  // Adam moments may be large (v holds squared gradients) but never non-finite.
  for (const t of extra) if (t.data instanceof Float32Array) checkFinite(t.data, t.name, 'cannot save weights', Infinity);
  return serializeSafetensors([...out, ...extra], { [CONFIG_KEY]: JSON.stringify(model.config), format: 'pt' });
}
