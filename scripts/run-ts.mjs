// Runs a TypeScript entry (examples, tools) by bundling it with esbuild into .build/ first.
import { build } from 'esbuild';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { common } from './esbuild-common.mjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <file.ts> [args...]');
  process.exit(2);
}
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const outfile = resolve('.build/run', basename(entry).replace(/\.ts$/, '.mjs'));
await build({ ...common, platform: 'node', packages: 'external', entryPoints: [entry], outfile });
process.argv = [process.argv[0], outfile, ...args];
await import(pathToFileURL(outfile).href);
