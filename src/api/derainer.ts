// One-call inference for library users: load weights once, derain images of any size, free it all.
import { Engine } from '../gpu/runtime.js';
import { bitmapToImage } from '../io/image-browser.js';
import { rgbaToImage, type Image } from '../io/image.js';
import { derainImage, type Ensemble } from '../model/derain.js';
import type { DrdNet } from '../model/drdnet.js';
import { loadModel } from '../model/weights.js';
import { checkCallback } from '../util/describe.js';

/** Weights as a path (Node), a URL (file:, http(s):, or a page-relative asset), or safetensors bytes. */
export type WeightsInput = string | URL | Uint8Array | ArrayBuffer;

/** Options of `loadDerainer`: which weights, and which GPU device or engine to run on. */
export interface DerainerOptions {
  /** Default: the bundled tiny weights (inside the package in Node, an asset URL in the browser). */
  weights?: WeightsInput;
  /** Run on your own device (never destroyed by the derainer). */
  device?: GPUDevice;
  /** With `device` in Node: the `webgpu` package's `create()` result it came from, held while the derainer lives (see `EngineOptions.gpu`). */
  gpu?: object;
  /** Share an existing engine (never destroyed by the derainer). Takes precedence over `device`. */
  engine?: Engine;
  /**
   * For the engine the derainer creates (not a shared one): time conv kernel candidates the first
   * time a shape runs on this adapter and cache the winners (default on, unless SEMI_DRDNET_TUNE=0;
   * the first derain on a new machine takes longer, see `DerainCallOptions.onTuning`).
   */
  tune?: boolean;
}

/** Options of one `Derainer.derain` call. */
export interface DerainCallOptions {
  /** Output pixels per tile side, at least 16 (default: as large as the device allows; tiling never changes the result). */
  tile?: number;
  /** Bytes of tile activations kept on the GPU between the SE stages of a tiled run (default 1 GiB, unlimited on software adapters; past it, half as many bytes in CPU memory). */
  stateBudget?: number;
  /** Called after each tile with the tiles done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Called before the engine times kernel candidates for shapes new to this adapter (first use only), with how many. */
  onTuning?: (classes: number) => void;
  /** Flip self-ensemble of 1 (default), 2 or 4 mirror images, averaged: 2x or 4x the time for a somewhat better result. */
  ensemble?: Ensemble;
}

/**
 * Inputs above this are taken for 8-bit samples passed as floats, and below 1 - MAX_INPUT for
 * data that is not an image (the margins allow slight overshoot from earlier processing passes).
 */
const MAX_INPUT = 2;

const DISPOSED_DURING = 'derain: this Derainer was disposed during the call';

/** What `derain` accepts: the package's planar float `Image`, or in a browser `ImageData` / `ImageBitmap`. */
export type DerainInput = Image | ImageData | ImageBitmap;

/** Reads weights into bytes; each platform entry supplies its own (files in Node, fetch in browsers). */
export type WeightsReader = (w: string | URL) => Promise<Uint8Array>;

/** A loaded deraining model. Create it with `loadDerainer`; call `dispose` when done. */
export class Derainer {
  #disposed = false;
  constructor(
    readonly engine: Engine,
    readonly model: DrdNet,
    /** Where the weights came from (a path, a URL, or 'bytes'). */
    readonly source: string,
    readonly ownsEngine: boolean,
  ) {}

  /**
   * Derains one image (any size: large ones are tiled with full context and whole-image SE gates,
   * so the result is the untiled one and there are no seams).
   * The result is planar RGB float, not clamped. The model's train/eval mode is left as it was.
   */
  async derain(image: DerainInput, opts: DerainCallOptions = {}): Promise<Image> {
    if (this.#disposed) throw new Error('derain: this Derainer was disposed');
    checkCallback('derain: onProgress', opts.onProgress);
    checkCallback('derain: onTuning', opts.onTuning);
    const img = await toImage(image);
    if (this.#disposed) throw new Error(DISPOSED_DURING);
    // derainImage checks the image, refuses non-finite input and output, and 8-bit samples passed as floats.
    try {
      return await derainImage(this.model, img, { tile: opts.tile, stateBudget: opts.stateBudget, onTile: opts.onProgress, onTuning: opts.onTuning, ensemble: opts.ensemble, maxInput: MAX_INPUT });
    } catch (e) {
      // The model's tensors vanish under a run when `dispose` comes first: say that, not which tensor.
      if (this.#disposed) throw new Error(DISPOSED_DURING);
      throw e;
    }
  }

  /** Frees the model's GPU memory, and the engine if the derainer created it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.model.dispose();
    if (this.ownsEngine) this.engine.destroy();
  }
}

/** Weights over http(s) (or any URL `fetch` takes); a failure names the URL and its cause (Node puts it in `cause`). */
export async function fetchWeights(w: string | URL): Promise<Uint8Array> {
  const res = await fetch(w).catch((e: unknown) => {
    throw new Error(`cannot fetch weights '${w}': ${(e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message}`);
  });
  if (!res.ok) throw new Error(`cannot fetch weights '${w}': HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** The platform-neutral part of `loadDerainer`; the Node and browser entries pass their reader and default weights. */
export async function createDerainer(opts: DerainerOptions, read: WeightsReader, defaultWeights: () => string | URL): Promise<Derainer> {
  const w = opts.weights ?? defaultWeights();
  let bytes: Uint8Array;
  let source: string;
  if (w instanceof Uint8Array || w instanceof ArrayBuffer) {
    bytes = w instanceof Uint8Array ? w : new Uint8Array(w);
    source = 'weights bytes';
  } else {
    source = String(w);
    bytes = await read(w);
  }
  const ownsEngine = !opts.engine;
  const engine = opts.engine ?? (await Engine.create({ device: opts.device, gpu: opts.device && opts.gpu, tune: opts.tune }));
  try {
    const { model } = loadModel(engine, bytes, source);
    return new Derainer(engine, model, source, ownsEngine);
  } catch (e) {
    if (ownsEngine) engine.destroy();
    throw e;
  }
}

function describeInput(x: unknown): string {
  if (x === null || typeof x !== 'object') return String(x);
  return `an object with keys ${Object.keys(x).join(', ') || '(none)'}`;
}

/** Converts what the browser hands out into the package's planar float image. */
async function toImage(x: DerainInput): Promise<Image> {
  if (x !== null && typeof x === 'object' && 'data' in x) {
    // ImageData carries 8-bit RGBA; anything else with `data` is checked as an Image by the caller.
    if (x.data instanceof Uint8ClampedArray) return rgbaToImage(x.data, x.width, x.height);
    return x as Image;
  }
  if (typeof OffscreenCanvas === 'undefined' && typeof document === 'undefined') {
    throw new Error(`derain: expected an Image { width, height, data: Float32Array } (planar RGB in [0, 1]); got ${describeInput(x)}`);
  }
  return bitmapToImage(x);
}
