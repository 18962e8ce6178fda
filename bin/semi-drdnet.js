#!/usr/bin/env node
// Launches the CLI from dist/ (building it first in a source checkout), with Dawn's start-up
// notices kept off stderr (see quiet-dawn.js).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { runQuiet } from './quiet-dawn.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli.js');

function newestSource(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (existsSync(join(root, 'src'))) {
  const stale = !existsSync(cli) || Math.max(newestSource(join(root, 'src')), newestSource(join(root, 'shaders'))) > statSync(cli).mtimeMs;
  if (stale) execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--no-types'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
process.exitCode = await runQuiet([cli, ...process.argv.slice(2)]);
