// The experiment of experiments/lavapipe-codegen.md: the shipped register conv kernel against generated
// WGSL variants, same packed weights, output compared with the first variant, median of 5 runs.
//   node scripts/run-ts.mjs experiments/lavapipe-codegen.ts [Ci,Co,H,dil] [variant,...]
// A variant is kind:TMxTN:WG_X with kind `base` (shipped), `gen` (tile loops written out) or `unr`
// (taps and channels unrolled too). Environment: XMODE=gather|nosel|uniform|noload (how the input is
// read; the last two time wrong outputs), UNROLL=4 (channel loop unrolled), DOT=1 (4 channels per
// dot()), NOFMA=1 (a*b+c instead of fma). Not part of the package or the tests.
import '../src/node.js';
import code from '../shaders/conv2d.wgsl';
import { Engine } from '../src/gpu/runtime.js';
import { Tensor } from '../src/core/tensor.js';
import { packWeights } from '../src/kernels/conv/pack.js';

const [C, CO, H, DIL] = (process.argv[2] ?? '16,16,256,1').split(',').map(Number);
const variants = (process.argv[3] ?? 'base:16x16:32,gen:16x16:32,gen:16x8:32,gen:16x4:32,gen:8x8:32,gen:8x4:64,gen:16x2:64').split(',');
const engine = await Engine.create({ tune: false });
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const x = Tensor.fromData(engine, rnd(C * H * H), [1, C, H, H]);
const w = Tensor.fromData(engine, rnd(CO * C * 9), [CO, C, 3, 3]);

/** The generated kernel's end: the accumulators into the shipped `store`, and the entry point. */
function finish(L: string[], TM: number, TN: number): string {
  L.push('  var acc: Tile;');
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) L.push(`  acc[${i}][${j}] = a_${i}_${j};`);
  L.push('  store(&acc, n, q0, co0);');
  L.push('}');
  L.push(`@compute @workgroup_size(WG_X, 1) fn convG(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) { convGen(wg, lid.x); }`);
  return L.join('\n');
}

function gen(TM: number, TN: number): string {
  const L: string[] = [];
  L.push('fn convGen(wg: vec3u, lane: u32) {');
  L.push('  let HWq = p.Hq * p.Wq; let HWi = p.Hi * p.Wi; let KK = p.KH * p.KW;');
  L.push(`  let co0 = wg.x * ${TM}u; let n = wg.z; let q0 = wg.y * WG_X * ${TN}u + lane;`);
  for (let j = 0; j < TN; j++) {
    L.push(`  let q_${j} = min(q0 + ${j}u * WG_X, HWq - 1u); let qy_${j} = i32(q_${j} / p.Wq) * p.sh; let qx_${j} = i32(q_${j} % p.Wq) * p.sw;`);
  }
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) L.push(`  var a_${i}_${j} = 0.0;`);
  L.push('  let xb = p.xOff + n * p.Ci * HWi;');
  L.push('  for (var b = 0u; b < p.NB; b++) {');
  L.push('    let wb = b * p.Ci * KK * p.CoP + co0;');
  L.push('    for (var ky = 0u; ky < p.KH; ky++) { for (var kx = 0u; kx < p.KW; kx++) {');
  for (let j = 0; j < TN; j++) {
    L.push(`      let iy_${j} = src(qy_${j} - p.ph[b] + i32(ky) * p.dh[b], p.divh, p.Hi); let ix_${j} = src(qx_${j} - p.pw[b] + i32(kx) * p.dw[b], p.divw, p.Wi);`);
    L.push(`      let ok_${j} = iy_${j} >= 0 && ix_${j} >= 0; let off_${j} = xb + select(0u, u32(iy_${j}) * p.Wi + u32(ix_${j}), ok_${j});`);
  }
  L.push('      let tap = ky * p.KW + kx;');
  const U = process.env.DOT ? 4 : Number(process.env.UNROLL ?? 1);
  L.push(`      for (var c0 = 0u; c0 < p.Ci; c0 += ${U}u) {`);
  if (process.env.DOT) {
    // 4 input channels per step, reduced with dot(): one accumulator update per 4 multiply-adds.
    for (let u = 0; u < 4; u++) {
      for (let j = 0; j < TN; j++) L.push(`        let x${u}_${j} = select(0.0, X[off_${j} + (c0 + ${u}u) * HWi], ok_${j});`);
      L.push(`        let w0${u} = (wb + ((c0 + ${u}u) * KK + tap) * p.CoP) / 4u;`);
      for (let i4 = 0; i4 < TM / 4; i4++) L.push(`        let w${u}_${i4} = Wv[w0${u} + ${i4}u];`);
    }
    for (let j = 0; j < TN; j++) L.push(`        let xv_${j} = vec4(x0_${j}, x1_${j}, x2_${j}, x3_${j});`);
    const comp = ['x', 'y', 'z', 'w'];
    for (let i4 = 0; i4 < TM / 4; i4++) for (let k = 0; k < 4; k++) {
      const i = 4 * i4 + k;
      L.push(`        let wv_${i} = vec4(w0_${i4}.${comp[k]}, w1_${i4}.${comp[k]}, w2_${i4}.${comp[k]}, w3_${i4}.${comp[k]});`);
      for (let j = 0; j < TN; j++) L.push(`        a_${i}_${j} += dot(wv_${i}, xv_${j});`);
    }
  }
  for (let u = 0; u < (process.env.DOT ? 0 : U); u++) {
    L.push(`        { let c = c0 + ${u}u;`);
    for (let j = 0; j < TN; j++) L.push(`        let x_${j} = select(0.0, X[off_${j} + c * HWi], ok_${j});`);
    L.push('        let w0 = (wb + (c * KK + tap) * p.CoP) / 4u;');
    for (let i4 = 0; i4 < TM / 4; i4++) {
      L.push(`        let w_${i4} = Wv[w0 + ${i4}u];`);
      const comp = ['x', 'y', 'z', 'w'];
      for (let k = 0; k < 4; k++) for (let j = 0; j < TN; j++) { const i = 4 * i4 + k; L.push(`        a_${i}_${j} = fma(w_${i4}.${comp[k]}, x_${j}, a_${i}_${j});`); }
    }
    L.push('        }');
  }
  L.push('      }');
  L.push('    } }');
  L.push('  }');
  return finish(L, TM, TN);
}


function gen2(TM: number, TN: number): string {
  // fully unrolled over taps and input channels (Ci = C, 3x3, pad = dil = DIL)
  const L: string[] = [];
  L.push('fn convGen(wg: vec3u, lane: u32) {');
  L.push('  let HWq = p.Hq * p.Wq; let HWi = p.Hi * p.Wi;');
  L.push(`  let co0 = wg.x * ${TM}u; let n = wg.z; let q0 = wg.y * WG_X * ${TN}u + lane;`);
  for (let j = 0; j < TN; j++) L.push(`  let q_${j} = min(q0 + ${j}u * WG_X, HWq - 1u); let qy_${j} = i32(q_${j} / p.Wq); let qx_${j} = i32(q_${j} % p.Wq);`);
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) L.push(`  var a_${i}_${j} = 0.0;`);
  L.push('  let xb = p.xOff + n * p.Ci * HWi;');
  L.push('  let wb = co0 / 4u;');
  for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
    const t = ky * 3 + kx;
    L.push('  {');
    for (let j = 0; j < TN; j++) {
      L.push(`    let iy_${j} = qy_${j} + ${(ky - 1) * DIL}; let ix_${j} = qx_${j} + ${(kx - 1) * DIL};`);
      L.push(`    let ok_${j} = iy_${j} >= 0 && ix_${j} >= 0 && iy_${j} < i32(p.Hi) && ix_${j} < i32(p.Wi); let off_${j} = xb + select(0u, u32(iy_${j}) * p.Wi + u32(ix_${j}), ok_${j});`);
    }
    for (let c = 0; c < C; c++) {
      for (let j = 0; j < TN; j++) L.push(`    let x_${c}_${j} = select(0.0, X[off_${j} + ${c}u * HWi], ok_${j});`);
      for (let i4 = 0; i4 < TM / 4; i4++) {
        L.push(`    let w_${c}_${i4} = Wv[wb + ${((c * 9 + t) * CO) / 4 + i4}u];`);
        const comp = ['x', 'y', 'z', 'w'];
        for (let k = 0; k < 4; k++) for (let j = 0; j < TN; j++) { const i = 4 * i4 + k; L.push(`    a_${i}_${j} = fma(w_${c}_${i4}.${comp[k]}, x_${c}_${j}, a_${i}_${j});`); }
      }
    }
    L.push('  }');
  }
  return finish(L, TM, TN);
}

async function time(v: string): Promise<{ ms: number; out: Float32Array }> {
  const [kind, tile, wgs] = v.split(':');
  const [TM, TN] = tile.split('x').map(Number);
  const WGX = Number(wgs);
  const MP = Math.ceil(CO / TM) * TM;
  const packed = packWeights([w], false, MP, 'x', null);
  const src = kind === 'base' ? code : code + '\n' + (kind === 'unr' ? gen2(TM, TN) : gen(TM, TN));
  const out = Tensor.empty(engine, [1, CO, H, H]);
  const P = DIL;
  const d = () => engine.dispatch({
    label: v, code: src, entry: kind === 'base' ? 'conv' : 'convG',
    constants: { WG_X: WGX, WG_Y: 1, TM, TN, BK: 16, SMEM: 0, SA: 1, SB: 1, DIV: 0, POINTWISE: 0 },
    uniforms: { Ci: C, Hi: H, Wi: H, Co: CO, Hq: H, Wq: H, KH: 3, KW: 3, CoP: MP, NB: 1, xOff: 0, yOff: 0, sh: 1, sw: 1, divh: 1, divw: 1,
      ph: [P, 0, 0, 0], pw: [P, 0, 0, 0], dh: [DIL, 0, 0, 0], dw: [DIL, 0, 0, 0], alpha: 0, act: 0, hasBias: 0, affine: 0, residual: 0, rOff: 0 },
    bindings: [x.binding(), packed.binding(), packed.binding(), out.binding(), x.binding()],
    workgroups: [Math.ceil(CO / TM), Math.ceil((H * H) / (WGX * TN)), 1],
  });
  d(); await engine.sync();
  const ts: number[] = [];
  for (let r = 0; r < 5; r++) { const t = performance.now(); d(); await engine.sync(); ts.push(performance.now() - t); }
  ts.sort((a, b) => a - b);
  const o = await out.read();
  out.dispose(); packed.dispose();
  return { ms: ts[2], out: o };
}
let ref: Float32Array | null = null;
const flop = 2 * 9 * C * CO * H * H;
for (const v of variants) {
  const r = await time(v);
  let err = 0; if (ref) for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ref[i] - r.out[i])); else ref = r.out;
  console.log(v.padEnd(16), r.ms.toFixed(1).padStart(8), 'ms', (flop / r.ms / 1e6).toFixed(2).padStart(6), 'GFLOP/s  maxdiff', err.toExponential(1));
}
process.exit(0);
