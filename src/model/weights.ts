// Semi-DRDNet weights in safetensors: PyTorch DRD-Net names, architecture read from shapes and
// from the "semi_drdnet.config" metadata, strict validation that names the offending tensor.
import type { Engine } from '../gpu/runtime.js';
import { loadModule, saveModule } from '../graph/state.js';
import { shapeStr } from '../core/tensor.js';
import { parseSafetensors, type NamedSerializableTensor, type ParsedSafetensors } from '../io/safetensors.js';
import { type DrdConfig, makeConfig, validateConfig } from './config.js';
import { DrdNet } from './drdnet.js';

export const CONFIG_KEY = 'semi_drdnet.config';

export { checkFinite, MAX_ABS_VALUE, NonFiniteWeightsError } from '../graph/state.js';

function maxIndex(names: string[], re: RegExp): number {
  let n = 0;
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** The first conv of the rain branch: its output channels are the model's width. */
const HEAD = 'rain_net.0.rain_net_head.0.weight';

/** Reads the architecture from tensor shapes, and what shapes cannot show from the metadata. */
export function configFromWeights(file: ParsedSafetensors, source: string): DrdConfig {
  const names = [...file.tensors.keys()];
  const head = file.tensors.get(HEAD);
  if (!head) throw new Error(`${source}: missing tensor '${HEAD}' (not a DRD-Net weights file?)`);
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
  // The head (3x3 conv from RGB) sets the width, so it is checked on its own first: a misshaped
  // head would otherwise build a model of the wrong width, and the message would then blame
  // tensors that are fine. The metadata's width, where it gives one, is the expected one.
  const given = typeof meta.channels === 'number' ? meta.channels : undefined;
  const channels = given ?? head.shape[0];
  if (head.shape.length !== 4 || head.shape[0] !== channels || head.shape[1] !== 3 || head.shape[2] !== 3 || head.shape[3] !== 3) {
    const expected = given === undefined ? '[C,3,3,3] (C channels from RGB)' : `[${given},3,3,3] (metadata '${CONFIG_KEY}' gives ${given} channels)`;
    throw new Error(`${source}: tensor '${HEAD}' has shape ${shapeStr(head.shape)}, expected ${expected}`);
  }
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

/** Copies every tensor of the file into the model, checking names, shapes and values (nothing written on error). */
export function assignWeights(model: DrdNet, file: ParsedSafetensors, source: string): void {
  // The architecture itself comes from the file (configFromWeights), so say which tensors set it:
  // with one odd tensor among many, the message then points at the odd one, not at the rest.
  const what = `${describe(model.config)} model (channels from '${HEAD}', blocks from the tensor names)`;
  loadModule(model, file, { source, what });
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
 * The model's tensors in PyTorch state_dict order (with I64 num_batches_tracked) and its config in
 * the metadata, as safetensors. Every value, `extra` included, is checked first (`saveModule`).
 */
export function weightsToBytes(model: DrdNet, extra: NamedSerializableTensor[] = []): Promise<Uint8Array> {
  return saveModule(model, { extra, metadata: { [CONFIG_KEY]: JSON.stringify(model.config) } });
}
