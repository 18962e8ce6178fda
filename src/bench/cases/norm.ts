// Bench cases for the normalisation/gating/pooling kernels: SE, fused BN+PReLU (training) and max pooling, forward and backward.
import type { BenchCase } from '../case.js';
import type { Engine } from '../../gpu/runtime.js';
import { Tensor } from '../../core/tensor.js';
import { batchNormBackward, batchNormForward } from '../../kernels/batchnorm.js';
import { maxPoolBackward, maxPoolForward } from '../../kernels/pool.js';
import { squeezeExciteBackward, squeezeExciteForward } from '../../kernels/se.js';

const [N, C, H, W] = [1, 64, 128, 128];
const SHAPE = [N, C, H, W];
const PLANE_BYTES = N * C * H * W * 4;
const HIDDEN = 4;

function random(engine: Engine, shape: number[], seed: number, scale = 1, offset = 0): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = offset + scale * (s / 2 ** 32 - 0.5);
  }
  return Tensor.fromData(engine, data, shape);
}

function disposeAll(...ts: Array<Tensor | null>): void {
  for (const t of ts) t?.dispose();
}

/** BN+PReLU inputs: x, weight, bias, running mean/var, per-channel slope. */
function bnInputs(engine: Engine) {
  return {
    x: random(engine, SHAPE, 1, 2, 0.5),
    w: random(engine, [C], 2, 0.5, 1),
    b: random(engine, [C], 3, 0.2),
    rm: random(engine, [C], 4, 0),
    rv: random(engine, [C], 5, 0, 1),
    slope: random(engine, [C], 6, 0.1, 0.25),
  };
}

export const cases: BenchCase[] = [
  {
    name: 'se.fwd',
    shape: `${SHAPE.join('x')} hidden ${HIDDEN}`,
    quick: true,
    bytes: 3 * PLANE_BYTES, // x read by the pool and the scale pass, y written
    setup(engine) {
      const x = random(engine, SHAPE, 1);
      const w1 = random(engine, [HIDDEN, C], 2, 0.5);
      const w2 = random(engine, [C, HIDDEN], 3, 0.5);
      return {
        run() {
          const r = squeezeExciteForward(x, w1, w2, false);
          disposeAll(r.y, r.saved);
        },
        dispose: () => disposeAll(x, w1, w2),
      };
    },
  },
  {
    name: 'se.bwd',
    shape: `${SHAPE.join('x')} hidden ${HIDDEN}`,
    quick: true,
    bytes: 4 * PLANE_BYTES, // x and dy read by the sums pass, dy read and dx written by the apply pass
    setup(engine) {
      const x = random(engine, SHAPE, 1);
      const dy = random(engine, SHAPE, 4);
      const w1 = random(engine, [HIDDEN, C], 2, 0.5);
      const w2 = random(engine, [C, HIDDEN], 3, 0.5);
      const { y, saved } = squeezeExciteForward(x, w1, w2, true);
      y.dispose();
      return {
        run() {
          const r = squeezeExciteBackward(x, w1, w2, saved, dy, true);
          disposeAll(r.dx, r.dw1, r.dw2);
        },
        dispose: () => disposeAll(x, dy, w1, w2, saved),
      };
    },
  },
  {
    name: 'bn.fwd',
    shape: `${SHAPE.join('x')} BN+PReLU training`,
    quick: true,
    bytes: 3 * PLANE_BYTES, // x read for the statistics and again to normalise, y written
    setup(engine) {
      const t = bnInputs(engine);
      return {
        run() {
          const r = batchNormForward(t.x, t.w, t.b, t.rm, t.rv, { training: true, momentum: 0.1, eps: 1e-5, slope: t.slope });
          disposeAll(r.y, r.stats);
        },
        dispose: () => disposeAll(...Object.values(t)),
      };
    },
  },
  {
    name: 'bn.bwd',
    shape: `${SHAPE.join('x')} BN+PReLU training`,
    quick: true,
    bytes: 5 * PLANE_BYTES, // x and dy read by the reduction and again for dx, dx written
    setup(engine) {
      const t = bnInputs(engine);
      const dy = random(engine, SHAPE, 7);
      const { y, stats } = batchNormForward(t.x, t.w, t.b, t.rm, t.rv, { training: true, momentum: 0.1, eps: 1e-5, slope: t.slope });
      y.dispose();
      return {
        run() {
          const r = batchNormBackward(t.x, dy, stats, { training: true, act: true, sharedSlope: false });
          disposeAll(r.dx, r.dweight, r.dbias, r.dslope);
        },
        dispose: () => disposeAll(...Object.values(t), dy, stats),
      };
    },
  },
  {
    name: 'maxpool.fwd',
    shape: `${SHAPE.join('x')} k2 s2`,
    quick: true,
    bytes: PLANE_BYTES * 1.25, // x read, y (a quarter) written
    setup(engine) {
      const x = random(engine, SHAPE, 1);
      return {
        run() {
          const r = maxPoolForward(x, 2, 2, false);
          r.y.dispose();
        },
        dispose: () => x.dispose(),
      };
    },
  },
  {
    name: 'maxpool.bwd',
    shape: `${SHAPE.join('x')} k2 s2`,
    quick: true,
    bytes: PLANE_BYTES * 1.5, // dy and argmax (a quarter each) read, dx written
    setup(engine) {
      const x = random(engine, SHAPE, 1);
      const { y, arg } = maxPoolForward(x, 2, 2, true);
      const dy = random(engine, y.shape as number[], 2);
      y.dispose();
      return {
        run() {
          maxPoolBackward(x.shape, arg!, dy, 2, 2).dispose();
        },
        dispose: () => disposeAll(x, arg, dy),
      };
    },
  },
];
