// The micro-benchmark of experiments/subgroup-weights.md: what a load costs on lavapipe next to a
// multiply-add. Each invocation runs ITERS iterations of K independent fma chains; the forms differ
// only in where the multiplier comes from. Prints GFLOP/s (2*K fmas per iteration), median of 4.
//   node scripts/run-ts.mjs experiments/lavapipe-loads.ts [form,...]     (env K=32 ITERS=512)
// Forms: none (a register; the loop bound from a uniform buffer, as in every form but the next),
// const-bound (none with a constant bound), storage (one scalar storage load per fma, same
// address in every lane), storage4 (one vec4 per 4 fmas, same address), uniform4 (vec4 from a
// uniform buffer), workgroup4 (vec4 from workgroup memory), gather (one load per iteration, a
// different address per lane, used by all K fmas), gather2 (two such loads, each used by K/2),
// gather4 (one vec4 per lane, a different address per lane), gather1x4 (the same four values as
// four scalar gathers), shuffle (one gather and one subgroupShuffle of it from the next lane),
// shuffleDown (the same with subgroupShuffleDown), subgroup (one scalar per 8 fmas, a different
// one per lane, handed round with subgroupBroadcast). Not part of the package or the tests.
import '../src/node.js';
import { dawnGpu } from '../src/node.js';

const K = Number(process.env.K ?? 32);
const ITERS = Number(process.env.ITERS ?? 512);
const N = 64 * 1024;
const adapter = (await dawnGpu().requestAdapter())!;
const device = await adapter.requestDevice({ requiredFeatures: adapter.features.has('subgroups') ? ['subgroups'] : [] });
console.log(adapter.info.description, `K=${K} ITERS=${ITERS}`);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const chains = (f: (i: number) => string) => range(K).map((i) => `a${i} = fma(${f(i)}, m, a${i});`).join(' ');
const vec4s = (src: (i: number) => string) => range(K / 4).map((i) => `let w${i} = ${src(i)};`).join(' ') + ' ' + chains((i) => `w${i >> 2}[${i & 3}]`);
const bodies: Record<string, string> = {
  none: `for (var i = 0u; i < p.n; i++) { ${chains((i) => `v${i % 4}`)} }`,
  'const-bound': `for (var i = 0u; i < ${ITERS}u; i++) { ${chains((i) => `v${i % 4}`)} }`,
  storage: `for (var i = 0u; i < p.n; i++) { ${chains((i) => `W[i * ${K}u + ${i}u]`)} }`,
  storage4: `for (var i = 0u; i < p.n; i++) { ${vec4s((i) => `W4[i * ${K / 4}u + ${i}u]`)} }`,
  uniform4: `for (var i = 0u; i < p.n; i++) { ${vec4s((i) => `U4[(i * ${K / 4}u + ${i}u) & 1023u]`)} }`,
  workgroup4: `for (var i = 0u; i < p.n; i++) { ${vec4s((i) => `S4[(i * ${K / 4}u + ${i}u) & 255u]`)} }`,
  gather: `for (var i = 0u; i < p.n; i++) { let xv = X[(gid.x + i * 64u) & 65535u]; ${chains(() => 'xv')} }`,
  gather2: `for (var i = 0u; i < p.n; i++) { let xv = X[(gid.x + i * 64u) & 65535u]; let xs = X[(gid.x + i * 64u + 1u) & 65535u]; ${chains((i) => (i & 1 ? 'xs' : 'xv'))} }`,
  gather4: `for (var i = 0u; i < p.n; i++) { let xq = X4[(gid.x + i * 64u) & 16383u]; ${chains((i) => `xq[${i & 3}]`)} }`,
  gather1x4: `for (var i = 0u; i < p.n; i++) { ${range(4).map((k) => `let x${k} = X[((gid.x + i * 64u) * 4u + ${k}u) & 65535u];`).join(' ')} ${chains((i) => `x${i & 3}`)} }`,
  shuffle: `for (var i = 0u; i < p.n; i++) { let xv = X[(gid.x + i * 64u) & 65535u]; let xs = subgroupShuffle(xv, (sgl + 1u) & 7u); ${chains((i) => (i & 1 ? 'xs' : 'xv'))} }`,
  shuffleDown: `for (var i = 0u; i < p.n; i++) { let xv = X[(gid.x + i * 64u) & 65535u]; let xs = subgroupShuffleDown(xv, 1u); ${chains((i) => (i & 1 ? 'xs' : 'xv'))} }`,
  subgroup: `for (var i = 0u; i < p.n; i++) { ${range(K / 8).map((h) => `let s${h} = W[i * ${K}u + ${h * 8}u + sgl % 8u];`).join(' ')} ${chains((i) => `subgroupBroadcast(s${i >> 3}, ${i & 7}u)`)} }`,
};

function shader(form: string): string {
  const sg = /subgroup|shuffle/.test(form);
  return `${sg ? 'enable subgroups;' : ''}
struct P { n: u32, m: f32, v: vec4f }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> W4: array<vec4f>;
@group(0) @binding(5) var<uniform> U4: array<vec4f, 1024>;
@group(0) @binding(6) var<storage, read> X4: array<vec4f>;
var<workgroup> S4: array<vec4f, 256>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) lid: u32${sg ? ', @builtin(subgroup_invocation_id) sgl: u32' : ''}) {
  ${form === 'workgroup4' ? 'for (var t = lid; t < 256u; t += 64u) { S4[t] = vec4f(f32(t)); } workgroupBarrier();' : ''}
  let m = p.m + f32(gid.x) * 1e-9; let v0 = p.v.x; let v1 = p.v.y; let v2 = p.v.z; let v3 = p.v.w;
  ${range(K).map((i) => `var a${i} = f32(${i}) * 0.001;`).join(' ')}
  ${bodies[form]}
  out[gid.x] = ${range(K).map((i) => `a${i}`).join(' + ')};
}`;
}

const buffer = (size: number, usage: number) => device.createBuffer({ size, usage });
const out = buffer(N * 4, GPUBufferUsage.STORAGE);
const w = buffer(4 * ITERS * K + 16, GPUBufferUsage.STORAGE);
const x = buffer(65536 * 4, GPUBufferUsage.STORAGE);
const u4 = buffer(16384, GPUBufferUsage.UNIFORM);
const params = buffer(32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
const p = new ArrayBuffer(32);
new Uint32Array(p)[0] = ITERS;
new Float32Array(p)[1] = 0.999;
new Float32Array(p, 16).set([0.1, 0.2, 0.3, 0.4]);
device.queue.writeBuffer(params, 0, p);
const resources: Array<[RegExp, number, GPUBuffer]> = [[/W\[/, 2, w], [/X\[/, 3, x], [/W4\[/, 4, w], [/U4\[/, 5, u4], [/X4\[/, 6, x]];

for (const form of (process.argv[2] ?? Object.keys(bodies).join(',')).split(',')) {
  if (!(form in bodies)) throw new Error(`unknown form ${form} (${Object.keys(bodies).join(', ')})`);
  const code = shader(form);
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params } }, { binding: 1, resource: { buffer: out } }];
  for (const [use, binding, buf] of resources) if (use.test(code)) entries.push({ binding, resource: { buffer: buf } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(N / 64);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = (times[1] + times[2]) / 2;
  console.log(JSON.stringify({ form, K, ms: Number(ms.toFixed(1)), gflops: Number(((2 * N * ITERS * K) / ms / 1e6).toFixed(2)) }));
}
process.exit(0);
