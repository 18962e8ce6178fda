// Winograd F(2x2,3x3) forward/dgrad for stride-1 3x3 convs (dilated and multi-branch too): weight transform per call, then one kernel per branch.
import code from '../../../shaders/conv2d_winograd.wgsl';
import { Tensor } from '../../core/tensor.js';
import { checkFits } from '../windows.js';
import { grid } from '../util.js';
import { winogradTiles as tiles, type ConvTileConfig } from './config.js';
import type { Activation } from './geometry.js';
import { ACT, ACT_PRELU, convLaunch, packedFor, type ConvEpilogue } from './launch.js';
import { packWeights } from './pack.js';

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
  epilogue: ConvEpilogue | null;
  cfg: ConvTileConfig;
}

export function runWinograd(r: WinogradRun): Tensor {
  const e = r.input.engine;
  const cfg = r.cfg;
  const MP = Math.ceil(r.M / cfg.tm) * cfg.tm;
  const { out, windows } = convLaunch(r);
  if (windows.length === 0) return out;
  const NB = r.branches.length;
  const { packed: U, owned } = packedFor(r, `winograd:${MP}:${r.transposed}`, () => transformed(r, MP));
  for (const { n0, n1, xin, yout, res } of windows) {
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
          accumulate: k > 0 ? 1 : 0, epilogue: k === NB - 1 ? 1 : 0, residual: res ? 1 : 0, rOff: res?.off ?? 0,
        },
        bindings: [xin.binding, U.binding(), (r.epilogue?.affine ?? r.bias ?? U).binding(), yout.binding, (res ?? xin).binding],
        workgroups: [MP / cfg.tm, Math.ceil((TR * TC) / (cfg.wgX * cfg.tn)), n1 - n0],
      });
    });
  }
  if (owned) U.dispose();
  return out;
}

/** U[b][c][e][m]: the packed (fused, transposed for dgrad) weights, then G g G^T (flipped for dgrad). */
function transformed(r: WinogradRun, MP: number): Tensor {
  const e = r.input.engine;
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
  packed.dispose();
  return U;
}
