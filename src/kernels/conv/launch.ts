// What the direct and Winograd conv launches share: activation codes, the epilogue, the output with its bias/epilogue checks, the batch windows each launch binds, and cached packed weights.
import type { BufferBinding } from '../../gpu/runtime.js';
import { Tensor, shapeStr } from '../../core/tensor.js';
import { batchGroups, perImage, windowOf } from '../windows.js';

export const ACT = { none: 0, relu: 1, leakyRelu: 2 } as const;
export const ACT_PRELU = 3; // slopes from the affine epilogue's third block

/** The parts of a conv pass a launch needs to allocate and bind (kernel geometry: [N, Cin, Hi, Wi] -> [N, M, Hq, Wq]). */
export interface LaunchShape {
  op: string;
  input: Tensor;
  transposed: boolean;
  Cin: number; Hi: number; Wi: number; M: number; Hq: number; Wq: number;
  bias: Tensor | null;
  epilogue: ConvEpilogue | null;
}

/** One launch's batch slice [n0, n1) with its input and output bindings and offsets. */
export interface BatchWindow {
  n0: number;
  n1: number;
  xin: { binding: BufferBinding; off: number };
  yout: { binding: BufferBinding; off: number };
  /** The epilogue's residual slice (same offsets as the output's), or null. */
  res: { binding: BufferBinding; off: number } | null;
}

/**
 * The pass's output tensor and its batch windows (none when the output is empty), after checking
 * the bias or affine epilogue against the output channels (and a residual against the output's
 * shape). A batch past a binding's limit is split so each window fits.
 */
export function convLaunch(r: LaunchShape): { out: Tensor; windows: BatchWindow[] } {
  const e = r.input.engine;
  const N = r.input.shape[0];
  const out = Tensor.empty(e, [N, r.M, r.Hq, r.Wq]);
  if (out.size === 0) return { out, windows: [] };
  if (r.bias && r.bias.size !== r.M) throw new Error(`${r.op}: bias ${shapeStr(r.bias.shape)} does not match ${r.M} output channels`);
  if (r.epilogue && (r.bias || r.epilogue.affine.size !== 3 * r.M)) throw new Error(`${r.op}: an affine epilogue needs ${3 * r.M} values and no bias`);
  const res = r.epilogue?.residual ?? null;
  if (res && shapeStr(res.shape) !== shapeStr(out.shape)) throw new Error(`${r.op}: residual ${shapeStr(res.shape)} does not match the output ${shapeStr(out.shape)}`);
  const inImg = r.Cin * r.Hi * r.Wi;
  const outImg = r.M * r.Hq * r.Wq;
  const bound = [perImage(r.transposed ? 'dy' : 'x', r.input, inImg), perImage(r.transposed ? 'dx' : 'y', out, outImg)];
  const groups = batchGroups(e, r.op, N, res ? [...bound, perImage('residual', res, outImg)] : bound);
  const windows = groups.map(([n0, n1]) =>
    groups.length === 1
      ? { n0, n1, xin: { binding: r.input.binding(), off: 0 }, yout: { binding: out.binding(), off: 0 }, res: res && { binding: res.binding(), off: 0 } }
      : { n0, n1, xin: windowOf(r.input, n0 * inImg, (n1 - n0) * inImg), yout: windowOf(out, n0 * outImg, (n1 - n0) * outImg), res: res && windowOf(res, n0 * outImg, (n1 - n0) * outImg) },
  );
  return { out, windows };
}

/**
 * A per-channel affine epilogue from `foldAffine` (inference: BatchNorm and PReLU folded into the
 * conv): out = acc * scale + shift, then PReLU with its slopes when `prelu`, then + `residual`
 * when given (a skip connection, the output's shape). Replaces the bias.
 */
export interface ConvEpilogue {
  affine: Tensor;
  prelu: boolean;
  residual?: Tensor | null;
  /**
   * Packed (or Winograd-transformed) weights kept across calls while the weights stay fixed
   * (folded inference): filled on first use (kept out of tidy scopes), keyed by layout. Whoever
   * made the map disposes them.
   */
  packs?: Map<string, Tensor>;
}

/** The packed weights for this launch: from the epilogue's cache when it has one (not to be freed), else made now. */
export function packedFor(r: { epilogue: ConvEpilogue | null }, key: string, make: () => Tensor): { packed: Tensor; owned: boolean } {
  const cache = r.epilogue?.packs;
  if (!cache) return { packed: make(), owned: true };
  let packed = cache.get(key);
  if (!packed) cache.set(key, (packed = make().keep())); // outlives the caller's tidy scope
  return { packed, owned: false };
}
