// GEMM kernels vs the float64 reference: odd shapes, every transpose, every variant, accumulate, autograd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as R from './ref/ops.js';
import { FWD, mulberry32, randn, type RefTensor } from './ref/tensor.js';
import { matmul } from '../src/graph/ops.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { defaultVariant, matmul2d, type MatmulVariant } from '../src/kernels/matmul.js';
import { assertClose, engine, engineWith, gpu } from './helpers.js';
import { checkOp } from './gradcheck-gpu.js';

const rng = mulberry32(7);
/** Scaled so sums over K stay O(1): fp32 rounding then stays well inside atol for any K. */
const operand = (shape: number[], K: number): RefTensor => {
  const r = randn(shape, rng);
  const s = K > 0 ? K ** -0.25 : 1;
  r.data.forEach((v, i) => (r.data[i] = v * s));
  return r;
};

// [M, N, K]: ones, odd sizes, non-multiples of 4/8/16, a K spanning two panel windows.
const shapes: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 5, 3],
  [5, 7, 3],
  [7, 1, 9],
  [4, 8, 4],
  [13, 17, 11],
  [33, 65, 31],
  [64, 48, 40],
  [9, 20, 1030],
];
const variants: MatmulVariant[] = ['register', 'panel', 'shared'];
const transposes: Array<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];

for (const variant of variants) {
  for (const [transA, transB] of transposes) {
    test(`matmul2d ${variant} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} on odd shapes`, async () => {
      const e = await engine();
      for (const [M, N, K] of shapes) {
        const a = operand(transA ? [K, M] : [M, K], K);
        const b = operand(transB ? [N, K] : [K, N], K);
        const ref = R.matmul(transA ? R.transpose2d(a) : a, transB ? R.transpose2d(b) : b);
        await tidy(async () => {
          const c = matmul2d(gpu(e, a), gpu(e, b), { transA, transB, variant });
          assert.equal([...c.shape], [M, N]);
          await assertClose(c, ref.data, FWD, `${variant} ${M}x${N}x${K}`);
        });
      }
    });
  }
}

test('matmul2d default variant, above and below the panel threshold', async () => {
  const e = await engine();
  for (const [M, N, K] of [[300, 70, 260], [3, 300, 5]] as const) {
    const a = operand([M, K], K);
    const b = operand([N, K], K);
    const ref = R.matmul(a, R.transpose2d(b));
    await tidy(async () => {
      const c = matmul2d(gpu(e, a), gpu(e, b), { transB: true });
      await assertClose(c, ref.data, FWD, `default (${defaultVariant(e, M, N, K)}) ${M}x${N}x${K}`);
    });
  }
});

test('matmul2d accumulate adds into the target, for every variant', async () => {
  const e = await engine();
  const [M, N, K] = [19, 23, 1029];
  const a = operand([K, M], K);
  const b = operand([K, N], K);
  const c0 = randn([M, N], rng);
  const prod = R.matmul(R.transpose2d(a), b);
  const ref = prod.data.map((v, i) => v + c0.data[i]);
  for (const variant of variants) {
    await tidy(async () => {
      const c = gpu(e, c0);
      const r = matmul2d(gpu(e, a), gpu(e, b), { transA: true, accumulate: c, variant });
      assert.ok(r === c, 'returns the target');
      await assertClose(c, ref, FWD, `accumulate ${variant}`);
    });
  }
});

test('matmul2d reads exact-size wrapped buffers (no vec4 slack) and K = 0', async () => {
  const e = await engine();
  const [M, N, K] = [3, 5, 7];
  const a = operand([M, K], K);
  const b = operand([K, N], K);
  const ref = R.matmul(a, b);
  const wrap = (r: RefTensor) => {
    const buf = e.device.createBuffer({ size: r.data.length * 4, usage: 0x80 | 0x04 | 0x08 });
    e.device.queue.writeBuffer(buf, 0, Float32Array.from(r.data));
    return { buf, t: Tensor.wrap(e, buf, r.shape) };
  };
  const wa = wrap(a);
  const wb = wrap(b);
  for (const variant of variants) {
    await tidy(async () => {
      await assertClose(matmul2d(wa.t, wb.t, { variant }), ref.data, FWD, `wrapped ${variant}`);
      const z = matmul2d(Tensor.empty(e, [M, 0]), Tensor.empty(e, [0, N]), { variant });
      await assertClose(z, new Float64Array(M * N), FWD, `K = 0 ${variant}`);
    });
  }
  wa.buf.destroy();
  wb.buf.destroy();
});

test('matmul2d rejects mismatched shapes', async () => {
  const e = await engine();
  tidy(() => {
    assert.throws(() => matmul2d(Tensor.empty(e, [2, 3]), Tensor.empty(e, [4, 2])), /inner dimensions/);
    assert.throws(() => matmul2d(Tensor.empty(e, [2, 3]), Tensor.empty(e, [3, 2]), { accumulate: Tensor.empty(e, [3, 3]) }), /accumulate/);
    const sq = Tensor.empty(e, [3, 3]);
    assert.throws(() => matmul2d(sq, Tensor.empty(e, [3, 3]), { accumulate: sq }), /share storage/);
  });
});

test('matmul2d panel falls back when its windows exceed the buffer limits', async () => {
  const e = await engineWith({ limits: { maxStorageBufferBindingSize: 1 << 18 } });
  try {
    const [M, N, K] = [40, 33, 1100];
    const a = operand([M, K], K);
    const b = operand([K, N], K);
    await tidy(async () => {
      await assertClose(matmul2d(gpu(e, a), gpu(e, b), { variant: 'panel' }), R.matmul(a, b).data, FWD, 'fallback');
    });
  } finally {
    e.destroy();
  }
});

test('matmul gradients (through transposed kernels), small and panel-sized', async () => {
  const e = await engine();
  await checkOp(e, { name: 'matmul 9x5 * 5x6', inputs: [randn([9, 5], rng), randn([5, 6], rng)], gpu: ([a, b]) => matmul(a, b), ref: ([a, b]) => R.matmul(a, b) });
  const [M, N, K] = [256, 64, 96];
  assert.is(defaultVariant(e, M, N, K), e.adapter.software ? 'panel' : 'shared');
  await checkOp(e, {
    name: `matmul ${M}x${K} * ${K}x${N}`,
    inputs: [operand([M, K], K), operand([K, N], K)],
    gpu: ([a, b]) => matmul(a, b),
    ref: ([a, b]) => R.matmul(a, b),
    directional: true,
  });
});

test.run();
