// GPU time per dispatch label, from timestamp queries written at the start and end of each dispatch's own compute pass.

/** GPU time spent in the dispatches of one label during a profiled run. */
export interface KernelTime {
  label: string;
  /** Dispatches with this label. */
  count: number;
  /** Their summed GPU time (end minus start of each dispatch's pass). */
  ms: number;
}

interface Batch {
  querySet: GPUQuerySet;
  resolved: GPUBuffer; // QUERY_RESOLVE | COPY_SRC
  readback: GPUBuffer; // MAP_READ | COPY_DST
  labels: string[];
}

/**
 * Collects timestamps for one profiled run: the engine asks `writes` for each dispatch's pass and
 * calls `resolve` before each submit; `collect` reads everything once the GPU is done.
 */
export class DispatchProfiler {
  readonly #device: GPUDevice;
  readonly #capacity: number; // dispatches per batch (the engine's dispatches per submit)
  readonly #batches: Batch[] = []; // resolved
  // Written since the last resolve. One is enough: the engine submits (and resolves) after at most
  // `dispatchesPerSubmit` dispatches, the capacity of a batch.
  #open: Batch | null = null;

  constructor(device: GPUDevice, dispatchesPerSubmit: number) {
    this.#device = device;
    this.#capacity = dispatchesPerSubmit;
  }

  /** The timestamp writes for the next dispatch's pass. */
  writes(label: string): GPUComputePassTimestampWrites {
    const b = (this.#open ??= this.#newBatch());
    const i = b.labels.push(label) - 1;
    return { querySet: b.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Records the resolve and copy of the batches written since the last call into `encoder` (right before it is submitted). */
  resolve(encoder: GPUCommandEncoder): void {
    const b = this.#open;
    if (!b) return;
    this.#open = null;
    encoder.resolveQuerySet(b.querySet, 0, 2 * b.labels.length, b.resolved, 0);
    encoder.copyBufferToBuffer(b.resolved, 0, b.readback, 0, 16 * b.labels.length);
    this.#batches.push(b);
  }

  /** After the resolved work has completed: GPU time summed per label, longest first; frees the query buffers. */
  async collect(): Promise<KernelTime[]> {
    const byLabel = new Map<string, KernelTime>();
    try {
      for (const b of this.#batches) {
        await b.readback.mapAsync(1); // GPUMapMode.READ
        const t = new BigUint64Array(b.readback.getMappedRange(0, 16 * b.labels.length).slice(0));
        b.readback.unmap();
        b.labels.forEach((label, i) => {
          // A pass whose end precedes its start (a driver's clock reset) counts as zero.
          const ns = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
          const k = byLabel.get(label) ?? byLabel.set(label, { label, count: 0, ms: 0 }).get(label)!;
          k.count++;
          k.ms += ns / 1e6;
        });
      }
    } finally {
      this.destroy();
    }
    return [...byLabel.values()].sort((a, b) => b.ms - a.ms);
  }

  /** Frees every query set and buffer (unresolved batches too). */
  destroy(): void {
    const open = this.#open ? [this.#open] : [];
    this.#open = null;
    for (const b of [...this.#batches.splice(0), ...open]) {
      b.querySet.destroy();
      b.resolved.destroy();
      b.readback.destroy();
    }
  }

  #newBatch(): Batch {
    const n = 2 * this.#capacity;
    return {
      querySet: this.#device.createQuerySet({ type: 'timestamp', count: n }),
      resolved: this.#device.createBuffer({ size: 8 * n, usage: 0x200 | 0x04 }), // QUERY_RESOLVE | COPY_SRC
      readback: this.#device.createBuffer({ size: 8 * n, usage: 0x01 | 0x08 }), // MAP_READ | COPY_DST
      labels: [],
    };
  }
}
