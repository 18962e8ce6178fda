// Inference on images of any size: tiles carry the full receptive field as context, so the tiled
// result equals the untiled one and there are no seams to hide.
import { noGrad } from '../graph/autograd.js';
import { Tensor, tidy } from '../core/tensor.js';
import { prepareTuning, tunePending } from '../kernels/conv2d.js';
import type { Image } from '../io/image.js';
import { receptiveRadius } from './config.js';
import type { DrdNet } from './drdnet.js';

/** Options of `derainImage`: tile size, activation budget and a per-tile callback. */
export interface DerainOptions {
  /** Output pixels per tile side (default: the largest that fits the device's binding limit and budget). */
  tile?: number;
  /** Bytes one activation tensor may take (default 256 MiB, capped by maxStorageBufferBindingSize). */
  activationBudget?: number;
  /** Called after each tile with the tiles done and the total. */
  onTile?: (done: number, total: number) => void;
}

export interface TilePlan {
  /** Core (output) size per tile side. */
  core: number;
  /** Context added on each side (the receptive-field radius). */
  halo: number;
  tiles: number;
}

/** Smallest tile core: below it the halo (context) would dwarf the pixels each tile produces. */
export const MIN_TILE = 16;

/** How an image of this size is split. A plan with one tile runs the image whole. */
export function planTiles(model: DrdNet, width: number, height: number, opts: DerainOptions = {}): TilePlan {
  const engine = model.parameters()[0].engine;
  const halo = receptiveRadius(model.config);
  const budget = Math.min(opts.activationBudget ?? 256 * 2 ** 20, engine.limits.maxStorageBufferBindingSize);
  const maxPixels = Math.floor(budget / (4 * model.config.channels));
  if (opts.tile === undefined && width * height <= maxPixels) return { core: Math.max(width, height), halo, tiles: 1 };
  let core = opts.tile ?? Math.floor(Math.sqrt(maxPixels)) - 2 * halo;
  if (opts.tile !== undefined && (!Number.isInteger(core) || core < MIN_TILE)) {
    throw new Error(`tile size must be an integer of at least ${MIN_TILE} output pixels, got ${opts.tile}`);
  }
  if (core < MIN_TILE) {
    throw new Error(`the device's maxStorageBufferBindingSize (${engine.limits.maxStorageBufferBindingSize}) leaves no room for a tile with ${halo} px of context on each side`);
  }
  if (core >= width && core >= height) return { core, halo, tiles: 1 };
  return { core, halo, tiles: Math.ceil(width / core) * Math.ceil(height / core) };
}

function crop(img: Image, x0: number, y0: number, w: number, h: number): Float32Array {
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const src = c * img.width * img.height + (y0 + y) * img.width + x0;
      out.set(img.data.subarray(src, src + w), c * w * h + y * w);
    }
  }
  return out;
}

/**
 * Derains one image with the model in eval mode (running BN statistics), then puts every
 * submodule back in the mode the caller had it in. Output not clamped; a non-finite output
 * (broken weights) is an error rather than a black image.
 */
export async function derainImage(model: DrdNet, img: Image, opts: DerainOptions = {}): Promise<Image> {
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  // BatchNorm and PReLU folded into the convs for this call (the weights cannot change during it).
  const unfold = model.foldForInference();
  try {
    return await derainEval(model, img, opts);
  } finally {
    unfold();
    for (const [m, training] of modes) m.training = training;
  }
}

async function derainEval(model: DrdNet, img: Image, opts: DerainOptions): Promise<Image> {
  const engine = model.parameters()[0].engine;
  const { core, halo } = planTiles(model, img.width, img.height, opts);
  // Stored kernel choices first; a tile size met untuned is timed after that tile (engine.tune).
  await prepareTuning(engine);
  const out = new Float32Array(3 * img.width * img.height);
  const nx = Math.ceil(img.width / core);
  const ny = Math.ceil(img.height / core);
  let done = 0;
  for (let ty = 0; ty < ny; ty++) {
    for (let tx = 0; tx < nx; tx++) {
      const cx0 = tx * core;
      const cy0 = ty * core;
      const cw = Math.min(core, img.width - cx0);
      const ch = Math.min(core, img.height - cy0);
      // At the image border the zero padding of the untiled run is reproduced by clamping.
      const x0 = Math.max(0, cx0 - halo);
      const y0 = Math.max(0, cy0 - halo);
      const x1 = Math.min(img.width, cx0 + cw + halo);
      const y1 = Math.min(img.height, cy0 + ch + halo);
      const w = x1 - x0;
      const h = y1 - y0;
      const result = await tidy(async () => {
        const input = Tensor.fromData(engine, crop(img, x0, y0, w, h), [1, 3, h, w]);
        const { final } = noGrad(() => model.forward(input));
        return await final.read();
      });
      const bad = result.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`the model's output is ${result[bad]} (at tile ${done + 1} of ${nx * ny}): the weights are broken`);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < ch; y++) {
          const src = c * w * h + (cy0 - y0 + y) * w + (cx0 - x0);
          out.set(result.subarray(src, src + cw), c * img.width * img.height + (cy0 + y) * img.width + cx0);
        }
      }
      await tunePending(engine);
      opts.onTile?.(++done, nx * ny);
    }
  }
  return { width: img.width, height: img.height, data: out };
}
