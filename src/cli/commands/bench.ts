// `bench`: the kernel and model benchmark suite (the same runner as `npm run bench`).
import { benchMain } from '../../bench/main.js';

export const help = `usage: semi-drdnet bench [--json] [--quick] [--filter TEXT] [--compare OLD.jsonl] [--reps N] [--list]

Times the kernels (gemm, conv2d fwd/dgrad/wgrad, BN, SE, pooling) and the whole network
(model.infer, model.train_step) on this machine's adapter: median of >= 5 runs after warm-up,
wall clock from encode to completion. --json prints one object per line.`;

export const run = (argv: string[]): Promise<number> => benchMain(argv);
