// Squeeze-and-excitation kernels: pool -> C->hidden->C MLP gate -> channel scale, forward and backward in two dispatches each.
import code from '../../shaders/se.wgsl';
import { Tensor, shapeStr } from '../core/tensor.js';
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
 * y = x * sigmoid(w2 relu(w1 mean_hw(x))) (+ `residual`, same shape: the rain block's skip added in
 * the same pass, for inference). Two dispatches; `saved` is filled when `save`.
 */
export function squeezeExciteForward(x: Tensor, w1: Tensor, w2: Tensor, save: boolean, residual: Tensor | null = null): { y: Tensor; saved: Tensor } {
  const [n, c, p, hd] = dims(x, w1, w2);
  if (residual && residual.shape.join() !== x.shape.join()) throw new Error(`squeezeExcite: residual ${shapeStr(residual.shape)} does not match input ${shapeStr(x.shape)}`);
  const engine = x.engine;
  const y = Tensor.empty(engine, x.shape);
  const saved = Tensor.empty(engine, [n * (2 * c + hd)]);
  if (x.size === 0) return { y, saved };
  const pl = plan(x, n * c, p, hd);
  const constants = { WG: pl.wg, SERIAL: pl.serial ? 1 : 0 };
  const uniforms = { n, c, p, hidden: hd, chunk: pl.chunk, splits: pl.splits, save: save ? 1 : 0, wgrad: 0, residual: residual ? 1 : 0 };
  const workgroups = rowGrid(engine, pl.splits, n * c);
  const part = Tensor.empty(engine, [n * c * pl.splits]);
  engine.dispatch({ label: 'squeezeExcite.pool', code, entry: 'pool', constants, uniforms, bindings: [x.binding(), part.binding()], workgroups });
  engine.dispatch({
    label: 'squeezeExcite',
    code,
    entry: 'apply',
    constants,
    uniforms,
    bindings: [x.binding(), w1.binding(), w2.binding(), part.binding(), y.binding(), saved.binding(), (residual ?? x).binding()],
    workgroups,
  });
  part.dispose();
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
  const uniforms = { n, c, p, hidden: hd, chunk: pl.chunk, splits: pl.splits, save: 0, wgrad: weightGrads ? 1 : 0, residual: 0 };
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
