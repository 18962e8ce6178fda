// Writes clean images of man-made line structures (brick bonds, tiles, fences, window grids) at
// rain-like angles, meant to teach a model trained on a few photos that long, regular thin lines are
// scene, not streaks (the bundled model erases brick mortar that runs in the streaks' direction).
// As stage-2 training data it did not stop that: experiments/line-structures.md.
//   node scripts/run-ts.mjs experiments/line-structures.ts <out-dir> [count=16] [size=192] [seed=1]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeImage } from '../src/io/image-node.js';
import { Rng } from '../src/util/rng.js';

const [outDir, countArg = '16', sizeArg = '192', seedArg = '1'] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: line-structures.ts <out-dir> [count] [size] [seed]');
  process.exit(2);
}
const count = Number(countArg);
const size = Number(sizeArg);
const rng = new Rng(Number(seedArg));
mkdirSync(outDir, { recursive: true });

type Rgb = [number, number, number];
/** Which cell a point of the unrotated pattern plane falls in, and whether it is on a joint line. */
type Pattern = (u: number, v: number) => { cell: number; joint: boolean };

const KINDS = ['running-bond', 'stack-bond', 'bars', 'windows'] as const;

function pattern(kind: (typeof KINDS)[number]): Pattern {
  const w = rng.uniform(10, 42); // cell length along u
  const h = kind === 'bars' ? Infinity : rng.uniform(5, 18); // cell height along v (bars: none)
  const joint = rng.uniform(1, 3); // line width in pixels
  const frame = kind === 'windows' ? rng.uniform(2, 4) : joint;
  const hash = (i: number, j: number) => (Math.imul(i, 73856093) ^ Math.imul(j, 19349663)) >>> 0;
  return (u, v) => {
    const row = Number.isFinite(h) ? Math.floor(v / h) : 0;
    const shift = kind === 'running-bond' && row % 2 !== 0 ? w / 2 : 0;
    const col = Math.floor((u + shift) / w);
    const du = u + shift - col * w;
    const dv = Number.isFinite(h) ? v - row * h : h;
    const width = kind === 'windows' ? frame : joint;
    return { cell: hash(col, row), joint: du < width || dv < width };
  };
}

/** A muted colour: a brightness in [lo, hi) and a small tint (photos of walls are rarely saturated). */
function colour(lo: number, hi: number, tint: number): Rgb {
  const l = rng.uniform(lo, hi);
  return [0, 1, 2].map(() => Math.min(1, Math.max(0, l + tint * rng.normal()))) as Rgb;
}

/** A cell's colour: the wall's base, brighter or darker as a whole, slightly tinted. */
function jitter(base: Rgb): Rgb {
  const d = 0.05 * rng.normal();
  return base.map((c) => Math.min(1, Math.max(0, c + d + 0.015 * rng.normal()))) as Rgb;
}

for (let n = 0; n < count; n++) {
  const kind = KINDS[n % KINDS.length];
  const at = pattern(kind);
  // Mostly within the streaks' -55..55 degrees of vertical (lines along u and v both occur).
  const angle = (rng.uniform(-60, 60) * Math.PI) / 180;
  const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
  const cellBase = colour(0.2, 0.65, 0.06);
  const lineBase = rng.next() < 0.6 ? colour(0.65, 0.9, 0.02) : colour(0.05, 0.2, 0.02);
  const cells = new Map<number, Rgb>();
  const data = new Float32Array(3 * size * size);
  const ss = 3; // supersampling per axis: lines of 1-3 px stay anti-aliased like a photo's
  const shade = [rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15)];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const acc: Rgb = [0, 0, 0];
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const px = x + (sx + 0.5) / ss + 1000;
          const py = y + (sy + 0.5) / ss + 1000;
          const { cell, joint } = at(ca * px + sa * py, -sa * px + ca * py);
          let c = joint ? lineBase : cells.get(cell);
          if (!c) cells.set(cell, (c = jitter(cellBase)));
          for (let k = 0; k < 3; k++) acc[k] += c[k];
        }
      }
      const light = 1 + shade[0] * (x / size - 0.5) + shade[1] * (y / size - 0.5);
      for (let k = 0; k < 3; k++) {
        const v = (acc[k] / (ss * ss)) * light + 0.02 * rng.normal(); // sensor-like grain
        data[k * size * size + y * size + x] = Math.min(1, Math.max(0, v));
      }
    }
  }
  await writeImage(join(outDir, `${kind}-${String(n).padStart(2, '0')}.png`), { width: size, height: size, data });
}
console.log(`line-structures: ${count} images (${size}x${size}) -> ${outDir}`);
