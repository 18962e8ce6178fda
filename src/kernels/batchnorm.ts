// BatchNorm2d (optionally fused with PReLU) kernels over NCHW, and the per-channel work plan they share with PReLU and SE.
import code from '../../shaders/batchnorm.wgsl';
import type { Engine } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../core/tensor.js';
import { reduceSum } from './reduce.js';

/**
 * Overrides for tests and tuning: `chunk` forces elements per workgroup (so the split, two-pass
 * paths run on any adapter), `wg` the workgroup size, `serial` the merge style; 0/undefined let
 * the adapter decide.
 */
export interface ChannelOverrides {
  chunk: number;
  wg: number;
  serial: boolean | undefined;
}

const OVERRIDES = Symbol('channel plan overrides');

/** This engine's channel-plan overrides (see above). */
export function channelTuning(engine: Engine): ChannelOverrides {
  return engine.local(OVERRIDES, (): ChannelOverrides => ({ chunk: 0, wg: 0, serial: undefined }));
}

export interface ChannelPlan {
  /** Invocations per workgroup (a power of two). */
  wg: number;
  /** Workgroups per row (channel or plane); at most `wg` so one workgroup can merge them. */
  splits: number;
  /** Elements of a row per workgroup. */
  chunk: number;
  /** Merge workgroup partials with one invocation (CPUs pay per barrier, GPUs prefer the tree). */
  serial: boolean;
}

/**
 * How `rows` independent reductions of `count` elements are spread over workgroups. Software
 * adapters run a workgroup per row (one dispatch does reduce-then-apply; dispatches and barriers
 * are what cost there); GPUs split rows until there are about 2048 workgroups of >= 1024 elements.
 */
export function channelPlan(engine: Engine, rows: number, count: number, maxSplits = Infinity): ChannelPlan {
  const soft = engine.adapter.software;
  const over = channelTuning(engine);
  const wg = over.wg || Math.min(soft ? 64 : 256, engine.limits.maxComputeInvocationsPerWorkgroup);
  let splits: number;
  if (over.chunk > 0) splits = Math.ceil(count / over.chunk);
  else if (soft) splits = Math.ceil(count / 65536);
  else splits = Math.min(Math.ceil(2048 / Math.max(1, rows)), Math.ceil(count / 1024));
  splits = Math.max(1, Math.min(wg, maxSplits, engine.limits.maxComputeWorkgroupsPerDimension, splits));
  return { wg, splits, chunk: Math.ceil(count / splits), serial: over.serial ?? soft };
}

/** Workgroups for (split, row) kernels: rows fold over y and z; shaders read row = z * ny + y. */
export function rowGrid(engine: Engine, splits: number, rows: number): [number, number, number] {
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.min(rows, max);
  const z = Math.ceil(rows / y);
  if (z > max) throw new Error(`${rows} channels or planes exceed the dispatch grid (${max}^2 workgroups)`);
  return [splits, y, z];
}

const pow2 = (v: number): number => 2 ** Math.ceil(Math.log2(v));

/** Per-channel values saved by the forward (see shaders/batchnorm.wgsl). */
const STRIDE = 6;

export interface BatchNormForwardOptions {
  training: boolean;
  momentum: number;
  eps: number;
  /** PReLU slopes ([C] or [1]) applied after the affine, or null. */
  slope: Tensor | null;
}

function checkVector(t: Tensor, c: number, what: string, x: Tensor): void {
  if (t.shape.length !== 1 || t.shape[0] !== c) {
    throw new Error(`batchNorm2d: ${what} has shape ${shapeStr(t.shape)}, expected [${c}] for input ${shapeStr(x.shape)}`);
  }
}

/**
 * y = gamma * (x - mean) / sqrt(var + eps) + beta (then PReLU), with batch statistics (training,
 * updating runningMean/runningVar in place) or the running ones. Also returns the per-channel
 * stats the backward reads. Dispatches: 1 (eval, or training with one split), else 2.
 */
export function batchNormForward(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNormForwardOptions): { y: Tensor; stats: Tensor } {
  if (x.shape.length !== 4) throw new Error(`batchNorm2d: expected an NCHW input, got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const p = h * w;
  for (const [t, what] of [[weight, 'weight'], [bias, 'bias'], [runningMean, 'runningMean'], [runningVar, 'runningVar']] as const) checkVector(t, c, what, x);
  const slope = opts.slope;
  if (slope && !(slope.shape.length === 1 && (slope.shape[0] === c || slope.shape[0] === 1))) {
    throw new Error(`batchNormPrelu: slope has shape ${shapeStr(slope.shape)}, expected [${c}] or [1] for input ${shapeStr(x.shape)}`);
  }
  if (opts.training && n * p < 2) throw new Error(`batchNorm2d: training needs more than one value per channel, got input ${shapeStr(x.shape)}`);
  const engine = x.engine;
  const plan = channelPlan(engine, c, n * p);
  const split = opts.training && plan.splits > 1;
  const stats = Tensor.empty(engine, [STRIDE * c + (split ? 3 * c * plan.splits : 0)]);
  const y = Tensor.empty(engine, x.shape);
  if (x.size === 0) return { y, stats };
  const constants = { WG: plan.wg, ACT: slope ? 1 : 0, TRAIN: opts.training ? 1 : 0, SERIAL: plan.serial ? 1 : 0 };
  const uniforms = { n, c, p, chunk: plan.chunk, splits: plan.splits, shared_slope: slope?.shape[0] === 1 && c > 1 ? 1 : 0, momentum: opts.momentum, eps: opts.eps, width: pow2(plan.splits) };
  const workgroups = rowGrid(engine, plan.splits, c);
  const label = slope ? 'batchNormPrelu' : 'batchNorm2d';
  if (split) {
    engine.dispatch({ label: `${label}.stats`, code, entry: 'stats_partial', constants, uniforms, bindings: [x.binding(), stats.binding()], workgroups });
  }
  engine.dispatch({
    label,
    code,
    entry: opts.training && !split ? 'fwd_single' : 'fwd_apply',
    constants,
    uniforms,
    bindings: [x.binding(), weight.binding(), bias.binding(), (slope ?? weight).binding(), runningMean.binding(), runningVar.binding(), y.binding(), stats.binding()],
    workgroups: opts.training && !split ? rowGrid(engine, 1, c) : workgroups,
  });
  return { y, stats };
}

export interface BatchNormGrads {
  dx: Tensor;
  dweight: Tensor;
  dbias: Tensor;
  /** Per-channel [C], or [1] when `sharedSlope`; null without PReLU. */
  dslope: Tensor | null;
}

/**
 * Gradients of batchNormForward given dy and its saved stats (which also carry gamma, beta and
 * the slope). Dispatches: 1 with one split per channel, else 2; plus 1 to sum a shared slope.
 */
export function batchNormBackward(x: Tensor, dy: Tensor, stats: Tensor, opts: { training: boolean; act: boolean; sharedSlope: boolean }): BatchNormGrads {
  if (dy.shape.join() !== x.shape.join()) throw new Error(`batchNorm2d backward: gradient ${shapeStr(dy.shape)} does not match input ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const p = h * w;
  const engine = x.engine;
  const plan = channelPlan(engine, c, n * p);
  const dx = Tensor.empty(engine, x.shape);
  const dweight = Tensor.empty(engine, [c]);
  const dbias = Tensor.empty(engine, [c]);
  const dslopeC = Tensor.empty(engine, [c]);
  const constants = { WG: plan.wg, ACT: opts.act ? 1 : 0, TRAIN: opts.training ? 1 : 0, SERIAL: plan.serial ? 1 : 0 };
  const uniforms = { n, c, p, chunk: plan.chunk, splits: plan.splits, shared_slope: 0, momentum: 0, eps: 0, width: pow2(plan.splits) };
  const outs = [dx.binding(), dweight.binding(), dbias.binding(), dslopeC.binding()];
  if (plan.splits === 1) {
    engine.dispatch({ label: 'batchNorm2d.backward', code, entry: 'bwd_single', constants, uniforms, bindings: [x.binding(), dy.binding(), stats.binding(), ...outs], workgroups: rowGrid(engine, 1, c) });
  } else {
    const part = Tensor.empty(engine, [3 * c * plan.splits]);
    const workgroups = rowGrid(engine, plan.splits, c);
    engine.dispatch({ label: 'batchNorm2d.backward.sums', code, entry: 'bwd_partial', constants, uniforms, bindings: [x.binding(), dy.binding(), stats.binding(), part.binding()], workgroups });
    engine.dispatch({ label: 'batchNorm2d.backward', code, entry: 'bwd_apply', constants, uniforms, bindings: [x.binding(), dy.binding(), stats.binding(), ...outs, part.binding()], workgroups });
    part.dispose();
  }
  if (!opts.act) {
    dslopeC.dispose();
    return { dx, dweight, dbias, dslope: null };
  }
  if (!opts.sharedSlope) return { dx, dweight, dbias, dslope: dslopeC };
  const total = reduceSum(dslopeC);
  const dslope = total.view([1]);
  total.dispose();
  dslopeC.dispose();
  return { dx, dweight, dbias, dslope };
}
