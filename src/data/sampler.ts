// Random training patches from in-memory images (platform-neutral): seeded crops and horizontal
// flips, epochs in a shuffled order, and a state that restores the stream bit for bit.
import { mat3d, vec2d } from 'wgpu-matrix';
import type { Image } from '../io/image.js';
import { Rng } from '../util/rng.js';

/** One training example: one image (unlabelled) or a pair [rainy, clean] of the same size. */
export interface SamplerItem {
  name: string;
  images: readonly Image[];
}

/**
 * Where the sampler stands. `epoch` counts the epochs started (0 before the first draw), `cursor`
 * indexes `order` (the current epoch's permutation, empty before the first draw), `rng` is the
 * generator's 4-word state. Restoring it (with the same items and options) replays the identical
 * batches.
 */
export interface SamplerState {
  epoch: number;
  cursor: number;
  order: number[];
  rng: number[];
}

/** Crop size, flips and generator of a `PatchSampler`. */
export interface PatchSamplerOptions {
  /** Patch side in pixels (default 100, the authors' crop). */
  patch?: number;
  /** Mirror half the patches left-right (default true). */
  flip?: boolean;
  /** The generator (advanced in place) or a seed for a new one (default seed 1). */
  rng?: Rng | number;
}

/** A batch of unlabelled patches from `PatchSampler.next`: B x 3 x P x P floats and their source names. */
export interface ImageBatch {
  /** B*3*P*P floats, NCHW. */
  data: Float32Array;
  names: string[];
}

/** A batch of aligned rainy/clean patches from `PatchSampler.nextPairs`, each B x 3 x P x P (NCHW), and their source names. */
export interface PairPatchBatch {
  rainy: Float32Array;
  clean: Float32Array;
  names: string[];
}

/**
 * Patches are drawn item by item in a shuffled order (a fresh permutation each epoch; a batch may
 * span two epochs); each gets a uniform crop position and, with `flip`, a coin toss for a
 * horizontal mirror, the same for both members of a pair. Images smaller than the patch are an
 * error (naming the image) at construction: padding would teach the network fake borders.
 * Per item, the generator is used in this order: shuffle (at an epoch start), x, y, flip.
 */
export class PatchSampler {
  readonly patch: number;
  readonly flip: boolean;
  readonly rng: Rng;
  readonly items: readonly SamplerItem[];
  #epoch = 0;
  #cursor = 0;
  #order: number[] = [];

  constructor(items: readonly SamplerItem[], opts: PatchSamplerOptions = {}) {
    const patch = opts.patch ?? 100;
    if (!Number.isInteger(patch) || patch < 1) throw new Error(`patch size must be a positive integer, got ${patch}`);
    if (items.length === 0) throw new Error('PatchSampler: no images to sample from');
    const members = items[0].images.length;
    for (const it of items) {
      if (it.images.length === 0 || it.images.length !== members) {
        throw new Error(`PatchSampler: '${it.name}' has ${it.images.length} images, expected ${members}`);
      }
      const { width, height } = it.images[0];
      for (const img of it.images) {
        if (img.width !== width || img.height !== height) {
          throw new Error(`PatchSampler: the images of '${it.name}' differ in size (${width}x${height} vs ${img.width}x${img.height})`);
        }
        if (img.data.length !== 3 * width * height) throw new Error(`PatchSampler: '${it.name}' data must hold 3*${height}*${width} values`);
      }
      if (width < patch || height < patch) {
        throw new Error(`image '${it.name}' (${width}x${height}) is smaller than the ${patch}x${patch} patch`);
      }
    }
    this.items = items;
    this.patch = patch;
    this.flip = opts.flip ?? true;
    this.rng = opts.rng instanceof Rng ? opts.rng : new Rng(opts.rng ?? 1);
  }

  /** A sampler of crops of unlabelled images. */
  static fromImages(images: readonly { name: string; image: Image }[], opts?: PatchSamplerOptions): PatchSampler {
    return new PatchSampler(images.map((x) => ({ name: x.name, images: [x.image] })), opts);
  }

  /** A sampler of aligned crops of rainy/clean pairs. */
  static fromPairs(pairs: readonly { name: string; rainy: Image; clean: Image }[], opts?: PatchSamplerOptions): PatchSampler {
    return new PatchSampler(pairs.map((x) => ({ name: x.name, images: [x.rainy, x.clean] })), opts);
  }

  get size(): number {
    return this.items.length;
  }

  get state(): SamplerState {
    return { epoch: this.#epoch, cursor: this.#cursor, order: [...this.#order], rng: Array.from(this.rng.state) };
  }

  /** Continues from a saved state. */
  restore(s: SamplerState): void {
    const n = this.items.length;
    const bad = (why: string): never => {
      throw new Error(`sampler state does not fit this dataset of ${n} images: ${why}`);
    };
    if (!Number.isInteger(s.epoch) || s.epoch < 0) bad(`epoch ${s.epoch}`);
    if (s.order.length !== 0 && s.order.length !== n) bad(`order has ${s.order.length} entries`);
    const seen = new Set(s.order);
    if (seen.size !== s.order.length || s.order.some((i) => !Number.isInteger(i) || i < 0 || i >= n)) bad('order is not a permutation');
    if (!Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor > s.order.length) bad(`cursor ${s.cursor}`);
    if (s.rng.length !== 4 || s.rng.every((v) => v === 0)) bad('rng needs 4 words, not all zero');
    this.#epoch = s.epoch;
    this.#cursor = s.cursor;
    this.#order = [...s.order];
    this.rng.state = Uint32Array.from(s.rng);
  }

  /** The state as integers (for checkpoints): [epoch, cursor, order.length, ...order, ...rng]. */
  saveState(): number[] {
    const s = this.state;
    return [s.epoch, s.cursor, s.order.length, ...s.order, ...s.rng];
  }

  /** Continues from a state flattened to integers (checkpoints). */
  loadState(flat: readonly number[]): void {
    const len = flat[2];
    if (flat.length < 3 || !Number.isInteger(len) || flat.length !== 3 + len + 4) {
      throw new Error(`sampler state has ${flat.length} integers, which is not [epoch, cursor, n, ...order(n), ...rng(4)]`);
    }
    this.restore({ epoch: flat[0], cursor: flat[1], order: flat.slice(3, 3 + len), rng: flat.slice(3 + len) });
  }

  /** Patches of the first member of each item (the rainy image for pairs). */
  next(batch: number): ImageBatch {
    const [data] = this.#draw(batch, 1);
    return { data: data.out, names: data.names };
  }

  /** Rainy and clean patches with the same crop and flip. */
  nextPairs(batch: number): PairPatchBatch {
    if (this.items[0].images.length < 2) throw new Error('nextPairs: this sampler holds unlabelled images, not pairs');
    const [rainy, clean] = this.#draw(batch, 2);
    return { rainy: rainy.out, clean: clean.out, names: rainy.names };
  }

  #nextItem(): number {
    if (this.#cursor >= this.#order.length) {
      this.#order = this.rng.shuffle(Array.from({ length: this.items.length }, (_, i) => i));
      this.#epoch++;
      this.#cursor = 0;
    }
    return this.#order[this.#cursor++];
  }

  #draw(batch: number, members: number): { out: Float32Array; names: string[] }[] {
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
    const P = this.patch;
    const plane = P * P;
    const outs = Array.from({ length: members }, () => ({ out: new Float32Array(batch * 3 * plane), names: [] as string[] }));
    const m = mat3d.create();
    const flipM = mat3d.multiply(mat3d.translation([P - 1, 0]), mat3d.scaling([-1, 1]));
    const origin = vec2d.create();
    for (let b = 0; b < batch; b++) {
      const item = this.items[this.#nextItem()];
      const { width: W, height: H } = item.images[0];
      const x0 = this.rng.int(W - P + 1);
      const y0 = this.rng.int(H - P + 1);
      const flip = this.flip && this.rng.next() < 0.5;
      // Patch pixel (x, y) reads source pixel M (x, y, 1): a crop translation, after a mirror.
      mat3d.translation([x0, y0], m);
      if (flip) mat3d.multiply(m, flipM, m);
      const dx = m[0]; // +1 or -1: the source step for one patch pixel to the right
      for (let k = 0; k < members; k++) {
        const src = item.images[k].data;
        const dst = outs[k].out;
        outs[k].names.push(item.name);
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < P; y++) {
            vec2d.transformMat3([0, y], m, origin);
            let s = c * W * H + origin[1] * W + origin[0];
            const o = b * 3 * plane + c * plane + y * P;
            for (let x = 0; x < P; x++, s += dx) dst[o + x] = src[s];
          }
        }
      }
    }
    return outs;
  }
}

/** A paired sampler as the trainer's batch source: next(B) -> { rainy, clean }. */
export function pairBatches(s: PatchSampler): {
  next(batch: number): { rainy: Float32Array; clean: Float32Array };
  saveState(): number[];
  loadState(state: number[]): void;
} {
  return {
    next: (batch) => {
      const { rainy, clean } = s.nextPairs(batch);
      return { rainy, clean };
    },
    saveState: () => s.saveState(),
    loadState: (state) => s.loadState(state),
  };
}

/** An unlabelled sampler as the trainer's batch source: next(B) -> NCHW patches. */
export function imageBatches(s: PatchSampler): {
  next(batch: number): Float32Array;
  saveState(): number[];
  loadState(state: number[]): void;
} {
  return {
    next: (batch) => s.next(batch).data,
    saveState: () => s.saveState(),
    loadState: (state) => s.loadState(state),
  };
}
