// Builds the static pages into dist/web/: bundles web/src (WGSL inlined), copies the HTML/CSS, the
// bundled weights, the synthetic pairs and a clean held-out example photo as local assets, and
// writes assets/manifest.json.
//   node scripts/build-web.mjs [--out DIR] [--no-pairs] [--no-weights] [--minify]
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { common } from './esbuild-common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUT = join(root, 'dist', 'web');
const WEIGHTS = 'weights/semi-drdnet-tiny.safetensors';
const STATIC = ['index.html', 'bench.html', 'style.css'];
/** The synthetic example's clean photo: held out from every training set, so its PSNR means something. */
const EXAMPLE = 'data/photos/heldout/chelsea.png';

/** Bundles the pages into `out`; returns the manifest it wrote. */
export async function buildWeb({ out = DEFAULT_OUT, pairs = true, weights = true, minify = false } = {}) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  await build({
    ...common,
    platform: 'browser',
    entryPoints: { main: join(root, 'web/src/main.ts'), bench: join(root, 'web/src/bench.ts') },
    outdir: out,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    minify,
    absWorkingDir: root,
  });
  for (const f of STATIC) copyFileSync(join(root, 'web', f), join(out, f));
  const manifest = { weights: null, pairs: [], example: null };
  if (existsSync(join(root, EXAMPLE))) {
    copyFileSync(join(root, EXAMPLE), join(out, 'assets', 'example-clean.png'));
    manifest.example = 'assets/example-clean.png';
  }
  if (weights && existsSync(join(root, WEIGHTS))) {
    copyFileSync(join(root, WEIGHTS), join(out, 'assets', 'semi-drdnet-tiny.safetensors'));
    manifest.weights = 'assets/semi-drdnet-tiny.safetensors';
  }
  if (pairs) manifest.pairs = await writePairs(join(out, 'assets', 'pairs'));
  writeFileSync(join(out, 'assets', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The labelled half of adaptation: the committed pairs in web/assets/pairs, or ones made now. */
async function writePairs(dir) {
  mkdirSync(dir, { recursive: true });
  const committed = join(root, 'web', 'assets', 'pairs');
  if (existsSync(committed)) {
    const names = readdirSync(committed).filter((f) => f.endsWith('-rainy.png')).sort();
    if (names.length > 0) {
      for (const f of readdirSync(committed)) copyFileSync(join(committed, f), join(dir, f));
      return names.map((f) => ({ rainy: `assets/pairs/${f}`, clean: `assets/pairs/${f.replace(/-rainy\.png$/, '-clean.png')}` }));
    }
  }
  // The pairs `adapt` uses too (src/train/adapt-pairs.ts: data/photos/train, fixed recipes and seed).
  // Per process, so concurrent builds (parallel test runs) never import each other's half-written file.
  const gen = join(root, '.build', 'web', `adapt-pairs-${process.pid}.mjs`);
  await build({ ...common, sourcemap: false, platform: 'node', packages: 'external', entryPoints: [join(root, 'src/train/adapt-pairs-node.ts')], outfile: gen, absWorkingDir: root });
  try {
    const { writeAdaptPairs } = await import(pathToFileURL(gen).href);
    return await writeAdaptPairs(dir);
  } finally {
    rmSync(gen, { force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const out = i >= 0 ? resolve(args[i + 1]) : DEFAULT_OUT;
  const m = await buildWeb({ out, pairs: !args.includes('--no-pairs'), weights: !args.includes('--no-weights'), minify: args.includes('--minify') });
  console.log(`web: built ${out} (weights: ${m.weights ?? 'none bundled'}, ${m.pairs.length} synthetic pairs)`);
}
