// esbuild settings shared by the build, the test runner and the bench: WGSL is bundled as text, its
// `#include "lib/..."` lines inlined (scripts/wgsl-include.mjs).
import { wgslInclude } from './wgsl-include.mjs';

export const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  plugins: [wgslInclude],
  sourcemap: 'linked',
  logLevel: 'warning',
};
