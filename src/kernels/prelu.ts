// PReLU kernels (per-channel or shared slope), forward and backward with the slope gradient.
import code from '../../shaders/prelu.wgsl';
import { Tensor, shapeStr } from '../core/tensor.js';
import { channelPlan, rowGrid } from './batchnorm.js';
import { fill } from './elementwise.js';
import { reduceSum } from './reduce.js';

/** [N, C, P] view of x: channels are dim 1 (dim 0 for rank 1, as in PyTorch). */
function dims(x: Tensor, slope: Tensor): [number, number, number] {
  const s = x.shape;
  const [n, c] = s.length === 0 ? [1, 1] : s.length === 1 ? [1, s[0]] : [s[0], s[1]];
  const p = s.slice(2).reduce((a, b) => a * b, 1);
  if (slope.shape.length !== 1 || (slope.shape[0] !== c && slope.shape[0] !== 1)) {
    throw new Error(`prelu: slope has shape ${shapeStr(slope.shape)}, expected [${c}] or [1] for input ${shapeStr(x.shape)}`);
  }
  return [n, c, p];
}

/** y = x > 0 ? x : slope[c] * x. One dispatch. */
export function preluForward(x: Tensor, slope: Tensor): Tensor {
  const [n, c, p] = dims(x, slope);
  const y = Tensor.empty(x.engine, x.shape);
  if (y.size === 0) return y;
  const plan = channelPlan(x.engine, c, n * p);
  x.engine.dispatch({
    label: 'prelu',
    code,
    entry: 'forward',
    constants: { WG: plan.wg, SERIAL: plan.serial ? 1 : 0 },
    uniforms: { n, c, p, chunk: plan.chunk, splits: plan.splits, shared_slope: slope.shape[0] === 1 ? 1 : 0, slope_grad: 0 },
    bindings: [x.binding(), slope.binding(), y.binding()],
    workgroups: rowGrid(x.engine, plan.splits, c),
  });
  return y;
}

/**
 * dx, and (when `slopeGrad`) dslope with the slope's shape. Dispatches: 1, plus 1 to sum the
 * partials when a channel spans several workgroups or the slope is shared.
 */
export function preluBackward(x: Tensor, slope: Tensor, dy: Tensor, slopeGrad: boolean): { dx: Tensor; dslope: Tensor | null } {
  const [n, c, p] = dims(x, slope);
  if (dy.shape.join() !== x.shape.join()) throw new Error(`prelu backward: gradient ${shapeStr(dy.shape)} does not match input ${shapeStr(x.shape)}`);
  const engine = x.engine;
  const dx = Tensor.empty(engine, x.shape);
  const plan = channelPlan(engine, c, n * p);
  const shared = slope.shape[0] === 1;
  const part = Tensor.empty(engine, [c, plan.splits]);
  if (x.size > 0) {
    engine.dispatch({
      label: 'prelu.backward',
      code,
      entry: 'backward',
      constants: { WG: plan.wg, SERIAL: plan.serial ? 1 : 0 },
      uniforms: { n, c, p, chunk: plan.chunk, splits: plan.splits, shared_slope: shared && c > 1 ? 1 : 0, slope_grad: slopeGrad ? 1 : 0 },
      bindings: [x.binding(), slope.binding(), dy.binding(), dx.binding(), part.binding()],
      workgroups: rowGrid(engine, plan.splits, c),
    });
  } else {
    fill(part, 0);
  }
  if (!slopeGrad) {
    part.dispose();
    return { dx, dslope: null };
  }
  if (!shared && plan.splits === 1) {
    const dslope = part.view([c]);
    part.dispose();
    return { dx, dslope };
  }
  const total = shared ? reduceSum(part) : reduceSum(part, [1]);
  const dslope = total.view(slope.shape);
  total.dispose();
  part.dispose();
  return { dx, dslope };
}
