// WGSL files are bundled as text by esbuild.
declare module '*.wgsl' {
  const code: string;
  export default code;
}
