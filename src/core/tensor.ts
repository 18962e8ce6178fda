// Float32 tensors in GPU buffers, reference-counted storage, and `tidy` scopes.
//
// Activation layout is NCHW, chosen once here. Why: the weights, checkpoints and parity outputs
// this project exchanges with PyTorch are NCHW/OIHW, so no transposes sit at the boundary; with
// N = 1 (inference, parity) a channel is one contiguous plane, so channel concat/split are plain
// buffer copies and per-channel work (bias, BN statistics, PReLU, SE pooling) reads contiguous
// memory; and convolution kernels tile over W, the innermost axis, for coalesced loads.
import type { BufferBinding, Engine } from '../gpu/runtime.js';
import { asyncLocal, type AsyncLocal } from '../util/async-local.js';

/** A tensor shape (NCHW for images). */
export type Shape = readonly number[];

/** Number of elements of a shape. */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/** A GPU buffer shared by a tensor and its views/saved aliases; returned to the pool at refs 0. */
class Storage {
  refs = 1;
  constructor(
    readonly engine: Engine,
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    /** Wrapped caller buffers are never pooled or destroyed. */
    readonly external: boolean,
  ) {}

  release(): void {
    if (--this.refs === 0 && !this.external) this.engine.pool.release(this.buffer, this.engine.usedInOpenBatch(this.buffer));
  }
}

/**
 * The autograd record that produced a tensor, as the tensor sees it: it only lets go of it. The
 * graph level (`graph/autograd.ts`) defines what a node holds, so this level does not import it.
 */
export interface GradNode {
  unref(): void;
}

/** A float32 GPU tensor (NCHW for images) with an optional gradient; created on an engine, freed by `dispose` or `tidy`. */
export class Tensor {
  readonly engine: Engine;
  readonly shape: Shape;
  readonly size: number;
  /** True for parameters and inputs whose gradient is wanted, and for outputs of recorded ops. */
  requiresGrad = false;
  /** Accumulated gradient (leaf tensors only). */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor, if any. */
  node: GradNode | null = null;
  /** Optional name for error messages (parameters get their dotted name). */
  name?: string;
  #storage: Storage | null;

  private constructor(engine: Engine, shape: Shape, storage: Storage) {
    this.engine = engine;
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.#storage = storage;
    scopes.current().at(-1)?.add(this);
  }

  /** An uninitialised tensor from the pool. */
  static empty(engine: Engine, shape: Shape): Tensor {
    checkShape(shape);
    const buf = engine.pool.acquire(numel(shape) * 4);
    return new Tensor(engine, shape, new Storage(engine, buf, 0, false));
  }

  /** A tensor holding `data` (copied to the GPU) with the given shape. */
  static fromData(engine: Engine, data: ArrayLike<number>, shape: Shape): Tensor {
    checkShape(shape);
    if (data.length !== numel(shape)) {
      throw new Error(`data of length ${data.length} does not match shape ${shapeStr(shape)} (${numel(shape)} elements)`);
    }
    const t = Tensor.empty(engine, shape);
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    if (f.length > 0) engine.write(t.buffer, 0, f);
    return t;
  }

  /**
   * Wraps a caller's GPUBuffer (needs STORAGE usage, plus COPY_SRC to be read back) without
   * copying. The tensor never frees or destroys it. `byteOffset` must be a multiple of the
   * device's `minStorageBufferOffsetAlignment` (256 on most devices): kernels bind the tensor there.
   */
  static wrap(engine: Engine, buffer: GPUBuffer, shape: Shape, byteOffset = 0): Tensor {
    checkShape(shape);
    const align = engine.device.limits.minStorageBufferOffsetAlignment;
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % align !== 0) {
      throw new Error(`wrapped buffer offset ${byteOffset} is not a non-negative multiple of the device's minStorageBufferOffsetAlignment (${align})`);
    }
    const need = byteOffset + numel(shape) * 4;
    if (buffer.size < need) throw new Error(`wrapped buffer of ${buffer.size} bytes is too small for shape ${shapeStr(shape)} at offset ${byteOffset} (${need} bytes)`);
    if ((buffer.usage & 0x80) === 0) throw new Error('wrapped buffer needs GPUBufferUsage.STORAGE');
    return new Tensor(engine, shape, new Storage(engine, buffer, byteOffset, true));
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  /** The underlying buffer (shared with views). */
  get buffer(): GPUBuffer {
    return this.#live().buffer;
  }

  get byteOffset(): number {
    return this.#live().byteOffset;
  }

  /** This tensor as a storage binding for `Engine.dispatch`. */
  binding(): BufferBinding {
    const s = this.#live();
    return { buffer: s.buffer, offset: s.byteOffset, size: this.size * 4 };
  }

  /** Copies the values back to the CPU (waits for the GPU). */
  async read(): Promise<Float32Array> {
    const s = this.#live();
    if (this.size === 0) return new Float32Array(0);
    return new Float32Array(await this.engine.read(s.buffer, s.byteOffset, this.size * 4));
  }

  /** Reads a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got shape ${shapeStr(this.shape)}`);
    return (await this.read())[0];
  }

  /** Overwrites the contents (after all work recorded so far). */
  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) throw new Error(`write: ${data.length} values for shape ${shapeStr(this.shape)}`);
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    this.engine.write(this.buffer, this.byteOffset, f);
  }

  /** Copies this tensor's values into `dst` (a tensor of the same size, or a caller's buffer), in stream order. */
  copyTo(dst: Tensor | GPUBuffer, dstByteOffset = 0): void {
    const s = this.#live();
    if (dst instanceof Tensor) {
      if (dst.size !== this.size) throw new Error(`copyTo: ${this.toString()} and ${dst.toString()} differ in size`);
      this.engine.copy(s.buffer, s.byteOffset, dst.buffer, dst.byteOffset, this.size * 4);
    } else {
      if (dst.size < dstByteOffset + this.size * 4) throw new Error(`copyTo: buffer of ${dst.size} bytes is too small for ${this.toString()} at offset ${dstByteOffset}`);
      this.engine.copy(s.buffer, s.byteOffset, dst, dstByteOffset, this.size * 4);
    }
  }

  /** A tensor sharing this one's storage with another shape (no autograd; see ops.reshape). */
  view(shape: Shape): Tensor {
    const s = this.#live();
    if (numel(shape) !== this.size) throw new Error(`cannot view shape ${shapeStr(this.shape)} as ${shapeStr(shape)}`);
    s.refs++;
    return new Tensor(this.engine, shape, s);
  }

  /** Removes this tensor from the enclosing `tidy` scopes so it outlives them. */
  keep(): this {
    for (const s of scopes.current()) s.delete(this);
    return this;
  }

  /** Frees the storage (when no view or saved alias still holds it). Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    this.#storage.release();
    this.#storage = null;
    const node = this.node;
    this.node = null;
    node?.unref();
    for (const s of scopes.current()) s.delete(this);
  }

  /** 'Tensor[shape]' and the name, for messages. */
  toString(): string {
    return `Tensor${shapeStr(this.shape)}${this.name ? ` '${this.name}'` : ''}`;
  }

  #live(): Storage {
    if (!this.#storage) throw new Error(`${this.toString()} was disposed and cannot be used`);
    return this.#storage;
  }
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape ${shapeStr(shape)}`);
  }
}

// ---- scopes ---------------------------------------------------------------------------------

type Scope = Set<Tensor>;

/** Where the open `tidy` scopes live: per async context where the platform can tell, else one stack. */
interface ScopeStore {
  current(): readonly Scope[];
  /** Runs `fn` with `scope` open (it stays open for an async `fn` until `exit`). */
  enter<T>(scope: Scope, fn: () => T): T;
  exit(scope: Scope): void;
}

/** One process-wide stack: async scopes must not interleave (browsers: no async context yet). */
function globalStore(): ScopeStore {
  const stack: Scope[] = [];
  return {
    current: () => stack,
    enter: (scope, fn) => (stack.push(scope), fn()),
    exit: (scope) => {
      const i = stack.lastIndexOf(scope);
      if (i >= 0) stack.splice(i, 1);
    },
  };
}

/**
 * Stacks that follow async contexts (Node's AsyncLocalStorage), so two engines' training steps,
 * or any two `tidy(async ...)` scopes, can interleave without freeing each other's tensors.
 */
function asyncStore(als: AsyncLocal<readonly Scope[]>): ScopeStore {
  return {
    current: () => als.getStore() ?? [],
    enter: (scope, fn) => als.run([...(als.getStore() ?? []), scope], fn),
    exit: () => {},
  };
}

const local = asyncLocal<readonly Scope[]>();
const scopes: ScopeStore = local ? asyncStore(local) : globalStore();

function collect(result: unknown, into: Set<Tensor>): void {
  if (result instanceof Tensor) into.add(result);
  else if (Array.isArray(result)) for (const r of result) collect(r, into);
  else if (result && typeof result === 'object' && Object.getPrototypeOf(result) === Object.prototype) {
    for (const v of Object.values(result)) collect(v, into);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns (a tensor, an
 * array, or a plain object of tensors), which move to the enclosing scope. An async `fn` is
 * awaited. In Node scopes follow async contexts, so concurrent async scopes (two engines training
 * at once) keep their tensors apart; in browsers do not interleave two async scopes.
 */
export function tidy<T>(fn: () => T): T;
export function tidy<T>(fn: () => Promise<T>): Promise<T>;
export function tidy<T>(fn: () => T | Promise<T>): T | Promise<T> {
  const scope = new Set<Tensor>();
  let result: T | Promise<T>;
  try {
    result = scopes.enter(scope, fn);
  } catch (e) {
    endScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (r) => (endScope(scope, r), r),
      (e) => {
        endScope(scope, undefined);
        throw e;
      },
    );
  }
  endScope(scope, result);
  return result;
}

function endScope(scope: Set<Tensor>, result: unknown): void {
  scopes.exit(scope);
  const keep = new Set<Tensor>();
  collect(result, keep);
  for (const t of scope) if (!keep.has(t)) t.dispose();
  const parent = scopes.current().at(-1);
  if (parent) for (const t of keep) if (!t.disposed) parent.add(t);
}

/** Runs `fn` and reports the tensors created inside it (they stay alive; the caller decides). */
export function capture<T>(fn: () => T): { result: T; created: Set<Tensor> } {
  const scope = new Set<Tensor>();
  try {
    const result = scopes.enter(scope, fn);
    return { result, created: scope };
  } finally {
    scopes.exit(scope);
    const parent = scopes.current().at(-1);
    if (parent) for (const t of scope) if (!t.disposed) parent.add(t);
  }
}
