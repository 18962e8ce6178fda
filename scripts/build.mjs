// Builds dist/: the Node library and CLI (dawn.node external), the browser library, and .d.ts types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { common } from './esbuild-common.mjs';

// Chunk names carry a content hash: without a clean start every rebuild leaves the old chunks in
// dist/ and in the packed tarball (14 MB of them were found there).
rmSync('dist/chunks', { recursive: true, force: true });

const nodeEntries = { node: 'src/node.ts' };
if (existsSync('src/cli/main.ts')) nodeEntries.cli = 'src/cli/main.ts';
await build({ ...common, platform: 'node', packages: 'external', entryPoints: nodeEntries, outdir: 'dist', splitting: true, chunkNames: 'chunks/[name]-[hash]' });
await build({ ...common, platform: 'browser', entryPoints: { browser: 'src/browser.ts' }, outdir: 'dist' });
if (!process.argv.includes('--no-types')) {
  rmSync('dist/types', { recursive: true, force: true }); // declarations of removed modules go too
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  // TypeScript 6+ has the WebGPU types in lib.dom; older compilers get them from @webgpu/types
  // (a dependency) through the exports' "types@<6" condition. Including both would clash.
  mkdirSync('dist/types/compat', { recursive: true });
  for (const entry of ['node', 'browser']) {
    writeFileSync(`dist/types/compat/${entry}.d.ts`, `/// <reference types="@webgpu/types" />\nexport * from '../${entry}.js';\n`);
  }
}
