// `bench`: the kernel and model benchmark suite (the same runner as `npm run bench`).
import { benchMain } from '../../bench/main.js';

export const help = `usage: semi-drdnet bench [--json] [--quick] [--filter TEXT] [--exclude TEXT] [--compare OLD.jsonl] [--reps N] [--list] [--no-tune] [--show-config] [--profile] [--swiftshader]

Times the kernels (gemm, conv2d fwd/dgrad/wgrad, BN, SE, pooling) and the whole network
(model.infer, model.train_step) on this machine's adapter: median of >= 5 runs after warm-up,
wall clock from encode to completion. --json prints one object per line, with the conv tile
config each case ran with. --filter and --exclude match a case's name or shape and may be
repeated (--filter conv2d --filter gemm: either). Conv shape classes met for the first time on
this adapter are tuned after the warm-up and cached (--no-tune: defaults only); --show-config
prints the configs.
--profile runs each case once more with every dispatch timed on the GPU (timestamp queries) and
prints the GPU time per kernel label (--json: a "kernels" list in each row). --swiftshader runs on
Chromium's SwiftShader (the adapter Chrome falls back to without a GPU) instead of the system's
Vulkan driver.`;

export const run = (argv: string[]): Promise<number> => benchMain(argv);
