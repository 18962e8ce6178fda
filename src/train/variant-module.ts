// Loads a researcher's variant module (.ts or .js) at run time: bundled with esbuild, its imports of 'semi-drdnet' bound to the running library.
import { existsSync } from 'node:fs';
import { FACTORY_KINDS, type VariantFactories } from './experiment.js';

/** The subset of esbuild's API used here (esbuild is loaded only when a variant names a module). */
interface Esbuild {
  build(opts: Record<string, unknown>): Promise<{ outputFiles: Array<{ text: string }> }>;
}
interface EsbuildFailure {
  errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }>;
}

const LIBRARY = /^semi-drdnet(\/node)?$/;

/**
 * The URL of this package's Node entry, by the package's own name (a package may import itself
 * through its "exports"). In the built CLI and library that entry shares every module with the
 * running code, so the researcher's tensors, ops and autograd nodes are this library's.
 */
function libraryUrl(): string {
  try {
    return import.meta.resolve('semi-drdnet');
  } catch (e) {
    throw new Error(`cannot locate the semi-drdnet package to bind a variant module to (${(e as Error).message})`);
  }
}

async function loadEsbuild(file: string): Promise<Esbuild> {
  try {
    return (await import('esbuild')) as unknown as Esbuild;
  } catch {
    throw new Error(`${file}: variant modules are bundled with esbuild, which is not installed (npm install esbuild)`);
  }
}

/**
 * Bundles `file` (TypeScript or JavaScript, with what it imports; WGSL files as text), binds
 * `semi-drdnet` and `semi-drdnet/node` to this library, and returns its factories. Errors name the
 * file: a missing file, a syntax error (with line and column), no factory exported, or `network`
 * exported together with block factories.
 */
export async function loadVariantModule(file: string): Promise<VariantFactories> {
  if (!existsSync(file)) throw new Error(`${file}: no such variant module`);
  const esbuild = await loadEsbuild(file);
  const lib = libraryUrl();
  let code: string;
  try {
    const out = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      loader: { '.wgsl': 'text' },
      plugins: [
        {
          name: 'semi-drdnet-host',
          setup(b: { onResolve(o: { filter: RegExp }, cb: () => { path: string; external: boolean }): void }) {
            // Runs before tsconfig "paths", so a checkout's mapping to src/ cannot pull in a second copy.
            b.onResolve({ filter: LIBRARY }, () => ({ path: lib, external: true }));
          },
        },
      ],
    });
    code = out.outputFiles[0].text;
  } catch (e) {
    const first = (e as EsbuildFailure).errors?.[0];
    if (!first) throw e;
    const at = first.location ? `${first.location.file}:${first.location.line}:${first.location.column + 1}: ` : `${file}: `;
    throw new Error(`${at}${first.text}`);
  }
  // A data: URL module needs no temporary file; it may import absolute URLs (the library) and Node's built-ins.
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as Record<string, unknown>;
  const found = FACTORY_KINDS.filter((k) => mod[k] !== undefined);
  for (const k of found) if (typeof mod[k] !== 'function') throw new Error(`${file}: the export '${k}' must be a function (a factory), got ${typeof mod[k]}`);
  if (found.length === 0) throw new Error(`${file} exports none of the factories ${FACTORY_KINDS.join(', ')}`);
  if (found.includes('network') && found.length > 1) throw new Error(`${file} exports 'network' together with ${found.filter((k) => k !== 'network').join(', ')}: a whole network replaces every block`);
  return Object.fromEntries(found.map((k) => [k, mod[k]])) as VariantFactories;
}
