// `npm run bench`: bundles bench/run.ts (WGSL inlined) and runs it with this script's arguments,
// in a child whose stderr drops Dawn's two start-up notices (bin/quiet-dawn.js).
//   node scripts/bench.mjs [--json] [--quick] [--filter TEXT] [--compare OLD.jsonl] [--reps N]
import { build } from 'esbuild';
import { resolve } from 'node:path';
import { runQuiet } from '../bin/quiet-dawn.js';
import { common } from './esbuild-common.mjs';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const out = resolve('.build/bench/main.mjs');
await build({ ...common, platform: 'node', packages: 'external', entryPoints: ['bench/run.ts'], outfile: out });
process.exitCode = await runQuiet([out, ...process.argv.slice(2)]);
