// Times conv tile configs on one adapter (default SwiftShader), median of REPS runs.
//   node scripts/run-ts.mjs experiments/swiftshader-tiles.ts [N,C,H,dil] [fwd|dgrad|wgrad] [cfgs...]
// A fwd/dgrad cfg is TMxTN:WG_X (register tiles), s:TMxTN:WGXxWGY:BK (workgroup memory),
// w:TMxTN:WG_X (Winograd), v:TMxTN:WG_X (vec4 rows) or g:TMxTN:WG_X (register tiles, subgroup-shared
// weights); a wgrad cfg is KERNEL:TUxTV:WG_X[:g] with
// KERNEL nhwc, nhwc4 or pixels (:g shares dy through subgroups).
// ADAPTER=lavapipe uses the system driver. Not part of the package or the tests.
import { SWIFTSHADER_ICD } from '../src/gpu/node.js';

if (process.env.ADAPTER !== 'lavapipe') process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const { Engine } = await import('../src/gpu/runtime.js');
await import('../src/node.js');
const { Tensor } = await import('../src/core/tensor.js');
const { conv2dForward, conv2dBackwardData } = await import('../src/kernels/conv/forward.js');
const { conv2dBackwardFilter } = await import('../src/kernels/conv/wgrad.js');
type Cfg = import('../src/kernels/conv/config.js').ConvTileConfig;
type WCfg = import('../src/kernels/conv/config.js').WgradTileConfig;

const [N, C, H, D] = (process.argv[2] ?? '1,64,64,1').split(',').map(Number);
const kind = process.argv[3] ?? 'dgrad';
const specs = process.argv.slice(4);
const reps = Number(process.env.REPS ?? 3);
const engine = await Engine.create({ tune: false });
console.error(engine.adapter.description ?? JSON.stringify(engine.adapter));
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const x = Tensor.fromData(engine, rnd(N * C * H * H), [N, C, H, H]);
const w = Tensor.fromData(engine, rnd(C * C * 9), [C, C, 3, 3]);
const opts = { padding: D, dilation: D };
function parse(s: string): Cfg | WCfg {
  const p = s.split(':');
  if (kind === 'wgrad') {
    const [tu, tv] = p[1].split('x').map(Number);
    return { kernel: p[0] as WCfg['kernel'], wgX: Number(p[2]), wgY: 1, tu, tv, tm: 4, tn: 4, bk: 16, targetWorkgroups: 64, maxSplitPixels: 8192, ...(p[3] === 'g' ? { subgroups: true } : {}) };
  }
  if (p[0] === 's') {
    const [tm, tn] = p[1].split('x').map(Number);
    const [wgX, wgY] = p[2].split('x').map(Number);
    return { smem: true, wgX, wgY, tm, tn, bk: Number(p[3] ?? 16) };
  }
  if (p[0] === 'w' || p[0] === 'v' || p[0] === 'g') {
    const [tm, tn] = p[1].split('x').map(Number);
    const kind = p[0] === 'w' ? { algo: 'winograd' as const } : p[0] === 'v' ? { algo: 'vec4' as const } : { subgroups: true };
    return { ...kind, smem: false, wgX: Number(p[2]), wgY: 1, tm, tn, bk: 16 };
  }
  const [tm, tn] = p[0].split('x').map(Number);
  return { smem: false, wgX: Number(p[1]), wgY: 1, tm, tn, bk: 16 };
}
const flop = 2 * N * C * C * 9 * H * H;
let ref: Float32Array | null = null;
for (const s of specs) {
  const config = parse(s);
  const run = () =>
    kind === 'fwd' ? conv2dForward(x, w, null, { ...opts, config: config as Cfg })
    : kind === 'dgrad' ? conv2dBackwardData(x, w, [N, C, H, H], { ...opts, config: config as Cfg })
    : conv2dBackwardFilter(x, x, [C, C, 3, 3], { ...opts, config: config as WCfg });
  try {
    const t0 = performance.now();
    const y0 = run();
    const out = await y0.read();
    y0.dispose();
    const compile = performance.now() - t0;
    let err = 0;
    if (ref) for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(out[i] - ref[i]));
    else ref = out;
    const ts: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      run().dispose();
      await engine.sync();
      ts.push(performance.now() - t);
    }
    ts.sort((a, b) => a - b);
    const med = ts[Math.floor(ts.length / 2)];
    console.log(JSON.stringify({ kind, shape: `${N}x${C}x${H}x${H} d${D}`, cfg: s, ms: +med.toFixed(1), gflops: +(flop / med / 1e6).toFixed(3), first_ms: Math.round(compile), maxdiff: +err.toExponential(2) }));
  } catch (e) {
    console.log(JSON.stringify({ kind, cfg: s, error: String((e as Error).message).slice(0, 200) }));
  }
}
