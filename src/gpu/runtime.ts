// The GPU runtime: device acquisition or adoption, pipeline cache, batched dispatch, readback.
import { BufferPool, type MemoryStats } from './pool.js';
import { DispatchProfiler, type KernelTime } from './profile.js';
import { defaultTuningStore, tuneByDefault, type TuningStore } from './tuning.js';
import { matchStruct, packUniforms, type Uniforms } from './uniforms.js';
import { yieldingAwait } from './wait.js';

export type { UniformValue, Uniforms } from './uniforms.js';
export type { KernelTime } from './profile.js';
export type { TuningStore } from '../io/tuning-store.js';

/** A storage buffer (or a window of one) bound to a kernel. */
export interface BufferBinding {
  buffer: GPUBuffer;
  offset?: number;
  /** Bytes the kernel may touch; checked against maxStorageBufferBindingSize. */
  size: number;
}

/** One compute dispatch: WGSL, entry point, uniforms, storage bindings and workgroup counts. */
export interface DispatchSpec {
  /** Name used in errors (the op, e.g. 'conv2d.wgrad'). */
  label: string;
  code: string;
  entry?: string;
  /** WGSL `override` constants; part of the pipeline cache key. */
  constants?: Record<string, number>;
  /**
   * The fields of the shader's `var<uniform>` struct at @binding(0), by name (all of them, no
   * others); packed by WGSL's layout with each field's declared type (`src/gpu/uniforms.ts`).
   */
  uniforms?: Uniforms;
  /** Storage buffers at @binding(1), @binding(2), ... in this order. */
  bindings: BufferBinding[];
  workgroups: [number, number?, number?];
}

/** The device limits the engine plans with (the adapter's, optionally lowered by `EngineOptions.limits`). */
export interface EngineLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
}

/** Options of `Engine.create`: adopt a device, pick an adapter, or lower limits. */
export interface EngineOptions {
  /** Adopt the caller's device: the engine then never destroys it. */
  device?: GPUDevice;
  /**
   * With `device` in Node: the object it came from (the `webgpu` package's `create()` result),
   * held while the engine lives. dawn.node destroys its devices, mid-run and without an error,
   * once that object is garbage-collected; keep it reachable yourself between engines.
   */
  gpu?: object;
  adapter?: GPUAdapter;
  powerPreference?: GPUPowerPreference;
  /** Dispatches recorded before a submit is forced (default 64). */
  maxDispatchesPerSubmit?: number;
  /** Lower the effective limits (tests use this to exercise splitting and refusals). */
  limits?: Partial<EngineLimits>;
  /**
   * Time candidate kernel tiles the first time a shape class runs (at the next await point that
   * allows it) and keep the fastest (default: on unless SEMI_DRDNET_TUNE=0). Off: defaults only.
   */
  tune?: boolean;
  /** Where tuned choices persist (default: the entry point's store; null keeps them in memory). */
  tuningStore?: TuningStore | null;
}

/** What the engine knows of its adapter (from GPUAdapterInfo). */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU-backed adapters (lavapipe, SwiftShader). */
  software: boolean;
  /**
   * The smallest subgroup the device can run (8 on lavapipe with AVX2, 4 on SwiftShader), or 0
   * where the device lacks the 'subgroups' feature; the conv kernels' subgroup configs need 4 or more.
   */
  subgroupMinSize: number;
}

/** Running totals of dispatches, submits, pipelines created and readbacks (for tests and benchmarks). */
export interface EngineCounters {
  dispatches: number;
  submits: number;
  pipelines: number;
  readbacks: number;
}

type GpuProvider = () => GPU | Promise<GPU>;
let provider: GpuProvider | undefined;
let synchronousErrorEvents = false;

/**
 * Node entry points register dawn.node here; browsers use `navigator.gpu`. `synchronousErrors`:
 * the implementation fires `uncapturederror` inside the call that failed (dawn.node does), so an
 * engine on an adopted device tells its own errors from the caller's by when they arrive; without
 * it, the engine wraps its device calls in error scopes.
 */
export function setGpuProvider(p: GpuProvider, opts: { synchronousErrors?: boolean } = {}): void {
  provider = p;
  synchronousErrorEvents = opts.synchronousErrors ?? false;
}

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment upper bound across adapters
const SCOPE_FILTERS: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

/** Owns a GPU device (or adopts yours), the buffer pool, the pipeline cache and the batched command stream; every tensor belongs to one engine. */
export class Engine {
  readonly device: GPUDevice;
  /** `EngineOptions.gpu`, held so that dawn.node keeps the adopted device alive while the engine lives. */
  readonly gpu: object | undefined;
  readonly limits: EngineLimits;
  readonly adapter: AdapterSummary;
  readonly pool: BufferPool;
  readonly counters: EngineCounters = { dispatches: 0, submits: 0, pipelines: 0, readbacks: 0 };
  readonly maxDispatchesPerSubmit: number;
  /** Whether kernels may time candidate configurations (EngineOptions.tune). */
  readonly tune: boolean;
  readonly tuningStore: TuningStore | null;

  #owned: boolean;
  #modules = new Map<string, { module: GPUShaderModule; id: number }>();
  #moduleIds = 0;
  #pipelines = new Map<string, GPUComputePipeline>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #recorded = 0; // dispatches + copies in the open encoder
  #batch = 0; // serial of the open batch
  #lastUse = new WeakMap<GPUBuffer, number>();
  #arena: ArrayBuffer;
  #arenaView: DataView;
  #arenaBuf: GPUBuffer;
  #arenaUsed = 0;
  #lost: string | null = null;
  // GPU errors raised by the engine's own calls, thrown at its next call. `depth` counts engine
  // calls in progress: on an adopted device with synchronous error events, only errors arriving
  // inside one are the engine's (the caller's own mistakes stay theirs).
  #calls = { depth: 0, errors: [] as string[] };
  /** Adopted device without synchronous error events: each engine call runs in error scopes. */
  #scoped: boolean;
  #scopeResults: Promise<void>[] = [];
  #destroyed = false;
  #local = new Map<symbol, unknown>();
  #profiler: DispatchProfiler | null = null;
  #onError: (e: Event) => void;

  private constructor(device: GPUDevice, owned: boolean, adapter: AdapterSummary, opts: EngineOptions) {
    this.device = device;
    this.#owned = owned;
    this.adapter = adapter;
    const d = device.limits;
    const lim = (k: keyof EngineLimits) => Math.min(d[k], opts.limits?.[k] ?? Infinity);
    this.limits = {
      maxStorageBufferBindingSize: lim('maxStorageBufferBindingSize'),
      maxBufferSize: lim('maxBufferSize'),
      maxComputeWorkgroupsPerDimension: lim('maxComputeWorkgroupsPerDimension'),
      maxStorageBuffersPerShaderStage: lim('maxStorageBuffersPerShaderStage'),
      maxComputeWorkgroupStorageSize: lim('maxComputeWorkgroupStorageSize'),
      maxComputeInvocationsPerWorkgroup: lim('maxComputeInvocationsPerWorkgroup'),
    };
    this.maxDispatchesPerSubmit = opts.maxDispatchesPerSubmit ?? 64;
    this.tune = opts.tune ?? tuneByDefault();
    this.tuningStore = opts.tuningStore === undefined ? defaultTuningStore() : opts.tuningStore;
    this.#scoped = !owned && !synchronousErrorEvents;
    // No closure here may use `this`: the error listener below shares this scope, and the device
    // (which may outlive the engine) holds the listener.
    this.pool = new BufferPool(device, this.limits.maxBufferSize, this.guard.bind(this));
    const arenaBytes = this.maxDispatchesPerSubmit * UNIFORM_SLOT;
    this.#arena = new ArrayBuffer(arenaBytes);
    this.#arenaView = new DataView(this.#arena);
    this.#arenaBuf = this.guard(() => device.createBuffer({ size: arenaBytes, usage: 0x40 | 0x08 })); // UNIFORM | COPY_DST
    this.gpu = opts.gpu;
    // An adopted device outlives its engines: what it holds must not keep a dropped engine alive
    // (the lost promise through a weak reference; the error listener is removed on destroy).
    const self = new WeakRef(this);
    device.lost.then((info) => {
      const e = self.deref();
      if (e && !e.#destroyed) e.#lost = `${info.reason ?? 'unknown'}: ${info.message}`;
    });
    // The listener claims every error on the engine's own device, and on an adopted one those
    // raised inside the engine's calls; a claimed error is not also printed (dawn.node writes
    // uncaught ones to stdout) but thrown by the engine.
    const calls = this.#calls;
    this.#onError = (e: Event) => {
      if (!owned && calls.depth === 0) return;
      e.preventDefault();
      calls.errors.push(describeGpuError((e as GPUUncapturedErrorEvent).error.message));
    };
    if (this.#scoped) return;
    if (typeof device.addEventListener === 'function') device.addEventListener('uncapturederror', this.#onError);
    else (device as { onuncapturederror: unknown }).onuncapturederror = this.#onError;
  }

  /**
   * Runs device calls as the engine's: a GPU error they raise is thrown by the engine (at once
   * where the implementation reports it synchronously, as dawn.node does; else at its next call,
   * and by `sync`/`read` at the latest), never left to the device's other listeners.
   */
  guard<T>(fn: () => T): T {
    const scoped = this.#scoped;
    if (scoped) for (const f of SCOPE_FILTERS) this.device.pushErrorScope(f);
    this.#calls.depth++;
    try {
      return fn();
    } finally {
      this.#calls.depth--;
      if (scoped) {
        const errors = this.#calls.errors;
        for (let i = 0; i < SCOPE_FILTERS.length; i++) {
          this.#scopeResults.push(this.device.popErrorScope().then(
            (err) => { if (err) errors.push(describeGpuError(err.message)); },
            () => {}, // the device was lost: reported through `lost`
          ));
        }
        if (this.#scopeResults.length > 1024) this.#scopeResults = [Promise.all(this.#scopeResults).then(() => {})];
      }
    }
  }

  /** Gets an adapter and device (dawn.node in Node, navigator.gpu in browsers) or adopts `opts.device`. */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    if (opts.device) return new Engine(opts.device, false, summarize(opts.adapter?.info ?? opts.device.adapterInfo, opts.device), opts);
    let adapter = opts.adapter ?? null;
    if (!adapter) {
      const gpu = await getGpu();
      adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
      if (!adapter) throw new Error(noAdapterMessage());
    }
    const keys: Array<keyof GPUSupportedLimits> = [
      'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage',
      'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension',
    ];
    const requiredLimits: Record<string, number> = {};
    for (const k of keys) requiredLimits[k] = adapter.limits[k] as number;
    // Timestamp queries where the adapter has them (only `Engine.profile` uses them), and subgroups
    // (the conv kernels' subgroup configs).
    const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups'];
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    return new Engine(device, true, summarize(adapter.info, device), opts);
  }

  get lost(): boolean {
    return this.#lost !== null;
  }

  /** Records one compute dispatch; submits when the batch is full. */
  dispatch(spec: DispatchSpec): void {
    this.#check();
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(`${spec.label}: dispatch of ${x}x${y}x${z} workgroups exceeds maxComputeWorkgroupsPerDimension (${maxWg})`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    if (spec.bindings.length > this.limits.maxStorageBuffersPerShaderStage) {
      throw new Error(`${spec.label}: ${spec.bindings.length} storage buffers exceed maxStorageBuffersPerShaderStage (${this.limits.maxStorageBuffersPerShaderStage})`);
    }
    for (const b of spec.bindings) {
      if (b.size > this.limits.maxStorageBufferBindingSize) {
        throw new Error(`${spec.label}: a binding of ${b.size} bytes exceeds the device's maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize})`);
      }
    }
    const struct = spec.uniforms ? matchStruct(spec.code, spec.uniforms, spec.label) : null;
    if (struct && struct.size > UNIFORM_SLOT) throw new Error(`${spec.label}: uniform struct ${struct.name} is larger than ${UNIFORM_SLOT} bytes`);
    this.guard(() => this.#record(spec, struct, x, y, z));
  }

  #record(spec: DispatchSpec, struct: ReturnType<typeof matchStruct> | null, x: number, y: number, z: number): void {
    const pipeline = this.pipeline(spec.code, spec.entry ?? 'main', spec.constants, spec.label);
    const entries: GPUBindGroupEntry[] = [];
    if (struct) {
      if (this.#arenaUsed + UNIFORM_SLOT > this.#arena.byteLength) this.flush();
      const off = this.#arenaUsed;
      packUniforms(this.#arenaView, off, struct, spec.uniforms!, spec.label);
      this.#arenaUsed += UNIFORM_SLOT;
      entries.push({ binding: 0, resource: { buffer: this.#arenaBuf, offset: off, size: UNIFORM_SLOT } });
    }
    spec.bindings.forEach((b, i) => {
      this.#lastUse.set(b.buffer, this.#batch);
      entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, b.size) } });
    });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    // Where errors arrive synchronously, an invalid bind group (a misaligned or foreign buffer) is
    // thrown here, before it is recorded: recorded, it would fail the whole submit after it.
    this.#check();
    // Profiling: each dispatch in a pass of its own, timestamped at its start and end.
    if (this.#profiler) this.#endPass();
    const pass = this.#computePass(this.#profiler?.writes(spec.label));
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.#profiler) this.#endPass();
    this.counters.dispatches++;
    if (++this.#recorded >= this.maxDispatchesPerSubmit) this.flush();
  }

  /** Records a buffer-to-buffer copy in stream order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#check();
    this.#endPass();
    this.#lastUse.set(src, this.#batch);
    this.#lastUse.set(dst, this.#batch);
    this.guard(() => this.#encoderOrNew().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes));
    this.#recorded++;
  }

  /** Uploads bytes into a buffer, after everything recorded so far. */
  write(dst: GPUBuffer, dstOffset: number, data: ArrayBufferView): void {
    this.#check();
    // queue.writeBuffer runs before the open encoder's commands would; submit those first.
    if (this.#recorded > 0) this.flush();
    this.guard(() => this.device.queue.writeBuffer(dst, dstOffset, data.buffer, data.byteOffset, data.byteLength));
  }

  /** Submits everything recorded so far. */
  flush(): void {
    const encoder = this.#encoder;
    if (encoder) {
      this.#encoder = null;
      this.guard(() => {
        this.#endPass();
        this.#profiler?.resolve(encoder);
        if (this.#arenaUsed > 0) this.device.queue.writeBuffer(this.#arenaBuf, 0, this.#arena, 0, this.#arenaUsed);
        this.device.queue.submit([encoder.finish()]);
      });
      this.counters.submits++;
    }
    this.#arenaUsed = 0;
    this.#recorded = 0;
    this.#batch++;
    this.pool.flushPending();
  }

  /** Whether recorded-but-unsubmitted commands use `buf` (its reuse must wait for the submit). */
  usedInOpenBatch(buf: GPUBuffer): boolean {
    return this.#recorded > 0 && this.#lastUse.get(buf) === this.#batch;
  }

  /** Submits and waits (yielding the CPU) until the GPU is idle. */
  async sync(): Promise<void> {
    this.flush();
    await yieldingAwait(this.device.queue.onSubmittedWorkDone());
    await this.#scopesSettled();
    this.#check();
  }

  /** Copies `bytes` from a buffer into a new ArrayBuffer. */
  async read(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.#check();
    const staging = this.pool.acquireReadback(bytes);
    try {
      this.copy(src, offset, staging, 0, bytes);
      this.flush();
      this.counters.readbacks++;
      await yieldingAwait(staging.mapAsync(1 /* GPUMapMode.READ */, 0, bytes));
      const out = staging.getMappedRange(0, bytes).slice(0);
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging, false);
      await this.#scopesSettled();
      this.#check();
    }
  }

  /**
   * A compute pipeline for a shader, entry point and override constants (cached). `label` names
   * the op in errors: WGSL that does not compile is reported as `label: WGSL error at line:col:
   * message` at the engine's next call.
   */
  pipeline(code: string, entry: string, constants?: Record<string, number>, label = 'kernel'): GPUComputePipeline {
    const ck = constants ? Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(',') : '';
    let mod = this.#modules.get(code);
    if (!mod) {
      const module = this.guard(() => this.device.createShaderModule({ code, label }));
      mod = { module, id: this.#moduleIds++ };
      this.#modules.set(code, mod);
    }
    const fullKey = `${mod.id}:${entry}:${ck}`;
    let p = this.#pipelines.get(fullKey);
    if (!p) {
      const { module } = mod;
      p = this.guard(() => this.device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: entry, constants } }));
      // dawn.node reports compile errors synchronously: raise them in the op's own call, and
      // forget the invalid module so that the next call reports the same error, not a follow-up.
      if (this.#calls.errors.length) {
        this.#modules.delete(code);
        this.#check();
      }
      this.#pipelines.set(fullKey, p);
      this.counters.pipelines++;
    }
    return p;
  }

  /**
   * Per-engine state of a kernel family (tuned configurations, test overrides, scratch buffers),
   * created on first use: two engines in one process never share it. A value with a `destroy`
   * method is destroyed with the engine.
   */
  local<T>(key: symbol, init: () => T): T {
    if (!this.#local.has(key)) this.#local.set(key, init());
    return this.#local.get(key) as T;
  }

  /** This engine's GPU memory: live and pooled buffer bytes, the peak, and buffer counts. */
  memory(): MemoryStats {
    return this.pool.stats();
  }

  /**
   * Runs `fn` with every dispatch timed on the GPU (timestamp queries; each dispatch then gets a
   * compute pass of its own, so the run itself is a little slower) and returns its result with the
   * GPU time per dispatch label, longest first. Work recorded before the call is submitted and
   * awaited first, so it is not counted. Needs the adapter's 'timestamp-query' feature (an adopted
   * device must have been created with it).
   */
  async profile<T>(fn: () => T | Promise<T>): Promise<{ result: T; kernels: KernelTime[] }> {
    if (!this.device.features.has('timestamp-query')) {
      throw new Error(`profiling needs the 'timestamp-query' feature, which this device (${this.adapter.description || this.adapter.vendor || 'unknown adapter'}) was not created with`);
    }
    if (this.#profiler) throw new Error('profile: a profiled run is already in progress on this engine');
    await this.sync();
    const profiler = this.guard(() => new DispatchProfiler(this.device, this.maxDispatchesPerSubmit));
    this.#profiler = profiler;
    let result: T;
    try {
      result = await fn();
      await this.sync();
    } catch (e) {
      // Submit what `fn` recorded (its passes write to this profiler's queries) before freeing them.
      if (!this.lost) this.flush();
      profiler.destroy();
      throw e;
    } finally {
      this.#profiler = null;
    }
    return { result, kernels: await profiler.collect() };
  }

  /**
   * Destroys every buffer the engine made (its tensors' too: they are unusable after it) and, if
   * the engine created the device, the device. Buffers of `Tensor.wrap` stay the caller's.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.flush();
    this.#destroyed = true;
    this.pool.destroyAll();
    this.#arenaBuf.destroy();
    for (const v of this.#local.values()) (v as { destroy?: () => void } | null)?.destroy?.();
    this.#local.clear();
    const d = this.device as GPUDevice & { onuncapturederror?: unknown };
    if (typeof d.removeEventListener === 'function') d.removeEventListener('uncapturederror', this.#onError);
    else if (d.onuncapturederror === this.#onError) d.onuncapturederror = null;
    if (this.#owned) this.device.destroy();
  }

  #check(): void {
    if (this.#destroyed) throw new Error('the engine was destroyed');
    if (this.#lost) throw new Error(`GPU device lost (${this.#lost})`);
    const errors = this.#calls.errors;
    if (errors.length) {
      const msg = errors[0];
      errors.length = 0;
      throw new Error(msg);
    }
  }

  /** Waits until the error scopes of the calls so far have reported (adopted devices without synchronous error events). */
  async #scopesSettled(): Promise<void> {
    if (!this.#scopeResults.length) return;
    const pending = this.#scopeResults;
    this.#scopeResults = [];
    await Promise.all(pending);
  }

  #encoderOrNew(): GPUCommandEncoder {
    return (this.#encoder ??= this.device.createCommandEncoder());
  }

  #computePass(timestampWrites?: GPUComputePassTimestampWrites): GPUComputePassEncoder {
    return (this.#pass ??= this.#encoderOrNew().beginComputePass(timestampWrites ? { timestampWrites } : undefined));
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }
}

async function getGpu(): Promise<GPU> {
  if (provider) return await provider();
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  throw new Error(noAdapterMessage());
}

function noAdapterMessage(): string {
  const inBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  return inBrowser
    ? 'no WebGPU adapter: this browser has WebGPU disabled or unsupported (try a current Chrome/Edge, or enable WebGPU)'
    : 'no WebGPU adapter: Dawn found no Vulkan (Linux), D3D12 (Windows) or Metal (macOS) driver; without a GPU, install Mesa lavapipe 24+ (mesa-vulkan-drivers; on Debian 12 from bookworm-backports)';
}

/**
 * One line for an uncaptured GPU error. A WGSL compile error names the shader's label (the op)
 * and its first error line; Dawn's follow-up errors about the invalid module are secondary.
 */
export function describeGpuError(message: string): string {
  const wgsl = /Error while parsing WGSL: :(\d+):(\d+) error: ([^\n]*)/.exec(message);
  if (wgsl) {
    const label = /ShaderModuleDescriptor "+([^"]*)"+/.exec(message)?.[1] || 'a shader';
    return `${label}: WGSL error at line ${wgsl[1]}:${wgsl[2]}: ${wgsl[3]}`;
  }
  return `GPU error: ${message.split('\n')[0]}`;
}

function summarize(info: GPUAdapterInfo | undefined, gpuDevice: GPUDevice): AdapterSummary {
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const device = info?.device ?? '';
  const description = info?.description ?? '';
  const text = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const software = /llvmpipe|lavapipe|swiftshader|software|cpu/.test(text);
  const subgroupMinSize = gpuDevice.features.has('subgroups') ? (info?.subgroupMinSize ?? 0) : 0;
  return { vendor, architecture, device, description, software, subgroupMinSize };
}
