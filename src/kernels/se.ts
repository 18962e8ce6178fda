// Squeeze-and-excitation kernels: pool -> C->hidden->C MLP gate -> channel scale, forward and backward in two dispatches each.
import code from '../../shaders/se.wgsl';
import { Tensor, shapeStr } from '../core/tensor.js';
import type { Engine } from '../gpu/runtime.js';
import { channelPlan, rowGrid } from './batchnorm.js';

function dims(x: Tensor, w1: Tensor, w2: Tensor): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`squeezeExcite: expected an NCHW input, got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const hd = w1.shape[0];
  if (w1.shape.length !== 2 || w1.shape[1] !== c || hd < 1 || w2.shape.length !== 2 || w2.shape[0] !== c || w2.shape[1] !== hd) {
    throw new Error(`squeezeExcite: weights ${shapeStr(w1.shape)} and ${shapeStr(w2.shape)} do not fit input ${shapeStr(x.shape)} (expected [hidden,${c}] and [${c},hidden])`);
  }
  return [n, c, h * w, hd];
}

/**
 * Workgroup plan: the MLP needs at least `hidden` invocations per workgroup, and every apply
 * workgroup re-reads hidden*C*splits partials, so planes are split at most 4 ways.
 */
function plan(x: Tensor, rows: number, p: number, hd: number) {
  const pl = channelPlan(x.engine, rows, p, 4);
  const wg = Math.max(pl.wg, 2 ** Math.ceil(Math.log2(hd)));
  if (wg > x.engine.limits.maxComputeInvocationsPerWorkgroup) throw new Error(`squeezeExcite: hidden size ${hd} exceeds the workgroup size limit`);
  const splits = Math.min(pl.splits, wg);
  return { wg, splits, chunk: Math.ceil(p / splits), serial: pl.serial };
}

/**
 * Plane sums pooled elsewhere (`squeezeExcitePoolRect`), for a gate that pools more pixels than
 * the input holds: a tile's gate from the mean over the whole image.
 */
export interface PooledSums {
  /** [N*C*parts]: `parts` partial sums per (n, c) plane. */
  sums: Tensor;
  parts: number;
  /** Pixels the sums cover (the divisor of the mean). */
  count: number;
}

/** Partial sums per plane a pooled-sums buffer should hold for `pixels` pixels over `planes` planes. */
export function pooledParts(engine: Engine, planes: number, pixels: number): number {
  return channelPlan(engine, planes, pixels, 4).splits;
}

/**
 * Adds each plane's sum of x over the rectangle (x0, y0, w, h) into `sums` ([N*C*parts], split in
 * `parts` partials per plane). One dispatch; the tiles of one image accumulate in order.
 */
export function squeezeExcitePoolRect(x: Tensor, rect: { x0: number; y0: number; w: number; h: number }, sums: Tensor, parts: number): void {
  if (x.shape.length !== 4) throw new Error(`squeezeExcite pool: expected an NCHW input, got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const { x0, y0 } = rect;
  if (![x0, y0, rect.w, rect.h].every((v) => Number.isInteger(v) && v >= 0) || x0 + rect.w > w || y0 + rect.h > h) {
    throw new Error(`squeezeExcite pool: rectangle ${rect.w}x${rect.h} at (${x0}, ${y0}) is not inside input ${shapeStr(x.shape)}`);
  }
  if (!Number.isInteger(parts) || parts < 1 || sums.size !== n * c * parts) throw new Error(`squeezeExcite pool: sums ${shapeStr(sums.shape)} do not hold ${parts} partials for each of ${n * c} planes`);
  const area = rect.w * rect.h;
  if (area === 0) return;
  const engine = x.engine;
  const pl = channelPlan(engine, n * c, area, 4);
  engine.dispatch({
    label: 'squeezeExcite.poolRect',
    code,
    entry: 'pool_rect',
    constants: { WG: pl.wg, SERIAL: pl.serial ? 1 : 0 },
    uniforms: { planes: n * c, p: h * w, width: w, rx: x0, ry: y0, rw: rect.w, rh: rect.h, chunk: Math.ceil(area / parts), parts },
    bindings: [x.binding(), sums.binding()],
    workgroups: rowGrid(engine, parts, n * c),
  });
}

/**
 * y = x * sigmoid(w2 relu(w1 mean_hw(x))) (+ `residual`, same shape: the rain block's skip added in
 * the same pass, for inference). Two dispatches, one with `pooled` (the means come from its sums
 * instead of x); `saved` is filled when `save`.
 */
export function squeezeExciteForward(x: Tensor, w1: Tensor, w2: Tensor, save: boolean, residual: Tensor | null = null, pooled: PooledSums | null = null): { y: Tensor; saved: Tensor } {
  const [n, c, p, hd] = dims(x, w1, w2);
  if (residual && residual.shape.join() !== x.shape.join()) throw new Error(`squeezeExcite: residual ${shapeStr(residual.shape)} does not match input ${shapeStr(x.shape)}`);
  if (pooled && (!Number.isInteger(pooled.parts) || pooled.parts < 1 || pooled.sums.size !== n * c * pooled.parts || !(pooled.count > 0))) {
    throw new Error(`squeezeExcite: pooled sums ${shapeStr(pooled.sums.shape)} do not hold ${pooled.parts} partials for each of ${n * c} planes over ${pooled.count} pixels`);
  }
  const engine = x.engine;
  const y = Tensor.empty(engine, x.shape);
  const saved = Tensor.empty(engine, [n * (2 * c + hd)]);
  if (x.size === 0) return { y, saved };
  const pl = plan(x, n * c, p, hd);
  const constants = { WG: pl.wg, SERIAL: pl.serial ? 1 : 0 };
  const uniforms = {
    n, c, p, hidden: hd, chunk: pl.chunk, splits: pl.splits, save: save ? 1 : 0, wgrad: 0, residual: residual ? 1 : 0,
    parts: pooled?.parts ?? pl.splits, count: pooled?.count ?? p,
  };
  const workgroups = rowGrid(engine, pl.splits, n * c);
  const part = pooled ? pooled.sums : Tensor.empty(engine, [n * c * pl.splits]);
  if (!pooled) engine.dispatch({ label: 'squeezeExcite.pool', code, entry: 'pool', constants, uniforms, bindings: [x.binding(), part.binding()], workgroups });
  engine.dispatch({
    label: 'squeezeExcite',
    code,
    entry: 'apply',
    constants,
    uniforms,
    bindings: [x.binding(), w1.binding(), w2.binding(), part.binding(), y.binding(), saved.binding(), (residual ?? x).binding()],
    workgroups,
  });
  if (!pooled) part.dispose();
  return { y, saved };
}

/** dx, dw1, dw2 from dy and the forward's saved tensor. Two dispatches. */
export function squeezeExciteBackward(x: Tensor, w1: Tensor, w2: Tensor, saved: Tensor, dy: Tensor, weightGrads: boolean): { dx: Tensor; dw1: Tensor; dw2: Tensor } {
  const [n, c, p, hd] = dims(x, w1, w2);
  if (dy.shape.join() !== x.shape.join()) throw new Error(`squeezeExcite backward: gradient ${shapeStr(dy.shape)} does not match input ${shapeStr(x.shape)}`);
  const engine = x.engine;
  const dx = Tensor.empty(engine, x.shape);
  const dw1 = Tensor.empty(engine, w1.shape);
  const dw2 = Tensor.empty(engine, w2.shape);
  if (x.size === 0) return { dx, dw1, dw2 };
  const pl = plan(x, n * c, p, hd);
  const constants = { WG: pl.wg, SERIAL: pl.serial ? 1 : 0 };
  const uniforms = { n, c, p, hidden: hd, chunk: pl.chunk, splits: pl.splits, save: 0, wgrad: weightGrads ? 1 : 0, residual: 0, parts: pl.splits, count: p };
  const workgroups = rowGrid(engine, pl.splits, n * c);
  const part = Tensor.empty(engine, [n * c * pl.splits]);
  engine.dispatch({ label: 'squeezeExcite.backward.sums', code, entry: 'sums', constants, uniforms, bindings: [x.binding(), dy.binding(), part.binding()], workgroups });
  engine.dispatch({
    label: 'squeezeExcite.backward',
    code,
    entry: 'backward',
    constants,
    uniforms,
    bindings: [dy.binding(), w1.binding(), w2.binding(), saved.binding(), part.binding(), dx.binding(), dw1.binding(), dw2.binding()],
    workgroups,
  });
  part.dispose();
  return { dx, dw1, dw2 };
}
