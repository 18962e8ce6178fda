// esbuild settings shared by the build, the test runner and the bench: WGSL is bundled as text.
export const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  sourcemap: 'linked',
  logLevel: 'warning',
};
