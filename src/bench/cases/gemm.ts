// GEMM cases: the tuned matmul kernels at the contract shape, the backward-pass transposes, and
// each variant forced. Shapes read MxNxK (C[M,N] = A[M,K] B[K,N]); FLOPs = 2*M*N*K.
import { Tensor } from '../../core/tensor.js';
import { matmul2d, type MatmulOptions } from '../../kernels/matmul.js';
import type { BenchCase } from '../case.js';

function gemm(M: number, N: number, K: number, opts: MatmulOptions & { quick?: boolean } = {}): BenchCase {
  const { quick, ...mm } = opts;
  const tags = [mm.transA || mm.transB ? `${mm.transA ? 'T' : 'N'}${mm.transB ? 'T' : 'N'}` : '', mm.variant ?? ''].filter(Boolean);
  return {
    name: 'gemm',
    shape: [`${M}x${N}x${K}`, ...tags].join(' '),
    quick,
    flops: 2 * M * N * K,
    setup(engine) {
      const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
      const a = Tensor.fromData(engine, rand(M * K), mm.transA ? [K, M] : [M, K]);
      const b = Tensor.fromData(engine, rand(K * N), mm.transB ? [N, K] : [K, N]);
      return {
        run: () => matmul2d(a, b, mm).dispose(),
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
  };
}

export const cases: BenchCase[] = [
  gemm(1024, 1024, 1024),
  gemm(256, 256, 256, { quick: true }),
  gemm(256, 256, 256, { transA: true, quick: true }),
  gemm(1024, 1024, 1024, { transA: true }),
  gemm(1024, 1024, 1024, { transB: true }),
  gemm(1024, 1024, 1024, { variant: 'register' }),
  gemm(1024, 1024, 1024, { variant: 'panel' }),
  gemm(1024, 1024, 1024, { variant: 'shared' }),
  gemm(1023, 1021, 1019),
];
