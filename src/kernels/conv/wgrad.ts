// Conv weight and bias gradients: split-K partial sums over row splits (per batch group), then a reduction pass.
import wgradCode from '../../../shaders/conv2d_wgrad.wgsl';
import wgradSubgroupCode from '../../../shaders/conv2d_wgrad_subgroup.wgsl';
import type { BufferBinding } from '../../gpu/runtime.js';
import { Tensor, shapeStr, type Shape } from '../../core/tensor.js';
import { grid } from '../util.js';
import { batchGroups, checkFits, perImage, windowOf } from '../windows.js';
import { subgroupShare, wgradConfig, type WgradTileConfig } from './config.js';
import { checkDy, geometry, type Conv2dParams } from './geometry.js';

export interface WgradOptions extends Conv2dParams {
  config?: WgradTileConfig;
}

/** Splits per batch group so that the total is about `want` and each covers at most `maxPix` pixels. */
function planSplits(groups: Array<[number, number]>, Ho: number, Wo: number, want: number, maxPix: number, maxTotal: number, maxZ: number) {
  const N = groups.reduce((a, [n0, n1]) => a + n1 - n0, 0);
  const plans = groups.map(([n0, n1]) => {
    const rows = (n1 - n0) * Ho;
    const byTarget = Math.ceil((want * (n1 - n0)) / N);
    const byLength = Math.ceil((rows * Wo) / maxPix);
    let splits = Math.min(rows, maxZ, Math.max(1, byTarget, byLength));
    const rowsPerSplit = Math.ceil(rows / splits);
    splits = Math.ceil(rows / rowsPerSplit);
    return { n0, n1, rows, rowsPerSplit, splits, first: 0 };
  });
  let total = 0;
  for (const p of plans) {
    p.first = total;
    total += p.splits;
  }
  if (total > maxTotal) {
    // Partials would not fit one binding: fewer, longer splits (still one per group at least).
    const scale = maxTotal / total;
    total = 0;
    for (const p of plans) {
      const s = Math.max(1, Math.floor(p.splits * scale));
      p.rowsPerSplit = Math.ceil(p.rows / s);
      p.splits = Math.ceil(p.rows / p.rowsPerSplit);
      p.first = total;
      total += p.splits;
    }
  }
  return { plans, total };
}

/** Sums partials [rows, len] over the rows (the second pass of split-K), shaped as `shape`. */
function sumSplits(part: Tensor, rows: number, shape: Shape): Tensor {
  if (rows === 1) {
    const v = part.view(shape);
    part.dispose();
    return v;
  }
  const e = part.engine;
  const len = part.size / rows;
  const out = Tensor.empty(e, shape);
  e.dispatch({
    label: 'conv2d.sum_splits',
    code: wgradCode,
    entry: 'sum_parts',
    uniforms: { len, rows },
    bindings: [part.binding(), out.binding()],
    workgroups: grid(e, Math.ceil(len / 64)),
  });
  part.dispose();
  return out;
}

/** dW of conv2d: x [N,Ci,H,W], dy [N,Co,Ho,Wo] -> wShape [Co,Ci,KH,KW]. */
export function conv2dBackwardFilter(x: Tensor, dy: Tensor, wShape: Shape, opts: WgradOptions = {}): Tensor {
  return conv2dBackwardFilterMulti(x, dy, wShape, [opts], opts.config)[0];
}

/**
 * dW for several convolutions of the same x whose outputs share dy's shape (the branches of
 * multiDilationConv): one weight gradient per entry of `branches` (its stride/padding/dilation),
 * sharing the batch split and the NHWC copies of x and dy.
 */
export function conv2dBackwardFilterMulti(x: Tensor, dy: Tensor, wShape: Shape, branches: Conv2dParams[], config?: WgradTileConfig): Tensor[] {
  const op = 'conv2d.wgrad';
  const e = x.engine;
  const gs = branches.map((b) => geometry(op, x.shape, wShape, b));
  for (const g of gs) checkDy(op, dy, g);
  const g = gs[0];
  const KK = g.KH * g.KW;
  const len = g.Co * g.Ci * KK;
  let cfg = wgradConfig(e, g, config);
  if (cfg.kernel === 'pixels' && len * 4 * cfg.wgX > e.limits.maxStorageBufferBindingSize) {
    // One partial per lane would not fit a binding: the tiled kernel keeps one per split.
    cfg = { ...cfg, kernel: 'tiled', wgX: 8, wgY: 8, tm: 4, tn: 4, bk: 8 };
  }
  const tiled = cfg.kernel === 'tiled';
  // 'nhwc4' is 'nhwc' with named vec4 accumulators: the same copies, grid and splits.
  const nhwc = cfg.kernel === 'nhwc' || cfg.kernel === 'nhwc4';
  const xImg = g.Ci * g.H * g.W;
  const dyImg = g.Co * g.Ho * g.Wo;
  const CoP = Math.ceil(g.Co / cfg.tu) * cfg.tu;
  const tensors = [perImage('x', x, xImg), perImage('dy', dy, dyImg)];
  if (nhwc) tensors.push({ name: 'the NHWC copy of dy', shape: [g.N, g.Ho, g.Wo, CoP], elems: g.Ho * g.Wo * CoP, byteOffset: 0 });
  const groups = batchGroups(e, op, g.N, tensors);
  const ciTiles = Math.ceil(g.Ci / (nhwc ? cfg.wgX * cfg.tv : cfg.tv));
  const gx = tiled ? Math.ceil((g.Ci * KK) / (cfg.wgX * cfg.tn)) : ciTiles * KK;
  const gy = tiled ? Math.ceil(g.Co / (cfg.wgY * cfg.tm)) : Math.ceil(g.Co / cfg.tu);
  checkFits(e, op, 'dW', wShape, len);
  // The pixel-lane kernel leaves one partial per lane as well as per split.
  const perSplit = cfg.kernel === 'pixels' ? cfg.wgX : 1;
  const maxTotal = Math.max(1, Math.floor(e.limits.maxStorageBufferBindingSize / (len * 4 * perSplit)));
  const { plans, total } = planSplits(groups, g.Ho, g.Wo, Math.ceil(cfg.targetWorkgroups / (gx * gy)), cfg.maxSplitPixels, maxTotal, e.limits.maxComputeWorkgroupsPerDimension);
  const parts = gs.map(() => Tensor.empty(e, [total * perSplit, len]));
  const constants: Record<string, number> = tiled
    ? { WG_X: cfg.wgX, WG_Y: cfg.wgY, TM: cfg.tm, TN: cfg.tn, BK: cfg.bk, SA: cfg.bk * cfg.wgY * cfg.tm, SB: cfg.bk * cfg.wgX * cfg.tn }
    : { WG_X: cfg.wgX, TU: cfg.tu, TV: cfg.tv };
  if (cfg.subgroups) constants.SG = subgroupShare(e);
  for (const pl of plans) {
    const single = plans.length === 1;
    const imgs = pl.n1 - pl.n0;
    let xw = single ? { binding: x.binding(), off: 0 } : windowOf(x, pl.n0 * xImg, imgs * xImg);
    let dw = single ? { binding: dy.binding(), off: 0 } : windowOf(dy, pl.n0 * dyImg, imgs * dyImg);
    const temps: Tensor[] = [];
    if (nhwc) {
      // NHWC copies of this group: x as it is, dy padded to CoP channels (whole vec4 tiles).
      const xt = toNhwc(x, xw, g.Ci, g.H * g.W, g.Ci, imgs, op);
      const dyt = toNhwc(dy, dw, g.Co, g.Ho * g.Wo, CoP, imgs, op);
      temps.push(xt, dyt);
      xw = { binding: xt.binding(), off: 0 };
      dw = { binding: dyt.binding(), off: 0 };
    }
    gs.forEach((b, k) => {
      e.dispatch({
        label: cfg.subgroups ? `${op}.subgroups` : op,
        code: cfg.subgroups ? wgradSubgroupCode : wgradCode,
        entry: tiled ? 'wgrad_tiled' : cfg.kernel === 'nhwc4' ? 'wgrad_nhwc4' : nhwc ? 'wgrad_nhwc' : 'wgrad',
        constants,
        uniforms: {
          Ci: b.Ci, H: b.H, W: b.W, Co: b.Co, Ho: b.Ho, Wo: b.Wo, KH: b.KH, KW: b.KW,
          sh: b.sh, sw: b.sw, ph: b.ph, pw: b.pw, dh: b.dh, dw: b.dw, rows: pl.rows, rowsPerSplit: pl.rowsPerSplit,
          xOff: xw.off, dyOff: dw.off, partOff: pl.first * perSplit * len, ciTiles, CoP,
        },
        bindings: [xw.binding, dw.binding, parts[k].binding()],
        workgroups: [gx, gy, pl.splits],
      });
    });
    for (const t of temps) t.dispose();
  }
  return parts.map((part) => sumSplits(part, total * perSplit, wShape));
}

/** NHWC copy [imgs, HW, CP] of a window of an NCHW tensor (channels past C are zero). */
function toNhwc(src: Tensor, w: { binding: BufferBinding; off: number }, C: number, HW: number, CP: number, imgs: number, op: string): Tensor {
  const e = src.engine;
  checkFits(e, op, 'NHWC copy', [imgs, HW, CP], imgs * HW * CP);
  const out = Tensor.empty(e, [imgs, HW, CP]);
  const [gx, gy] = grid(e, Math.ceil(HW / 64));
  e.dispatch({
    label: `${op}.nhwc`,
    code: wgradCode,
    entry: 'to_nhwc',
    uniforms: { C, HW, CP, inOff: w.off },
    bindings: [w.binding, out.binding()],
    workgroups: [gx, gy, imgs],
  });
  return out;
}

/** Bias gradient: dy [N,C,H,W] summed over N, H, W -> [C] (split over rows, then reduced). */
export function conv2dBackwardBias(dy: Tensor): Tensor {
  const op = 'conv2d.bgrad';
  const e = dy.engine;
  if (dy.shape.length !== 4) throw new Error(`${op}: dy must be NCHW, got ${shapeStr(dy.shape)}`);
  const [N, C, Ho, Wo] = dy.shape;
  const img = C * Ho * Wo;
  const groups = batchGroups(e, op, N, [perImage('dy', dy, img)]);
  const maxTotal = Math.max(1, Math.floor(e.limits.maxStorageBufferBindingSize / (C * 4)));
  const { plans, total } = planSplits(groups, Ho, Wo, Math.ceil(256 / Math.max(1, C)), 1024, maxTotal, Infinity);
  const part = Tensor.empty(e, [total, C]);
  for (const pl of plans) {
    const single = plans.length === 1;
    const dw = single ? { binding: dy.binding(), off: 0 } : windowOf(dy, pl.n0 * img, (pl.n1 - pl.n0) * img);
    e.dispatch({
      label: op,
      code: wgradCode,
      entry: 'bias_grad',
      uniforms: { Co: C, Ho, Wo, rows: pl.rows, rowsPerSplit: pl.rowsPerSplit, dyOff: dw.off, partOff: pl.first * C },
      bindings: [dw.binding, part.binding()],
      workgroups: [Math.ceil((pl.splits * C) / 64)],
    });
  }
  return sumSplits(part, total, [C]);
}
