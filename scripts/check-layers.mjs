// Checks the source tree's layering: every import in src/ points to the same level or a lower one
// (ARCHITECTURE.md lists them), nothing in src/ imports from outside it except the WGSL in
// shaders/, and there is no import cycle between files. Prints one line per violation.
//   node scripts/check-layers.mjs        (exit 1 on any violation; test/layers.test.ts runs it)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Lowest first. A file may import from its own level or any level listed before it. */
export const LEVELS = ['util', 'io', 'gpu', 'core', 'kernels', 'graph', 'data', 'model', 'train', 'api', 'bench', 'cli', '(entry)'];

const root = resolve('src');

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : /\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The level of a file under src/: its first folder, or '(entry)' for src/index.ts, node.ts, browser.ts. */
const levelOf = (file) => {
  const parts = relative(root, file).split('/');
  return parts.length === 1 ? '(entry)' : parts[0];
};

/** Relative imports and re-exports of a file, type-only ones included (a type cycle is still a cycle). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const out = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gms)) out.push(m[1]);
  for (const m of text.matchAll(/^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm)) out.push(m[1]);
  return out.map((spec) => resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
}

export function checkLayers() {
  const problems = [];
  const graph = new Map();
  for (const file of files(root)) {
    const from = levelOf(file);
    const deps = [];
    for (const target of importsOf(file)) {
      const rel = relative(root, target);
      if (rel.startsWith('..')) {
        if (!/^\.\.\/shaders\/[\w.-]+\.wgsl$/.test(rel)) problems.push(`${relative('.', file)} imports ${relative('.', target)}, outside src/`);
        continue;
      }
      deps.push(target);
      const to = levelOf(target);
      if (!LEVELS.includes(from) || !LEVELS.includes(to)) problems.push(`${relative('.', file)}: level '${!LEVELS.includes(from) ? from : to}' is not in LEVELS`);
      else if (LEVELS.indexOf(to) > LEVELS.indexOf(from)) problems.push(`${relative('.', file)} (${from}) imports ${relative('.', target)} (${to}), a higher level`);
    }
    graph.set(file, deps);
  }
  // Cycles: depth-first search with colours; report each cycle once by its path.
  const state = new Map();
  const stack = [];
  const visit = (f) => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map((p) => relative('.', p)).join(' -> ')}`);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const problems = checkLayers();
  for (const p of problems) console.log(p);
  console.log(problems.length ? `layers: ${problems.length} problem(s)` : 'layers: ok');
  process.exitCode = problems.length ? 1 : 0;
}
