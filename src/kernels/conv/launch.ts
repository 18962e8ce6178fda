// What the direct and Winograd conv launches share: activation codes, the output with its bias/epilogue checks, and the batch windows each launch binds.
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
  epilogue: { affine: Tensor; residual?: Tensor | null } | null;
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
