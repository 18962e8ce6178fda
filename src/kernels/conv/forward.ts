// Conv forward and input gradient (dgrad), single and multi-branch: direct kernels over packed weights (register, workgroup-memory or vec4-row tiles), or Winograd (conv/winograd.ts) when the config says so.
import code from '../../../shaders/conv2d.wgsl';
import subgroupCode from '../../../shaders/conv2d_subgroup.wgsl';
import { Tensor, type Shape } from '../../core/tensor.js';
import { convConfig, subgroupShare, type ConvTileConfig } from './config.js';
import { branchGeometry, checkDy, geometry, type Activation, type Conv2dParams, type ConvBranch } from './geometry.js';
import { packWeights } from './pack.js';
import { ACT, ACT_PRELU, convLaunch, packedFor, type ConvEpilogue } from './launch.js';
import { runWinograd } from './winograd.js';

export type { ConvEpilogue };

export interface ConvForwardOptions extends Conv2dParams {
  activation?: Activation;
  epilogue?: ConvEpilogue;
  /** Slope of leakyRelu for negative inputs (default 0.01). */
  negativeSlope?: number;
  config?: ConvTileConfig;
}

export interface ConvBackwardOptions extends Conv2dParams {
  config?: ConvTileConfig;
}


interface ConvRun {
  op: string;
  input: Tensor;
  /** Per-branch OIHW weights (same shape). */
  weights: Tensor[];
  /** A 1x1 fuse weight each branch is composed with (multiDilationConv), or null. */
  fuse: Tensor | null;
  /** Per-branch padding/dilation. */
  branches: Array<{ ph: number; pw: number; dh: number; dw: number }>;
  transposed: boolean;
  /** Kernel geometry: input operand [N, Cin, Hi, Wi] -> output [N, M, Hq, Wq]. */
  Cin: number; Hi: number; Wi: number; M: number; Hq: number; Wq: number; KH: number; KW: number;
  sh: number; sw: number;
  bias: Tensor | null;
  act: Activation;
  alpha: number;
  epilogue: ConvEpilogue | null;
  cfg: ConvTileConfig;
}

function runConv(r: ConvRun): Tensor {
  if (r.branches.length > 4) throw new Error(`${r.op}: at most 4 branches, got ${r.branches.length}`);
  // convConfig only hands out Winograd configs for stride-1 3x3 passes.
  if (r.cfg.algo === 'winograd') return runWinograd(r);
  const e = r.input.engine;
  const cfg = r.cfg;
  const rows = cfg.algo === 'vec4';
  const tileM = cfg.smem ? cfg.wgY * cfg.tm : cfg.tm;
  const MP = Math.ceil(r.M / tileM) * tileM;
  const { out, windows } = convLaunch(r);
  if (windows.length === 0) return out;
  // Branches of a stride-1 conv with an odd kernel all read the same pixel at their centre tap
  // (their outputs have one size): that tap is packed once, summed (not on workgroup-memory tiles,
  // whose reduction runs over packed rows without a tap loop).
  const merge = r.branches.length > 1 && !cfg.smem && r.sh === 1 && r.sw === 1 && r.KH % 2 === 1 && r.KW % 2 === 1;
  const { packed, owned } = packedFor(r, `direct:${MP}:${r.transposed}:${merge}`, () => packWeights(r.weights, r.transposed, MP, r.op, r.fuse, merge));
  const vec = (f: (b: { ph: number; pw: number; dh: number; dw: number }) => number) => [0, 1, 2, 3].map((i) => (r.branches[i] ? f(r.branches[i]) : 0));
  const sgn = r.transposed ? -1 : 1;
  const constants: Record<string, number> = {
    WG_X: cfg.wgX, WG_Y: cfg.wgY, TM: cfg.tm, TN: cfg.tn, BK: cfg.bk, SMEM: cfg.smem ? 1 : 0,
    SA: cfg.smem ? cfg.bk * cfg.wgY * cfg.tm : 1, SB: cfg.smem ? cfg.bk * cfg.wgX * cfg.tn : 1,
    DIV: r.transposed && (r.sh > 1 || r.sw > 1) ? 1 : 0,
    // The 1x1 fast path: output pixel q reads input pixel q (forward and dgrad alike).
    POINTWISE: r.KH === 1 && r.KW === 1 && r.sh === 1 && r.sw === 1 && r.branches.every((b) => b.ph === 0 && b.pw === 0) && r.Hi === r.Hq && r.Wi === r.Wq ? 1 : 0,
  };
  if (cfg.subgroups) constants.SG = subgroupShare(e);
  // Workgroups over pixels: vec4 rows cover ceil(Wq / tn) invocations per output row, 1 per lane.
  const pixelGroups = rows ? Math.ceil((r.Hq * Math.ceil(r.Wq / cfg.tn)) / cfg.wgX) : Math.ceil((r.Hq * r.Wq) / (cfg.wgX * cfg.tn));
  for (const { n0, n1, xin, yout, res } of windows) {
    e.dispatch({
      label: rows ? `${r.op}.vec4` : cfg.subgroups ? `${r.op}.subgroups` : r.op,
      code: cfg.subgroups ? subgroupCode : code,
      entry: rows ? 'conv_rows' : 'conv',
      constants,
      uniforms: {
        Ci: r.Cin, Hi: r.Hi, Wi: r.Wi, Co: r.M, Hq: r.Hq, Wq: r.Wq, KH: r.KH, KW: r.KW,
        CoP: MP, NB: r.branches.length, xOff: xin.off, yOff: yout.off,
        sh: r.transposed ? 1 : r.sh, sw: r.transposed ? 1 : r.sw, divh: r.transposed ? r.sh : 1, divw: r.transposed ? r.sw : 1,
        ph: vec((b) => sgn * b.ph), pw: vec((b) => sgn * b.pw), dh: vec((b) => sgn * b.dh), dw: vec((b) => sgn * b.dw),
        alpha: r.alpha, act: r.epilogue?.prelu ? ACT_PRELU : ACT[r.act], hasBias: r.bias ? 1 : 0, affine: r.epilogue ? 1 : 0,
        residual: res ? 1 : 0, rOff: res?.off ?? 0, skipTap: merge ? (r.KH * r.KW - 1) / 2 : 0xffffffff,
      },
      bindings: [xin.binding, packed.binding(), (r.epilogue?.affine ?? r.bias ?? packed).binding(), yout.binding, (res ?? xin).binding],
      workgroups: [Math.ceil(r.M / tileM), pixelGroups, n1 - n0],
    });
  }
  if (owned) packed.dispose();
  return out;
}

/** y = act(conv2d(x, w) + bias): x [N,Ci,H,W], w [Co,Ci,KH,KW], bias [Co] or null. */
export function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvForwardOptions = {}): Tensor {
  const g = geometry('conv2d', x.shape, w.shape, opts);
  return runConv({
    op: 'conv2d.fwd', input: x, weights: [w], fuse: null, branches: [{ ph: g.ph, pw: g.pw, dh: g.dh, dw: g.dw }], transposed: false,
    Cin: g.Ci, Hi: g.H, Wi: g.W, M: g.Co, Hq: g.Ho, Wq: g.Wo, KH: g.KH, KW: g.KW, sh: g.sh, sw: g.sw,
    bias, act: opts.activation ?? 'none', alpha: opts.negativeSlope ?? 0.01, epilogue: opts.epilogue ?? null, cfg: convConfig(x.engine, 'fwd', g, opts.config),
  });
}

/** dx of conv2d: dy [N,Co,Ho,Wo], w [Co,Ci,KH,KW] -> [N,Ci,H,W] (xShape). */
export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: Shape, opts: ConvBackwardOptions = {}): Tensor {
  const g = geometry('conv2d.dgrad', xShape, w.shape, opts);
  checkDy('conv2d.dgrad', dy, g);
  return runConv({
    op: 'conv2d.dgrad', input: dy, weights: [w], fuse: null, branches: [{ ph: g.ph, pw: g.pw, dh: g.dh, dw: g.dw }], transposed: true,
    Cin: g.Co, Hi: g.Ho, Wi: g.Wo, M: g.Ci, Hq: g.H, Wq: g.W, KH: g.KH, KW: g.KW, sh: g.sh, sw: g.sw,
    bias: null, act: 'none', alpha: 0, epilogue: null, cfg: convConfig(dy.engine, 'dgrad', g, opts.config),
  });
}

export interface MultiConvOptions {
  /**
   * A 1x1 weight [Cout, sum C_k, 1, 1] applied to the channel concat of the branches; it is
   * folded into the branch weights (W'_k = Wf_k . W_k) when they are packed.
   */
  fuse?: Tensor | null;
  activation?: Activation;
  negativeSlope?: number;
  epilogue?: ConvEpilogue;
  config?: ConvTileConfig;
}

/** sum_b conv2d(x, W_b; pad_b, dil_b) (+ bias, activation) in one kernel (stride 1). */
export function conv2dMultiForward(x: Tensor, branches: ConvBranch[], bias: Tensor | null, opts: MultiConvOptions = {}): Tensor {
  const fuse = opts.fuse ?? null;
  const gs = branchGeometry('multiDilationConv', x.shape, branches, fuse);
  const g = gs[0];
  return runConv({
    op: 'multiDilationConv.fwd', input: x, weights: branches.map((b) => b.weight), fuse, branches: gs.map((q) => ({ ph: q.ph, pw: q.pw, dh: q.dh, dw: q.dw })),
    transposed: false, Cin: g.Ci, Hi: g.H, Wi: g.W, M: g.Co, Hq: g.Ho, Wq: g.Wo, KH: g.KH, KW: g.KW, sh: 1, sw: 1,
    bias, act: opts.activation ?? 'none', alpha: opts.negativeSlope ?? 0.01, epilogue: opts.epilogue ?? null, cfg: convConfig(x.engine, 'fwd', g, opts.config, gs),
  });
}

/** dx of conv2dMultiForward: sum_b dgrad(dy, W'_b) in one kernel. */
export function conv2dMultiBackwardData(dy: Tensor, branches: ConvBranch[], xShape: Shape, opts: { fuse?: Tensor | null; config?: ConvTileConfig } = {}): Tensor {
  const fuse = opts.fuse ?? null;
  const gs = branchGeometry('multiDilationConv', xShape, branches, fuse);
  const g = gs[0];
  checkDy('multiDilationConv.dgrad', dy, g);
  return runConv({
    op: 'multiDilationConv.dgrad', input: dy, weights: branches.map((b) => b.weight), fuse, branches: gs.map((q) => ({ ph: q.ph, pw: q.pw, dh: q.dh, dw: q.dw })),
    transposed: true, Cin: g.Co, Hi: g.Ho, Wi: g.Wo, M: g.Ci, Hq: g.H, Wq: g.W, KH: g.KH, KW: g.KW, sh: 1, sw: 1,
    bias: null, act: 'none', alpha: 0, epilogue: null, cfg: convConfig(dy.engine, 'dgrad', g, opts.config, gs),
  });
}
