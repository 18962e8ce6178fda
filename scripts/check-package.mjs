// The package as users consume it: pack, install the tarball into a scratch project outside the
// repo, type-check strict consumers (no skipLibCheck) for Node and for a browser bundle, run the
// Node consumer and the shipped examples from node_modules, bundle the browser consumer.
//   node scripts/check-package.mjs [--keep]     (CI runs it after the tests; ends "N passed, N failed")
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { dawnNoticeFilter } from '../bin/quiet-dawn.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const repo = resolve('.');
const tsc = join(repo, 'node_modules/typescript/bin/tsc');
const scratch = mkdtempSync(join(tmpdir(), 'semi-drdnet-consumer-'));
const results = [];

/** One named check; a command's output is shown only on failure (Dawn's notices dropped). */
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push([name, false]);
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message;
    console.log(`FAIL ${name}\n${dawnNoticeFilter()(`${out}\n`).trimEnd()}`);
  }
}
const sh = (cmd, args, cwd = scratch) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: 'pipe', env: process.env });
const strict = (extra) => ({ compilerOptions: { target: 'ES2022', strict: true, skipLibCheck: false, noEmit: true, ...extra } });

let tarball, packed;
await step('npm pack (prepack builds dist and types)', () => {
  packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', scratch], repo))[0];
  tarball = join(scratch, packed.filename);
});
await step('the tarball ships only chunks the entries import', () => {
  const files = packed.files.map((f) => f.path);
  const entries = files.filter((f) => /^dist\/[^/]+\.js$/.test(f)).map((f) => readFileSync(join(repo, f), 'utf8')).join('\n');
  const stale = files.filter((f) => /^dist\/chunks\/.+\.js$/.test(f) && !entries.includes(f.slice('dist/'.length)));
  if (stale.length) throw new Error(`unreferenced chunks in the package: ${stale.join(', ')}`);
});
await step('install the tarball into a scratch project', () => {
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // @types/node at the repo's version, for the consumer's own node:fs / node:assert imports.
  const typesNode = JSON.parse(readFileSync(join(repo, 'node_modules/@types/node/package.json'), 'utf8')).version;
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, `@types/node@${typesNode}`]);
  mkdirSync(join(scratch, 'src'));
  for (const f of ['node.ts', 'browser.ts', 'browser-types.ts']) cpSync(join(repo, 'test/consumer', f), join(scratch, 'src', f));
});
await step('Node consumer type-checks (strict, NodeNext, no skipLibCheck)', () => {
  const cfg = strict({ module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], types: ['node'], noEmit: false, rootDir: 'src', outDir: 'out' });
  writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({ ...cfg, files: ['src/node.ts'] }));
  sh(process.execPath, [tsc, '-p', '.']);
});
await step('Node consumer runs: custom op, Sequential + SqueezeExcite + DilatedContextBlock trained with Adam, saveModule/loadModule, loadDerainer, readImage/writeImage', () => {
  const out = sh(process.execPath, ['out/node.js']);
  if (!/consumer: ok/.test(out)) throw new Error(out);
});
await step('browser consumer type-checks (bundler resolution gets the browser entry; Node-only exports refused)', () => {
  writeFileSync(join(scratch, 'tsconfig.browser.json'), JSON.stringify({ ...strict({ module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2023', 'DOM'], types: [] }), files: ['src/browser.ts', 'src/browser-types.ts'] }));
  sh(process.execPath, [tsc, '-p', 'tsconfig.browser.json']);
});
await step('browser consumer bundles with esbuild (no Node or dawn.node code inside)', async () => {
  const r = await build({ absWorkingDir: scratch, entryPoints: ['src/browser.ts'], bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
  const js = r.outputFiles[0].text;
  // Imports only: the async-context probe names node:async_hooks in a string, behind a runtime check.
  const bad = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\(\s*)["'](?:webgpu|node:[\w/]+|pngjs|jpeg-js|esbuild)["']/.exec(js);
  if (bad) throw new Error(`the browser bundle imports ${bad[0]}`);
});
await step('shipped example runs from node_modules (examples/fit-line.mjs)', () => {
  const out = sh(process.execPath, ['node_modules/semi-drdnet/examples/fit-line.mjs']);
  if (!/device still usable: true/.test(out)) throw new Error(out);
});
await step('shipped example runs from node_modules (examples/derain.mjs, bundled weights)', () => {
  const out = sh(process.execPath, ['node_modules/semi-drdnet/examples/derain.mjs', 'node_modules/semi-drdnet/examples/rainy-chelsea.png', 'derained.png']);
  if (!/-> derained\.png/.test(out)) throw new Error(out);
});
await step('the installed CLI answers --version and derains quietly (nothing on stderr)', () => {
  const version = sh('npx', ['--no-install', 'semi-drdnet', '--version']).trim();
  if (version !== JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version) throw new Error(`--version printed '${version}'`);
  const r = execFileSync('sh', ['-c', 'npx --no-install semi-drdnet derain node_modules/semi-drdnet/examples/rainy-chelsea.png -o cli-out.png 2>stderr.txt; cat stderr.txt'], { cwd: scratch, encoding: 'utf8' });
  if (/Warning|Error|at /.test(r)) throw new Error(`stderr: ${r}`);
});

// ---- experiments (issue 15): a variant whose factory is a .ts file next to the experiment file ----
await step('the installed CLI runs an experiment with a variant from a .ts module next to the file (esbuild from the install)', () => {
  mkdirSync(join(scratch, 'exp'), { recursive: true });
  cpSync(join(repo, 'experiments/cbam-gate.ts'), join(scratch, 'exp/gate.ts'));
  const base = { preset: 'micro', steps: 1, batch: 2, patch: 32, seeds: [1], contrastive: false };
  writeFileSync(join(scratch, 'exp/e.json'), JSON.stringify({ base, variants: [{ name: 'baseline' }, { name: 'gate', module: './gate.ts' }] }));
  sh('npx', ['--no-install', 'semi-drdnet', 'experiment', 'exp/e.json', '-o', 'exp-out']);
  const [a, b] = JSON.parse(readFileSync(join(scratch, 'exp-out/results.json'), 'utf8')).variants;
  if (!(b.name === 'gate' && b.params > a.params && Number.isFinite(b.psnr_mean))) throw new Error(`unexpected results: ${JSON.stringify([a, b])}`);
});

if (!process.argv.includes('--keep')) rmSync(scratch, { recursive: true, force: true });
else console.log(`kept ${scratch}`);
const failed = results.filter(([, ok]) => !ok).length;
console.log(`package: ${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
