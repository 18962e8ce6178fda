// Bench cases for the conv2d family: forward, dgrad, wgrad (split-K and its reduction pass
// included) on the Semi-DRDNet shapes, and the fused detail block (multiDilationConv); rows marked
// `winograd` or `vec4` force the Winograd F(2x2,3x3) or vec4-row kernel with its default tiles on
// the same shapes, so one run shows every algorithm (unmarked rows run what the tuner chose).
import type { BenchCase } from '../case.js';
import type { Engine } from '../../gpu/runtime.js';
import { Tensor } from '../../core/tensor.js';
import {
  composeFusedBias,
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dForward,
  conv2dMultiForward,
  defaultVec4Config,
  defaultWinogradConfig,
  type ConvTileConfig,
} from '../../kernels/conv2d.js';

function random(engine: Engine, shape: number[], seed: number, scale = 1): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = scale * (s / 2 ** 32 - 0.5);
  }
  return Tensor.fromData(engine, data, shape);
}

interface ConvSpec {
  n: number;
  ci: number;
  h: number;
  w: number;
  co: number;
  k: number;
  d: number;
  quick?: ConvPass[];
}

type ConvPass = 'fwd' | 'dgrad' | 'wgrad';

const specs: ConvSpec[] = [
  { n: 1, ci: 64, h: 128, w: 128, co: 64, k: 3, d: 1, quick: ['fwd'] },
  { n: 1, ci: 64, h: 128, w: 128, co: 64, k: 3, d: 3 },
  { n: 1, ci: 64, h: 128, w: 128, co: 64, k: 3, d: 5 },
  { n: 8, ci: 64, h: 100, w: 100, co: 64, k: 3, d: 1 },
  { n: 8, ci: 64, h: 100, w: 100, co: 64, k: 3, d: 3 },
  { n: 8, ci: 64, h: 100, w: 100, co: 64, k: 3, d: 5 },
  { n: 1, ci: 192, h: 128, w: 128, co: 64, k: 1, d: 1 },
  { n: 1, ci: 3, h: 128, w: 128, co: 64, k: 3, d: 1, quick: ['fwd', 'dgrad', 'wgrad'] },
  { n: 1, ci: 64, h: 128, w: 128, co: 3, k: 3, d: 1, quick: ['fwd', 'dgrad', 'wgrad'] },
  // The tiny preset's width.
  { n: 1, ci: 16, h: 128, w: 128, co: 16, k: 3, d: 1 },
  { n: 1, ci: 16, h: 128, w: 128, co: 16, k: 3, d: 3 },
];

/** An algorithm a row forces (its default tiles for `M` output channels), or none: the tuner's choice. */
type Forced = 'winograd' | 'vec4' | null;
const forcedConfig = (algo: Forced, M: number): ConvTileConfig | undefined => (algo === 'winograd' ? defaultWinogradConfig(M) : algo === 'vec4' ? defaultVec4Config(M) : undefined);

function convCase(s: ConvSpec, pass: ConvPass, algo: Forced = null): BenchCase {
  const pad = (s.d * (s.k - 1)) >> 1;
  const config = forcedConfig(algo, pass === 'fwd' ? s.co : s.ci);
  const opts = { padding: pad, dilation: s.d };
  const xShape = [s.n, s.ci, s.h, s.w];
  const wShape = [s.co, s.ci, s.k, s.k];
  return {
    name: `conv2d.${pass}`,
    shape: `${xShape.join('x')} ${s.ci}->${s.co} k${s.k}${s.d > 1 ? ` d${s.d}` : ''}${algo ? ` ${algo}` : ''}`,
    quick: !algo && s.quick?.includes(pass),
    flops: 2 * s.n * s.h * s.w * s.co * s.ci * s.k * s.k,
    setup(engine) {
      const x = random(engine, xShape, 1);
      const w = random(engine, wShape, 2, 0.1);
      const b = random(engine, [s.co], 3);
      const dy = random(engine, [s.n, s.co, s.h, s.w], 4);
      const run =
        pass === 'fwd' ? () => conv2dForward(x, w, b, { ...opts, config })
        : pass === 'dgrad' ? () => conv2dBackwardData(dy, w, xShape, { ...opts, config })
        : () => conv2dBackwardFilter(x, dy, wShape, opts);
      return {
        run: () => run().dispose(),
        dispose: () => [x, w, b, dy].forEach((t) => t.dispose()),
      };
    },
  };
}

const C = 64;
const HW = 128;
const DILATIONS = [1, 3, 5];

/** multiDilationConv forward: composes the fuse weight into the three branches, then one kernel. */
function dcclCase(algo: Forced): BenchCase {
  const config = forcedConfig(algo, C);
  return {
    name: 'dccl.fwd',
    shape: `1x${C}x${HW}x${HW} 3x(${C}->${C} k3 d${DILATIONS.join(',')}) + 1x1 ${3 * C}->${C} folded${algo ? ` ${algo}` : ''}`,
    // The work done: three dilated 3x3 convolutions (the 1x1 fuse is folded into their weights).
    flops: DILATIONS.length * 2 * HW * HW * C * C * 9,
    setup(engine) {
      const x = random(engine, [1, C, HW, HW], 1);
      const ws = DILATIONS.map((_, k) => random(engine, [C, C, 3, 3], 10 + k, 0.1));
      const bs = DILATIONS.map((_, k) => random(engine, [C], 20 + k));
      const wf = random(engine, [C, 3 * C, 1, 1], 30, 0.1);
      const bf = random(engine, [C], 31);
      const branches = ws.map((w, k) => ({ weight: w, padding: [DILATIONS[k], DILATIONS[k]] as [number, number], dilation: [DILATIONS[k], DILATIONS[k]] as [number, number] }));
      return {
        run() {
          const bias = composeFusedBias(wf, DILATIONS.map(() => C), bs, bf);
          conv2dMultiForward(x, branches, bias, { fuse: wf, config }).dispose();
          bias?.dispose();
        },
        dispose: () => [x, ...ws, ...bs, wf, bf].forEach((t) => t.dispose()),
      };
    },
  };
}

const winogradPasses = (s: ConvSpec): ConvPass[] => (s.k === 3 ? ['fwd', 'dgrad'] : []);

export const cases: BenchCase[] = [
  ...specs.flatMap((s) => [
    ...(['fwd', 'dgrad', 'wgrad'] as ConvPass[]).map((p) => convCase(s, p)),
    ...winogradPasses(s).map((p) => convCase(s, p, 'winograd')),
    ...(['fwd', 'dgrad'] as ConvPass[]).map((p) => convCase(s, p, 'vec4')),
  ]),
  dcclCase(null),
  dcclCase('winograd'),
  dcclCase('vec4'),
];
