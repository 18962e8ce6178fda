// `npm run bench`: bundles bench/run.ts (WGSL as text) and runs it with this script's arguments.
//   node scripts/bench.mjs [--json] [--quick] [--filter TEXT] [--compare OLD.jsonl] [--reps N]
import { build } from 'esbuild';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { common } from './esbuild-common.mjs';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const out = resolve('.build/bench/main.mjs');
await build({ ...common, platform: 'node', packages: 'external', entryPoints: ['bench/run.ts'], outfile: out });
await import(pathToFileURL(out).href);
