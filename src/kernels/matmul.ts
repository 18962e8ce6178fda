// Matrix multiply kernels (no autograd): C (+)= op(A) op(B), optional transposes, three tilings.
import code from '../../shaders/matmul.wgsl';
import type { BufferBinding, Engine } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../core/tensor.js';
import { grid } from './util.js';

/**
 * - `register`: each invocation keeps a 4x8 register tile, rows shared by its workgroup; no
 *   workgroup memory, because on software adapters barriers cost more than the reloads they save.
 * - `panel`: 8x16 register tiles whose right operand is read from 64 KiB uniform-buffer windows
 *   that a pre-pass packs; on lavapipe uniform loads are ~3x cheaper than storage loads, so this is
 *   the fastest there for all but small products (a few extra dispatches and a copy of B).
 * - `shared`: 64x64 tiles staged through workgroup memory, 4x4 per invocation; what real GPUs want.
 */
export type MatmulVariant = 'register' | 'panel' | 'shared';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Adds the product into this [M,N] tensor (which must not alias A or B) and returns it. */
  accumulate?: Tensor;
  /** Forces a kernel (tests, benchmarks); by default `defaultVariant` chooses. */
  variant?: MatmulVariant;
  /** Workgroup size of the register and panel kernels (tuning; defaults 32 and 16). */
  workgroupSize?: number;
}

/** The kernel `matmul2d` uses for an M x K x N product on this engine. */
export function defaultVariant(engine: Engine, M: number, N: number, K: number): MatmulVariant {
  if (!engine.adapter.software) return 'shared';
  if (K === 0) return 'register';
  // The panel kernel runs its lanes along M (8 rows each) and `register` along N (8 columns each):
  // pick the one that fills the lanes. Measured on lavapipe: at 1024^3 panel is ~1.8x faster.
  if (M >= 256) return 'panel';
  if (N >= 128) return 'register';
  return M >= 32 ? 'panel' : 'register';
}

/** 2-D [M,K]x[K,N] (or transposed operands) -> [M,N]. */
export function matmul2d(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`matmul: expected 2-D tensors, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
  const ta = !!opts.transA;
  const tb = !!opts.transB;
  const [M, K] = ta ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [Kb, N] = tb ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== Kb) {
    throw new Error(`matmul: inner dimensions differ: ${shapeStr(a.shape)}${ta ? 'ᵀ' : ''} x ${shapeStr(b.shape)}${tb ? 'ᵀ' : ''}`);
  }
  const e = a.engine;
  const acc = opts.accumulate;
  if (acc && (acc.shape.length !== 2 || acc.shape[0] !== M || acc.shape[1] !== N)) {
    throw new Error(`matmul: accumulate target ${shapeStr(acc.shape)} does not match the product [${M},${N}]`);
  }
  if (acc && (acc.buffer === a.buffer || acc.buffer === b.buffer)) {
    throw new Error('matmul: the accumulate target must not share storage with an operand');
  }
  const out = acc ?? Tensor.empty(e, [M, N]);
  if (out.size === 0 || (K === 0 && acc)) return out;
  let variant = opts.variant ?? defaultVariant(e, M, N, K);
  if (variant === 'panel' && (K === 0 || windowBytes(N, K) > maxScratch(e))) variant = 'register';
  const job: Job = { e, a, b, out, M, N, K, ta, tb, acc: acc ? 1 : 0, wg: opts.workgroupSize };
  if (variant === 'panel') panel(job);
  else if (variant === 'shared') shared(job);
  else register(job);
  return out;
}

interface Job {
  e: Engine;
  a: Tensor;
  b: Tensor;
  out: Tensor;
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  acc: number;
  wg?: number;
}

const cdiv = (x: number, y: number) => Math.ceil(x / y);
/** The Params struct of shaders/matmul.wgsl; fields an entry point does not read are 0. */
function params(M: number, N: number, K: number, fields: { acc?: number; lda?: number; k4?: number; kc4?: number; n0?: number; ws?: number }) {
  return { M, N, K, acc: 0, lda: 0, k4: 0, kc4: 0, n0: 0, ws: 0, ...fields };
}

const WG_REGISTER = 32;
const WG_PANEL = 16;

function register(j: Job): void {
  const { e, M, N, K, ta, tb } = j;
  // Narrow products would leave most of a 32-wide workgroup idle (lanes run along N).
  const wg = j.wg ?? Math.min(WG_REGISTER, Math.max(8, 2 ** Math.ceil(Math.log2(cdiv(N, 8)))));
  withVec4(j, (a, b) => {
    e.dispatch({
      label: 'matmul.register',
      code,
      entry: 'mm_register',
      constants: { TA: +ta, TB: +tb, VA: +((ta ? M : K) % 4 === 0), VB: +((tb ? K : N) % 4 === 0), WG: wg },
      uniforms: params(M, N, K, { acc: j.acc }),
      bindings: [a, b, j.out.binding()],
      workgroups: [cdiv(cdiv(N, 8), wg), cdiv(M, 4)],
    });
  });
}

function shared(j: Job): void {
  const { e, M, N, K, ta, tb } = j;
  withVec4(j, (a, b) => {
    e.dispatch({
      label: 'matmul.shared',
      code,
      entry: 'mm_shared',
      constants: { TA: +ta, TB: +tb },
      uniforms: params(M, N, K, { acc: j.acc }),
      bindings: [a, b, j.out.binding()],
      workgroups: [cdiv(N, 64), cdiv(M, 64)],
    });
  });
}

// ---- panel ------------------------------------------------------------------------------------

const WK = 1024; // depths per window (shader const WK)
const WINDOW = 65536; // bytes bound per window: the uniform array's size

/** Float stride between packed windows, and the scratch size. */
function windowLayout(N: number, K: number): { kp: number; chunks: number; blocks: number; stride: number; bytes: number } {
  const kp = cdiv(K, 4) * 4;
  const chunks = cdiv(kp, WK);
  const blocks = cdiv(N, 16);
  // Uniform binding offsets must be 256-byte aligned; a short window's binding overlaps the next.
  const stride = chunks > 1 ? WINDOW / 4 : cdiv(kp * 16 * 4, 256) * 64;
  return { kp, chunks, blocks, stride, bytes: (blocks * chunks - 1) * stride * 4 + WINDOW };
}

const windowBytes = (N: number, K: number) => windowLayout(N, K).bytes;
const maxScratch = (e: Engine) => Math.min(e.limits.maxBufferSize, e.limits.maxStorageBufferBindingSize);

function panel(j: Job): void {
  const { e, M, N, K, ta, tb } = j;
  const { kp, chunks, blocks, stride, bytes } = windowLayout(N, K);
  const win = scratch(e, bytes);
  withVec4(j, (a, b) => {
    e.dispatch({
      label: 'matmul.pack_b',
      code,
      entry: 'pack_b',
      constants: { TB: +tb },
      uniforms: params(M, N, K, { k4: kp, kc4: chunks, ws: stride }),
      bindings: [a, b, { buffer: win, offset: 0, size: bytes }],
      workgroups: grid(e, cdiv(blocks * kp * 16, 64)),
    });
    // A is read as aligned vec4 rows; anything else is packed to [M, kp] first.
    let packed: Tensor | null = null;
    let left = a;
    if (ta || K % 4 !== 0) {
      packed = Tensor.empty(e, [M, kp]);
      e.dispatch({
        label: 'matmul.pack_a',
        code,
        entry: 'pack_a',
        constants: { TA: +ta },
        uniforms: params(M, N, K, { k4: kp }),
        bindings: [a, b, packed.binding()],
        workgroups: grid(e, cdiv(M * kp, 64)),
      });
      left = vec4Binding(packed)!;
    }
    const wg = j.wg ?? WG_PANEL;
    const groups = cdiv(cdiv(M, 8), wg);
    for (let blk = 0; blk < blocks; blk++) {
      for (let c = 0; c < chunks; c++) {
        const depth = Math.min(WK, kp - c * WK);
        e.dispatch({
          label: 'matmul.panel',
          code,
          entry: 'mm_panel',
          constants: { WG: wg },
          uniforms: params(M, N, K, { acc: c > 0 ? 1 : j.acc, lda: kp / 4, k4: (c * WK) / 4, kc4: depth / 4, n0: blk * 16 }),
          bindings: [left, b, j.out.binding(), { buffer: win, offset: (blk * chunks + c) * stride * 4, size: WINDOW }],
          workgroups: [groups],
        });
      }
    }
    packed?.dispose();
  });
}

/** One STORAGE|UNIFORM buffer per engine for packed windows, grown on demand (not pooled; destroyed with the engine). */
const SCRATCH = Symbol('matmul windows');

function scratch(e: Engine, bytes: number): GPUBuffer {
  const held = e.local(SCRATCH, () => ({ buf: null as GPUBuffer | null, destroy() { this.buf?.destroy(); } }));
  if (held.buf && held.buf.size >= bytes) return held.buf;
  if (held.buf) {
    // Commands recorded so far may still read it: submit them; destroy waits for their completion.
    e.flush();
    held.buf.destroy();
  }
  const size = Math.min(cdiv(bytes, 1 << 20) * (1 << 20), maxScratch(e));
  held.buf = e.guard(() => e.device.createBuffer({ label: 'matmul windows', size, usage: 0x80 | 0x40 })); // STORAGE | UNIFORM
  return held.buf;
}

// ---- bindings -----------------------------------------------------------------------------------

/**
 * A and B are declared as vec4 arrays, so a binding must cover whole vec4s or its tail would be
 * unreachable. Pooled buffers always have the room; an exact-size wrapped buffer returns null.
 */
function vec4Binding(t: Tensor): BufferBinding | null {
  const b = t.binding();
  const size = Math.max(16, cdiv(b.size, 16) * 16);
  return (b.offset ?? 0) + size <= t.buffer.size ? { ...b, size } : null;
}

/** Runs `fn` with vec4-safe bindings of A and B, copying an operand into a pooled tensor if needed. */
function withVec4(j: Job, fn: (a: BufferBinding, b: BufferBinding) => void): void {
  const temps: Tensor[] = [];
  const bind = (t: Tensor): BufferBinding => {
    const direct = vec4Binding(t);
    if (direct) return direct;
    const copy = Tensor.empty(t.engine, t.shape);
    j.e.copy(t.buffer, t.byteOffset, copy.buffer, 0, t.size * 4);
    temps.push(copy);
    return vec4Binding(copy)!;
  };
  try {
    fn(bind(j.a), bind(j.b));
  } finally {
    for (const t of temps) t.dispose();
  }
}
