// Max/average 2-D pooling and global average pooling kernels over NCHW, forward and backward (one dispatch each).
import code from '../../shaders/pool.wgsl';
import type { Engine, Uniforms } from '../gpu/runtime.js';
import { Tensor, shapeStr, type Shape } from '../core/tensor.js';
import { reduceSum } from './reduce.js';
import type { PerAxis } from './util.js';

const WG = 64;

export interface PoolGeometry {
  n: number; c: number; h: number; w: number;
  kh: number; kw: number; sh: number; sw: number;
  ho: number; wo: number;
}

const pair = (p: PerAxis): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

export function poolGeometry(shape: Shape, kernel: PerAxis, stride: PerAxis, what: string): PoolGeometry {
  if (shape.length !== 4) throw new Error(`${what}: expected an NCHW input, got ${shapeStr(shape)}`);
  const [n, c, h, w] = shape;
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(stride);
  if (![kh, kw, sh, sw].every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`${what}: kernel ${kh}x${kw} and stride ${sh}x${sw} must be positive integers`);
  if (kh > h || kw > w) throw new Error(`${what}: kernel ${kh}x${kw} is larger than input ${shapeStr(shape)}`);
  return { n, c, h, w, kh, kw, sh, sw, ho: Math.floor((h - kh) / sh) + 1, wo: Math.floor((w - kw) / sw) + 1 };
}

const OVERRIDES = Symbol('pool plan overrides');

/** This engine's tuning override: lines (rows of a plane) per workgroup; 0 = chosen from the adapter. */
export function poolTuning(engine: Engine): { lines: number } {
  return engine.local(OVERRIDES, () => ({ lines: 0 }));
}

interface Launch {
  uniforms: Uniforms;
  workgroups: [number, number, number];
}

/**
 * Uniforms and grid for `rows` rows of `cols` columns in each plane. CPU adapters get about 256
 * workgroups in all (a launch costs about a microsecond there); GPUs one line per workgroup.
 */
function launch(engine: Engine, g: PoolGeometry, scale: number, cols: number, rows: number): Launch {
  const planes = g.n * g.c;
  const lines = planes * rows;
  const xBlocks = Math.ceil(cols / WG);
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  const wanted = poolTuning(engine).lines || (engine.adapter.software ? Math.ceil((lines * xBlocks) / 256) : 1);
  const per = Math.max(1, wanted, Math.ceil(lines / (max * max)));
  const blocks = Math.ceil(lines / per);
  const y = Math.min(blocks, max);
  return { uniforms: { planes, h: g.h, w: g.w, ho: g.ho, wo: g.wo, scale, lines: per }, workgroups: [xBlocks, y, Math.ceil(blocks / y)] };
}

function constants(g: PoolGeometry) {
  return { WG, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw };
}

/** Max pooling; with `saveArg`, also the window offset of each maximum (for maxPoolBackward). */
export function maxPoolForward(x: Tensor, kernel: PerAxis, stride: PerAxis, saveArg: boolean): { y: Tensor; arg: Tensor | null } {
  const g = poolGeometry(x.shape, kernel, stride, 'maxPool2d');
  const y = Tensor.empty(x.engine, [g.n, g.c, g.ho, g.wo]);
  const arg = saveArg ? Tensor.empty(x.engine, y.shape) : null;
  if (y.size === 0) return { y, arg };
  x.engine.dispatch({
    label: 'maxPool2d',
    code,
    entry: arg ? 'max_fwd_arg' : 'max_fwd',
    constants: constants(g),
    ...launch(x.engine, g, 1, g.wo, g.ho),
    bindings: arg ? [x.binding(), y.binding(), arg.binding()] : [x.binding(), y.binding()],
  });
  return { y, arg };
}

/** dx: each dy goes to the first maximum of its window (as saved by the forward). */
export function maxPoolBackward(xShape: Shape, arg: Tensor, dy: Tensor, kernel: PerAxis, stride: PerAxis): Tensor {
  const g = poolGeometry(xShape, kernel, stride, 'maxPool2d backward');
  const dx = Tensor.empty(dy.engine, xShape);
  if (dx.size === 0) return dx;
  dy.engine.dispatch({
    label: 'maxPool2d.backward',
    code,
    entry: 'max_bwd',
    constants: constants(g),
    ...launch(dy.engine, g, 1, g.w, g.h),
    bindings: [dy.binding(), arg.binding(), dx.binding()],
  });
  return dx;
}

export function avgPoolForward(x: Tensor, kernel: PerAxis, stride: PerAxis): Tensor {
  const g = poolGeometry(x.shape, kernel, stride, 'avgPool2d');
  const y = Tensor.empty(x.engine, [g.n, g.c, g.ho, g.wo]);
  if (y.size === 0) return y;
  x.engine.dispatch({
    label: 'avgPool2d',
    code,
    entry: 'avg_fwd',
    constants: constants(g),
    ...launch(x.engine, g, 1 / (g.kh * g.kw), g.wo, g.ho),
    bindings: [x.binding(), y.binding()],
  });
  return y;
}

export function avgPoolBackward(xShape: Shape, dy: Tensor, kernel: PerAxis, stride: PerAxis): Tensor {
  const g = poolGeometry(xShape, kernel, stride, 'avgPool2d backward');
  const dx = Tensor.empty(dy.engine, xShape);
  if (dx.size === 0) return dx;
  dy.engine.dispatch({
    label: 'avgPool2d.backward',
    code,
    entry: 'avg_bwd',
    constants: constants(g),
    ...launch(dy.engine, g, 1 / (g.kh * g.kw), g.w, g.h),
    bindings: [dy.binding(), dx.binding()],
  });
  return dx;
}

/** Mean over H and W -> [N, C, 1, 1] (the shared reduction kernel: 1 dispatch, 2 for few long planes). */
export function globalAvgPoolForward(x: Tensor): Tensor {
  if (x.shape.length !== 4) throw new Error(`globalAvgPool: expected an NCHW input, got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const s = reduceSum(x, [2, 3], 1 / Math.max(1, h * w));
  const y = s.view([n, c, 1, 1]);
  s.dispose();
  return y;
}

/** dx = dy[n, c] / (H*W) broadcast over the plane. One dispatch. */
export function globalAvgPoolBackward(xShape: Shape, dy: Tensor): Tensor {
  const [n, c, h, w] = xShape;
  const dx = Tensor.empty(dy.engine, xShape);
  if (dx.size === 0) return dx;
  const g: PoolGeometry = { n, c, h, w, kh: 1, kw: 1, sh: 1, sw: 1, ho: 1, wo: 1 };
  dy.engine.dispatch({
    label: 'globalAvgPool.backward',
    code,
    entry: 'gap_bwd',
    constants: constants(g),
    ...launch(dy.engine, g, 1 / (h * w), w, h),
    bindings: [dy.binding(), dx.binding()],
  });
  return dx;
}
