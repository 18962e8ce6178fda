// Builds dist/: the Node library and CLI (dawn.node external), the browser library, and .d.ts types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { common } from './esbuild-common.mjs';

const nodeEntries = { node: 'src/node.ts' };
if (existsSync('src/cli/main.ts')) nodeEntries.cli = 'src/cli/main.ts';
await build({ ...common, platform: 'node', packages: 'external', entryPoints: nodeEntries, outdir: 'dist', splitting: true, chunkNames: 'chunks/[name]-[hash]' });
await build({ ...common, platform: 'browser', entryPoints: { browser: 'src/browser.ts' }, outdir: 'dist' });
if (!process.argv.includes('--no-types')) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  // TypeScript 6+ has the WebGPU types in lib.dom; older compilers get them from @webgpu/types
  // (a dependency) through the exports' "types@<6" condition. Including both would clash.
  mkdirSync('dist/types/compat', { recursive: true });
  for (const entry of ['node', 'browser']) {
    writeFileSync(`dist/types/compat/${entry}.d.ts`, `/// <reference types="@webgpu/types" />\nexport * from '../${entry}.js';\n`);
  }
}
