// The shape of one benchmark case; families register theirs in src/bench/cases/<family>.ts.
import type { Engine } from '../gpu/runtime.js';

export interface BenchCase {
  /** Contract name: gemm, conv2d.fwd, conv2d.dgrad, conv2d.wgrad, bn.fwd, se.fwd, model.infer, ... */
  name: string;
  /** Human-readable shape, e.g. '1x64x128x128 64->64 k3 d3'. */
  shape: string;
  /** Part of the one-minute `--quick` set (CI and the browser bench page run it). */
  quick?: boolean;
  /** Floating-point operations per run (reported as GFLOP/s). */
  flops?: number;
  /** Bytes moved per run (reported as GB/s when there is no FLOP count). */
  bytes?: number;
  /** Image pixels processed per run (whole-network cases also report ms per megapixel). */
  pixels?: number;
  /**
   * Allocates inputs once. `run` records one complete execution (all passes, split-K reductions
   * included) without waiting; the harness times encode-to-completion around it.
   */
  setup(engine: Engine): BenchRun | Promise<BenchRun>;
}

export interface BenchRun {
  /** May resolve later (whole-image inference reads tiles back); the harness awaits it. */
  run(): void | Promise<void>;
  dispose(): void;
}
