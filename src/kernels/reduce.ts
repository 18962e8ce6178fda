// Sum/mean reduction kernels (no autograd) over any axes, split across workgroups when long.
import code from '../../shaders/reduce.wgsl';
import { Tensor, type Shape } from '../core/tensor.js';
import { grid, pad4 } from './util.js';

const WG = 64;
/** Reduced elements one workgroup handles before the extent is split (two passes). */
const CHUNK = 4096;

function contiguousStrides(shape: Shape): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Sums `x` over `axes` (all when omitted), times `scale`; the output keeps the other axes in order. */
export function reduceSum(x: Tensor, axes?: readonly number[], scale = 1): Tensor {
  const rank = x.shape.length;
  const red = new Set((axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a)));
  for (const a of red) if (a < 0 || a >= rank) throw new Error(`sum: axis ${a} out of range for rank ${rank}`);
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !red.has(i));
  const reduced = [...red].sort((a, b) => a - b);
  const outShape = kept.map((i) => x.shape[i]);
  const nOut = outShape.reduce((a, b) => a * b, 1);
  const nRed = reduced.reduce((a, i) => a * x.shape[i], 1);
  const ks = pad4(kept.map((i) => x.shape[i]), 'sum');
  const kt = [...Array(4 - kept.length).fill(0), ...kept.map((i) => strides[i])];
  const rs = pad4(reduced.map((i) => x.shape[i]), 'sum');
  const rt = [...Array(4 - reduced.length).fill(0), ...reduced.map((i) => strides[i])];
  const nChunks = nOut >= 256 || nRed <= CHUNK ? 1 : Math.min(1024, Math.ceil(nRed / CHUNK));
  const chunk = Math.ceil(nRed / nChunks);
  const out = Tensor.empty(x.engine, nChunks > 1 ? [nOut, nChunks] : outShape);
  x.engine.dispatch({
    label: 'sum',
    code,
    entry: 'sum',
    constants: { WG },
    uniforms: {
      n_out: nOut, n_red: nRed, chunk, n_chunks: nChunks,
      k1: ks[1], k2: ks[2], k3: ks[3], ks0: kt[0], ks1: kt[1], ks2: kt[2], ks3: kt[3],
      r1: rs[1], r2: rs[2], r3: rs[3], rs0: rt[0], rs1: rt[1], rs2: rt[2], rs3: rt[3],
      scale: nChunks > 1 ? 1 : scale,
    },
    bindings: [x.binding(), out.binding()],
    workgroups: grid(x.engine, nOut * nChunks),
  });
  if (nChunks === 1) return out;
  const total = reduceSum(out, [1], scale);
  out.dispose();
  const shaped = total.view(outShape);
  total.dispose();
  return shaped;
}
