// Winograd F(2x2,3x3) forward/dgrad for stride-1 3x3 convs (dilated and multi-branch too): weight transform per call, then one kernel per branch.
import code from '../../../shaders/conv2d_winograd.wgsl';
import { Tensor, shapeStr } from '../../core/tensor.js';
import { batchGroups, checkFits, perImage, windowOf } from '../windows.js';
import { grid } from '../util.js';
import { winogradTiles as tiles, type ConvTileConfig } from './config.js';
import type { Activation } from './geometry.js';
import { packWeights } from './pack.js';

export const ACT = { none: 0, relu: 1, leakyRelu: 2 } as const;
export const ACT_PRELU = 3; // slopes from the affine epilogue's third block

/** Per-branch padding and dilation as the caller's conv sees them (forward orientation). */
export interface WinogradBranch { ph: number; pw: number; dh: number; dw: number }

/** The pass as forward.ts describes it (kernel geometry: input operand [N, Cin, Hi, Wi] -> output [N, M, Hq, Wq]). */
export interface WinogradRun {
  op: string;
  input: Tensor;
  weights: Tensor[];
  fuse: Tensor | null;
  branches: WinogradBranch[];
  transposed: boolean;
  Cin: number; Hi: number; Wi: number; M: number; Hq: number; Wq: number;
  bias: Tensor | null;
  act: Activation;
  alpha: number;
  epilogue: { affine: Tensor; prelu: boolean } | null;
  cfg: ConvTileConfig;
}

export function runWinograd(r: WinogradRun): Tensor {
  const e = r.input.engine;
  const N = r.input.shape[0];
  const cfg = r.cfg;
  const MP = Math.ceil(r.M / cfg.tm) * cfg.tm;
  const out = Tensor.empty(e, [N, r.M, r.Hq, r.Wq]);
  if (out.size === 0) return out;
  if (r.bias && r.bias.size !== r.M) throw new Error(`${r.op}: bias ${shapeStr(r.bias.shape)} does not match ${r.M} output channels`);
  if (r.epilogue && (r.bias || r.epilogue.affine.size !== 3 * r.M)) throw new Error(`${r.op}: an affine epilogue needs ${3 * r.M} values and no bias`);
  // U[b][c][e][m]: the packed (fused, transposed for dgrad) weights, then G g G^T (flipped for dgrad).
  const packed = packWeights(r.weights, r.transposed, MP, r.op, r.fuse);
  const NB = r.branches.length;
  const total = NB * r.Cin * MP;
  checkFits(e, r.op, 'transformed weight', [NB, r.Cin, 16, MP], total * 16);
  const U = Tensor.empty(e, [total * 16]);
  e.dispatch({
    label: `${r.op}.winograd.transform`,
    code,
    entry: 'transform',
    uniforms: { total, MP, flip: r.transposed ? 1 : 0 },
    bindings: [packed.binding(), U.binding()],
    workgroups: grid(e, Math.ceil(total / 64)),
  });
  const inImg = r.Cin * r.Hi * r.Wi;
  const outImg = r.M * r.Hq * r.Wq;
  const groups = batchGroups(e, r.op, N, [perImage(r.transposed ? 'dy' : 'x', r.input, inImg), perImage(r.transposed ? 'dx' : 'y', out, outImg)]);
  for (const [n0, n1] of groups) {
    const single = groups.length === 1;
    const xin = single ? { binding: r.input.binding(), off: 0 } : windowOf(r.input, n0 * inImg, (n1 - n0) * inImg);
    const yout = single ? { binding: out.binding(), off: 0 } : windowOf(out, n0 * outImg, (n1 - n0) * outImg);
    r.branches.forEach((b, k) => {
      const TR = tiles(r.Hq, b.dh);
      const TC = tiles(r.Wq, b.dw);
      e.dispatch({
        label: `${r.op}.winograd`,
        code,
        entry: 'winograd',
        constants: { WG_X: cfg.wgX, TM: cfg.tm, TT: cfg.tn },
        uniforms: {
          Ci: r.Cin, Hi: r.Hi, Wi: r.Wi, Co: r.M, Hq: r.Hq, Wq: r.Wq, CoP: MP, uOff: k * r.Cin * 16 * MP,
          xOff: xin.off, yOff: yout.off, TR, TC,
          // Dgrad: the flipped kernel's padding is d*(k-1) - pad.
          ph: r.transposed ? 2 * b.dh - b.ph : b.ph, pw: r.transposed ? 2 * b.dw - b.pw : b.pw, dh: b.dh, dw: b.dw,
          alpha: r.alpha, act: r.epilogue?.prelu ? ACT_PRELU : ACT[r.act], hasBias: r.bias ? 1 : 0, affine: r.epilogue ? 1 : 0,
          accumulate: k > 0 ? 1 : 0, epilogue: k === NB - 1 ? 1 : 0,
        },
        bindings: [xin.binding, U.binding(), (r.epilogue?.affine ?? r.bias ?? U).binding(), yout.binding],
        workgroups: [MP / cfg.tm, Math.ceil((TR * TC) / (cfg.wgX * cfg.tn)), n1 - n0],
      });
    });
  }
  packed.dispose();
  U.dispose();
  return out;
}
