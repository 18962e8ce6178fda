// Test runner: bundles test/*.test.ts (WGSL as text, shared chunks so every file sees one engine),
// runs them in one process with uvu, and ends with the plain line "N passed, N failed".
//   node scripts/test.mjs [filter...]      (set TEST_SLOW=1 for test/slow/*.test.ts, TEST_OUT=dir for the bundle)
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runQuiet } from '../bin/quiet-dawn.js';
import { common } from './esbuild-common.mjs';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
// Engines the tests do not create themselves (CLI children, loadDerainer) use default tiles too:
// no timing of candidates and no cache file, so the suite is deterministic and fast.
process.env.SEMI_DRDNET_TUNE ??= '0';
// The tests run in a child whose stderr loses Dawn's start-up notices (bin/quiet-dawn.js).
if (!process.env.SEMI_DRDNET_TEST_CHILD) {
  process.exit(await runQuiet([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { env: { SEMI_DRDNET_TEST_CHILD: '1' } }));
}
const dir = process.env.TEST_SLOW ? 'test/slow' : 'test';
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
// TEST_OUT lets parallel runs (helpers, CI jobs) bundle into folders of their own.
const out = resolve(process.env.TEST_OUT ?? '.build/test');
rmSync(out, { recursive: true, force: true });
await build({
  ...common,
  platform: 'node',
  packages: 'external',
  entryPoints: files.map((f) => join(dir, f)),
  outdir: out,
  splitting: true,
  outExtension: { '.js': '.mjs' },
});

// uvu prints its own totals; count them and restate them in the plain form CI reads.
let text = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  text += String(chunk);
  return write(chunk, ...rest);
};
const { run } = await import('uvu/run');
let crashed = 0;
try {
  await run(files.map((f) => ({ name: f, file: join(out, f.replace(/\.ts$/, '.mjs')) })), {});
} catch (e) {
  crashed = 1;
  console.error(e);
}
process.stdout.write = write;
const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const failed = total - passed - skipped + crashed + (total === 0 ? 1 : 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 ? 1 : 0;
