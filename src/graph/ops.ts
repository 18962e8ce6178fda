// Differentiable ops built on the kernels: arithmetic with broadcasting, activations, reductions,
// matmul/linear, concat/split, reshape, and the L1/MSE losses.
import { binary, fill, unary, unaryGrad, type BinaryOp, type UnaryOp } from '../kernels/elementwise.js';
import { matmul2d } from '../kernels/matmul.js';
import { reduceSum } from '../kernels/reduce.js';
import * as copy from '../kernels/copy.js';
import type { Engine } from '../gpu/runtime.js';
import { defineOp } from './autograd.js';
import { Tensor, shapeStr, type Shape } from '../core/tensor.js';

// ---- creation -------------------------------------------------------------------------------

/** A tensor with the given values (alias of Tensor.fromData). */
export function tensor(engine: Engine, data: ArrayLike<number>, shape: Shape): Tensor {
  return Tensor.fromData(engine, data, shape);
}

/** A tensor filled with one value. */
export function full(engine: Engine, shape: Shape, value: number): Tensor {
  const t = Tensor.empty(engine, shape);
  fill(t, value);
  return t;
}

/** A tensor of zeros. */
export const zeros = (engine: Engine, shape: Shape): Tensor => full(engine, shape, 0);
/** A tensor of ones. */
export const ones = (engine: Engine, shape: Shape): Tensor => full(engine, shape, 1);

// ---- broadcasting helpers -------------------------------------------------------------------

/** Sums a broadcast gradient back down to `shape` (the shape of the input it flows to). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.join() === shape.join()) return g.view(shape);
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = reduceSum(g, axes);
  const out = s.view(shape);
  s.dispose();
  return out;
}

/** `g` broadcast to the shape of `like` (a view when the shapes already match). */
function expandLike(g: Tensor, like: Shape, engine: Engine): Tensor {
  if (g.shape.join() === like.join()) return g.view(like);
  const tmp = Tensor.empty(engine, like); // only its shape is read by the 'expand' kernel
  const out = binary('expand', tmp, g);
  tmp.dispose();
  return out;
}

const first = (r: Tensor[]): Tensor => r[0];

// ---- arithmetic -----------------------------------------------------------------------------

const binaryDefs = {
  add: defineOp({
    name: 'add',
    forward: (_ctx, [a, b]) => binary('add', a, b),
    backward: (ctx, [g]) => [sumTo(g!, ctx.inputShapes[0]), sumTo(g!, ctx.inputShapes[1])],
  }),
  sub: defineOp({
    name: 'sub',
    forward: (_ctx, [a, b]) => binary('sub', a, b),
    backward: (ctx, [g]) => [sumTo(g!, ctx.inputShapes[0]), ctx.needsGrad[1] ? sumTo(unary('affine', g!, -1, 0), ctx.inputShapes[1]) : null],
  }),
  mul: defineOp({
    name: 'mul',
    forward(ctx, [a, b]) {
      ctx.save(a, b);
      return binary('mul', a, b);
    },
    backward(ctx, [g]) {
      const [a, b] = ctx.saved;
      return [
        ctx.needsGrad[0] ? sumTo(binary('mul', g!, b), a.shape) : null,
        ctx.needsGrad[1] ? sumTo(binary('mul', g!, a), b.shape) : null,
      ];
    },
  }),
  div: defineOp({
    name: 'div',
    forward(ctx, [a, b]) {
      ctx.save(a, b);
      return binary('div', a, b);
    },
    backward(ctx, [g]) {
      const [a, b] = ctx.saved;
      const ga = binary('div', g!, b);
      // d(a/b)/db = -a/b^2 = -(g/b) * a / b
      const gb = ctx.needsGrad[1] ? sumTo(unary('affine', binary('div', binary('mul', ga, a), b), -1, 0), b.shape) : null;
      return [ctx.needsGrad[0] ? sumTo(ga, a.shape) : null, gb];
    },
  }),
} satisfies Record<Exclude<BinaryOp, 'max' | 'expand'>, unknown>;

/** a + b with NumPy broadcasting (e.g. a per-channel [1,C,1,1] bias onto [N,C,H,W]). */
export const add = (a: Tensor, b: Tensor): Tensor => first(binaryDefs.add([a, b], undefined));
/** a - b with broadcasting. */
export const sub = (a: Tensor, b: Tensor): Tensor => first(binaryDefs.sub([a, b], undefined));
/** a * b (elementwise) with broadcasting. */
export const mul = (a: Tensor, b: Tensor): Tensor => first(binaryDefs.mul([a, b], undefined));
/** a / b (elementwise) with broadcasting. */
export const div = (a: Tensor, b: Tensor): Tensor => first(binaryDefs.div([a, b], undefined));

const affineDef = defineOp<{ scale: number; shift: number }>({
  name: 'affine',
  forward: (_ctx, [x], { scale, shift }) => unary('affine', x, scale, shift),
  backward: (_ctx, [g], { scale }) => [unary('affine', g!, scale, 0)],
});

/** scale * x + shift. */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor => first(affineDef([x], { scale, shift }));
/** x + c. */
export const addScalar = (x: Tensor, c: number): Tensor => affine(x, 1, c);
/** c * x. */
export const mulScalar = (x: Tensor, c: number): Tensor => affine(x, c, 0);
/** -x. */
export const neg = (x: Tensor): Tensor => affine(x, -1, 0);

// ---- activations and maps -------------------------------------------------------------------

/** A unary map whose gradient uses the saved input (x) or output (y). */
function unaryOp(op: UnaryOp, saves: 'x' | 'y', grad: (g: Tensor, v: Tensor, alpha: number) => Tensor) {
  return defineOp<number>({
    name: op,
    forward(ctx, [x], alpha) {
      const y = unary(op, x, alpha);
      ctx.save(saves === 'x' ? x : y);
      return y;
    },
    backward: (ctx, [g], alpha) => [grad(g!, ctx.saved[0], alpha)],
  });
}

const unaryDefs = {
  relu: unaryOp('relu', 'x', (g, x) => unaryGrad('relu', x, g)),
  leakyRelu: unaryOp('leakyRelu', 'x', (g, x, a) => unaryGrad('leakyRelu', x, g, a)),
  sigmoid: unaryOp('sigmoid', 'y', (g, y) => unaryGrad('sigmoid', y, g)),
  abs: unaryOp('abs', 'x', (g, x) => unaryGrad('abs', x, g)),
  exp: unaryOp('exp', 'y', (g, y) => binary('mul', g, y)),
  log: unaryOp('log', 'x', (g, x) => binary('div', g, x)),
};

/** max(x, 0). */
export const relu = (x: Tensor): Tensor => first(unaryDefs.relu([x], 1));
/** x where x > 0, slope * x elsewhere. */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => first(unaryDefs.leakyRelu([x], slope));
/** 1 / (1 + exp(-x)). */
export const sigmoid = (x: Tensor): Tensor => first(unaryDefs.sigmoid([x], 1));
/** |x| (gradient 0 at 0). */
export const abs = (x: Tensor): Tensor => first(unaryDefs.abs([x], 1));
/** e^x. */
export const exp = (x: Tensor): Tensor => first(unaryDefs.exp([x], 1));
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => first(unaryDefs.log([x], 1));

// ---- reductions -----------------------------------------------------------------------------

interface ReduceAttrs {
  axes: number[] | undefined;
  keepDim: boolean;
  scale: number;
}

/** Output shape with reduced axes kept as 1 (what the gradient is broadcast from). */
function keptShape(shape: Shape, axes: number[] | undefined): number[] {
  const rank = shape.length;
  const red = new Set((axes ?? shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a)));
  return shape.map((d, i) => (red.has(i) ? 1 : d));
}

const sumDef = defineOp<ReduceAttrs>({
  name: 'sum',
  forward(_ctx, [x], { axes, keepDim, scale }) {
    const r = reduceSum(x, axes, scale);
    if (!keepDim) return r;
    const v = r.view(keptShape(x.shape, axes));
    r.dispose();
    return v;
  },
  backward(ctx, [g], { axes, scale }) {
    const shape = ctx.inputShapes[0];
    const gk = g!.view(keptShape(shape, axes));
    const e = expandLike(gk, shape, g!.engine);
    gk.dispose();
    if (scale === 1) return [e];
    const s = unary('affine', e, scale, 0);
    e.dispose();
    return [s];
  },
});

function checkAxes(x: Tensor, axes: number[] | undefined, what: string): void {
  for (const a of axes ?? []) {
    if (!Number.isInteger(a) || a < -x.shape.length || a >= x.shape.length) {
      throw new Error(`${what}: axis ${a} out of range for shape ${shapeStr(x.shape)}`);
    }
  }
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number[], keepDim = false): Tensor {
  checkAxes(x, axes, 'sum');
  return first(sumDef([x], { axes, keepDim, scale: 1 }));
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number[], keepDim = false): Tensor {
  checkAxes(x, axes, 'mean');
  const kept = keptShape(x.shape, axes);
  const n = x.size / Math.max(1, kept.reduce((a, b) => a * b, 1));
  return first(sumDef([x], { axes, keepDim, scale: n > 0 ? 1 / n : 1 }));
}

// ---- matmul / linear ------------------------------------------------------------------------

const matmulDef = defineOp({
  name: 'matmul',
  forward(ctx, [a, b]) {
    ctx.save(a, b);
    return matmul2d(a, b);
  },
  backward(ctx, [g]) {
    const [a, b] = ctx.saved;
    return [
      ctx.needsGrad[0] ? matmul2d(g!, b, { transB: true }) : null,
      ctx.needsGrad[1] ? matmul2d(a, g!, { transA: true }) : null,
    ];
  },
});

/** [M,K] x [K,N] -> [M,N]. */
export const matmul = (a: Tensor, b: Tensor): Tensor => first(matmulDef([a, b], undefined));

const linearDef = defineOp({
  name: 'linear',
  forward(ctx, [x, w]) {
    ctx.save(x, w);
    return matmul2d(x, w, { transB: true });
  },
  backward(ctx, [g]) {
    const [x, w] = ctx.saved;
    return [
      ctx.needsGrad[0] ? matmul2d(g!, w) : null,
      ctx.needsGrad[1] ? matmul2d(g!, x, { transA: true }) : null,
    ];
  },
});

/** x [N,in] times weight [out,in] (PyTorch's layout) transposed, plus an optional bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = first(linearDef([x, weight], undefined));
  if (!bias) return y;
  const r = add(y, bias);
  y.dispose();
  return r;
}

// ---- shape ops ------------------------------------------------------------------------------

const reshapeDef = defineOp<Shape>({
  name: 'reshape',
  forward: (_ctx, [x], shape) => x.view(shape),
  backward: (ctx, [g]) => [g!.view(ctx.inputShapes[0])],
});

/** The same data under another shape with as many elements (a view; no copy). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (resolved.reduce((a, b) => a * b, 1) !== x.size || resolved.some((d) => !Number.isInteger(d))) {
    throw new Error(`reshape: cannot reshape ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  }
  return first(reshapeDef([x], resolved));
}

const concatDef = defineOp<number>({
  name: 'concat',
  forward: (_ctx, inputs, axis) => copy.concat(inputs, axis),
  backward: (ctx, [g], axis) => copy.split(g!, ctx.inputShapes.map((s) => s[axis < 0 ? axis + s.length : axis]), axis),
});

/** Concatenates along `axis` (default 1, channels). */
export const concat = (tensors: Tensor[], axis = 1): Tensor => first(concatDef(tensors, axis));

const splitDef = defineOp<{ sizes: number[]; axis: number }>({
  name: 'split',
  forward: (_ctx, [x], { sizes, axis }) => copy.split(x, sizes, axis),
  backward(ctx, grads, { sizes, axis }) {
    const shape = ctx.inputShapes[0];
    const ax = axis < 0 ? axis + shape.length : axis;
    const made: Tensor[] = [];
    const parts = grads.map((g, i) => g ?? (made[made.length] = zeros(ctx.saved[0]?.engine ?? grads.find(Boolean)!.engine, shape.map((d, k) => (k === ax ? sizes[i] : d)))));
    const r = copy.concat(parts, axis);
    for (const t of made) t.dispose();
    return [r];
  },
});

/** Splits along `axis` (default 1, channels) into pieces of the given sizes. */
export const split = (x: Tensor, sizes: number[], axis = 1): Tensor[] => splitDef([x], { sizes, axis });

// ---- losses ---------------------------------------------------------------------------------

function checkSame(a: Tensor, b: Tensor, what: string): void {
  if (a.shape.join() !== b.shape.join()) throw new Error(`${what}: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
}

/** mean(f(a - b)) with f = |.| (L1) or (.)^2 (MSE); d = a - b is saved for the gradient. */
function meanErrorDef(name: string, f: 'abs' | 'square') {
  return defineOp({
    name,
    forward(ctx, [a, b]) {
      const d = binary('sub', a, b);
      ctx.save(d);
      const e = unary(f, d);
      const r = reduceSum(e, undefined, 1 / Math.max(1, a.size));
      e.dispose();
      d.dispose();
      return r;
    },
    backward(ctx, [g]) {
      const d = ctx.saved[0];
      // d|d|/dd = sign(d), d(d^2)/dd = 2d
      const slope = f === 'abs' ? unary('sign', d) : d;
      const gs = binary('mul', slope, g!);
      const ga = unary('affine', gs, (f === 'abs' ? 1 : 2) / Math.max(1, d.size), 0);
      if (slope !== d) slope.dispose();
      gs.dispose();
      return [ga, ctx.needsGrad[1] ? unary('affine', ga, -1, 0) : null];
    },
  });
}

const l1Def = meanErrorDef('l1Loss', 'abs');
const mseDef = meanErrorDef('mseLoss', 'square');

/** Mean absolute error (a scalar of shape []). */
export function l1Loss(a: Tensor, b: Tensor): Tensor {
  checkSame(a, b, 'l1Loss');
  return first(l1Def([a, b], undefined));
}

/** Mean squared error (a scalar of shape []). */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  checkSame(a, b, 'mseLoss');
  return first(mseDef([a, b], undefined));
}

