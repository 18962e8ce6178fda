// Size-bucketed GPU buffer pool with deferred release and memory statistics.

/** Sizes are rounded up to 2^k or 1.5 * 2^k, so a buffer is at most 1/3 larger than asked. */
export function bucketSize(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  const mid = (p / 4) * 3;
  return bytes <= mid ? mid : p;
}

/** GPU memory held by an engine's buffer pool: live, pooled and peak bytes, and createBuffer calls. */
export interface MemoryStats {
  /** Bytes of pooled buffers currently held by tensors (bucket sizes, i.e. real GPU memory). */
  liveBytes: number;
  /** Bytes of buffers waiting in the pool for reuse. */
  pooledBytes: number;
  /** Highest `liveBytes` seen since creation or the last `resetPeak`. */
  peakLiveBytes: number;
  /** Number of `device.createBuffer` calls made by the pool (storage and readback). */
  buffersCreated: number;
  /** Live buffers (count). */
  liveBuffers: number;
}

const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage)
const READBACK_USAGE = 0x01 | 0x08; // MAP_READ | COPY_DST

/** The engine's GPU buffers, reused by size class (`engine.pool`; `engine.memory()` reports it). */
export class BufferPool {
  #free = new Map<string, GPUBuffer[]>();
  /** Buffers released while recorded-but-unsubmitted commands may still use them. */
  #pending: Array<[string, GPUBuffer]> = [];
  #stats: MemoryStats = { liveBytes: 0, pooledBytes: 0, peakLiveBytes: 0, buffersCreated: 0, liveBuffers: 0 };
  /** Every buffer made here and not yet destroyed, live or free (destroyAll frees them on an adopted device too). */
  #made = new Set<GPUBuffer>();
  #closed = false;

  /** `guard` runs the pool's createBuffer calls as its engine's (Engine.guard). */
  constructor(private device: GPUDevice, private maxBufferSize: number, private guard: <T>(fn: () => T) => T) {}

  /** A storage buffer of at least `bytes` bytes (STORAGE | COPY_SRC | COPY_DST). */
  acquire(bytes: number): GPUBuffer {
    return this.#take(bucketSize(Math.max(4, bytes)), STORAGE_USAGE);
  }

  /** A MAP_READ staging buffer of at least `bytes` bytes, for readback. */
  acquireReadback(bytes: number): GPUBuffer {
    return this.#take(bucketSize(Math.max(4, bytes)), READBACK_USAGE);
  }

  /**
   * Returns a buffer. With `deferred`, it becomes reusable only after `flushPending` (called at
   * submit), so commands already recorded into the open encoder still see its old contents.
   */
  release(buf: GPUBuffer, deferred: boolean): void {
    if (this.#closed) return; // destroyed with the engine
    const key = `${buf.size}:${buf.usage}`;
    this.#stats.liveBytes -= buf.size;
    this.#stats.liveBuffers--;
    this.#stats.pooledBytes += buf.size;
    if (deferred) this.#pending.push([key, buf]);
    else this.#put(key, buf);
  }

  /** Makes the buffers released with `deferred` reusable (the engine calls it at submit). */
  flushPending(): void {
    for (const [key, buf] of this.#pending) this.#put(key, buf);
    this.#pending.length = 0;
  }

  /** Destroys every pooled (free) buffer; live ones are untouched. */
  trim(): void {
    this.flushPending();
    for (const list of this.#free.values()) for (const b of list) this.#destroy(b);
    this.#free.clear();
    this.#stats.pooledBytes = 0;
  }

  /** Destroys every buffer made here, those still held by tensors too (the engine's end). */
  destroyAll(): void {
    this.trim();
    for (const b of this.#made) b.destroy();
    this.#made.clear();
    this.#stats.liveBytes = 0;
    this.#stats.liveBuffers = 0;
    this.#closed = true;
  }

  /** A copy of the running byte and buffer counts. */
  stats(): MemoryStats {
    return { ...this.#stats };
  }

  /** Starts a new peak measurement from the bytes live now. */
  resetPeak(): void {
    this.#stats.peakLiveBytes = this.#stats.liveBytes;
  }

  #take(size: number, usage: number): GPUBuffer {
    if (this.#closed) throw new Error('the engine was destroyed');
    const key = `${size}:${usage}`;
    let buf = this.#free.get(key)?.pop();
    if (buf) {
      this.#stats.pooledBytes -= size;
    } else {
      if (size > this.maxBufferSize) {
        throw new Error(`buffer of ${size} bytes exceeds the device's maxBufferSize (${this.maxBufferSize})`);
      }
      buf = this.guard(() => this.device.createBuffer({ size, usage }));
      this.#made.add(buf);
      this.#stats.buffersCreated++;
    }
    this.#stats.liveBytes += size;
    this.#stats.liveBuffers++;
    if (this.#stats.liveBytes > this.#stats.peakLiveBytes) this.#stats.peakLiveBytes = this.#stats.liveBytes;
    return buf;
  }

  #destroy(buf: GPUBuffer): void {
    buf.destroy();
    this.#made.delete(buf);
  }

  #put(key: string, buf: GPUBuffer): void {
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, (list = []));
    list.push(buf);
  }
}
