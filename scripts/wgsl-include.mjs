// WGSL includes, resolved at bundle time: a line `#include "lib/x.wgsl"` is replaced by that file's
// text (path relative to the including file; each file once per shader, later includes of it are
// dropped; a cycle is an error). WGSL has no `#`, so the directive can never be valid WGSL by accident.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const DIRECTIVE = /^[ \t]*#include[ \t]+"([^"]+)"[ \t]*(?:\/\/.*)?$/;

/**
 * The WGSL text of `file` with its includes inlined, and every file read (for watch mode).
 * Throws `file:line: message` on a cycle, a missing file or a malformed directive.
 */
export function resolveWgsl(file, read = (f) => readFileSync(f, 'utf8')) {
  const seen = new Set();
  const stack = [];
  const show = (f) => relative(process.cwd(), f) || f;
  const expand = (path) => {
    stack.push(path);
    seen.add(path);
    const lines = read(path).split('\n');
    const out = [];
    lines.forEach((line, i) => {
      if (!/^[ \t]*#/.test(line)) return void out.push(line);
      const m = DIRECTIVE.exec(line);
      if (!m) throw new Error(`${show(path)}:${i + 1}: not an include directive (#include "relative/path.wgsl"): ${line.trim()}`);
      const target = resolve(dirname(path), m[1]);
      if (stack.includes(target)) {
        const cycle = [...stack.slice(stack.indexOf(target)), target].map(show).join(' -> ');
        throw new Error(`${show(path)}:${i + 1}: #include cycle: ${cycle}`);
      }
      if (seen.has(target)) return;
      let text;
      try {
        text = expand(target);
      } catch (e) {
        if (e.code === 'ENOENT') throw new Error(`${show(path)}:${i + 1}: #include "${m[1]}": no such file ${show(target)}`);
        throw e;
      }
      out.push(text);
    });
    stack.pop();
    return out.join('\n');
  };
  const code = expand(resolve(file));
  return { code, files: [...seen] };
}

/** esbuild plugin: `.wgsl` imports load as text with their includes inlined. */
export const wgslInclude = {
  name: 'wgsl-include',
  setup(build) {
    build.onLoad({ filter: /\.wgsl$/ }, (args) => {
      try {
        const { code, files } = resolveWgsl(args.path);
        return { contents: code, loader: 'text', watchFiles: files };
      } catch (e) {
        return { errors: [{ text: e.message }] };
      }
    });
  },
};
