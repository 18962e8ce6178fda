// Inference on images of any size: tiles carry the full receptive field as context and the SE
// gates pool the whole image, so the tiled result equals the untiled one and there are no seams.
import { noGrad } from '../graph/autograd.js';
import { Tensor, tidy } from '../core/tensor.js';
import { prepareTuning, tunePending } from '../kernels/conv2d.js';
import { pooledParts, squeezeExcitePoolRect } from '../kernels/se.js';
import { checkImage, sourceTraits, type Image } from '../io/image.js';
import { checkCallback, describeValue } from '../util/describe.js';
import { receptiveRadius } from './config.js';
import type { DrdNet, GateStages } from './drdnet.js';

/** Options of `derainImage`: tile size, memory budgets and progress callbacks. */
export interface DerainOptions {
  /**
   * Output pixels per tile side, at least 16 (default, and at most: the largest that fits the
   * device's binding limit and the activation budget).
   */
  tile?: number;
  /** Bytes one activation tensor may take (default 256 MiB, capped by maxStorageBufferBindingSize). */
  activationBudget?: number;
  /**
   * Bytes the tiles' activations may hold on the GPU between the SE stages of a tiled run (default
   * 1 GiB; unlimited on a software adapter, whose GPU memory is CPU memory anyway); past it they
   * wait in CPU memory, read back and uploaded again at each stage, and only each block's input is
   * kept (C floats a pixel of the rain branch's regions; its pre-gate activation is recomputed).
   */
  stateBudget?: number;
  /**
   * Called after each tile's output with the tiles done and the total (the earlier SE stages of a
   * tiled run, its smaller part, report nothing). A throw from it ends the run there (the page's
   * Stop does so), with everything the run holds freed.
   */
  onTile?: (done: number, total: number) => void;
  /**
   * Called before the engine times the conv shape classes this run met untuned (self-tuning: the
   * first use of a shape on an adapter; seconds per class on a software adapter), with how many.
   */
  onTuning?: (classes: number) => void;
  /**
   * Refuse an input with a value above this or below 1 - maxInput (8-bit samples passed as floats
   * would "work" and return garbage: the model sees [0, 1]). Default: no limit; non-finite values
   * are always refused.
   */
  maxInput?: number;
  /**
   * Flip self-ensemble: derain this many mirror images of the input (1: the image only; 2: and its
   * left-right mirror; 4: and the up-down and both-ways mirrors), mirror each result back and
   * average. 2x or 4x the time for a somewhat better result (README, "Bundled weights"). Default 1.
   */
  ensemble?: Ensemble;
}

/** The sizes a flip self-ensemble may have (`DerainOptions.ensemble`). */
export const ENSEMBLES = [1, 2, 4] as const;
/** How many mirror images a flip self-ensemble averages: 1 (none), 2 or 4. */
export type Ensemble = (typeof ENSEMBLES)[number];

/** The mirror images an ensemble of n uses, its first n: [left-right, up-down]. */
const MIRRORS: ReadonlyArray<readonly [boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];

/** How `planTiles` cuts an image: core size per tile, context margin and the number of tiles. */
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
  const whole = width * height <= maxPixels;
  if (opts.tile === undefined && whole) return { core: Math.max(width, height), halo, tiles: 1 };
  const tile = opts.tile;
  if (tile !== undefined && (!Number.isInteger(tile) || tile < MIN_TILE)) {
    throw new Error(`tile size must be an integer of at least ${MIN_TILE} output pixels, got ${describeValue(tile)}`);
  }
  // The largest tile the binding limit and budget allow; a larger one asked for is taken down to
  // it (tiling never changes the result), unless it covers an image that fits whole.
  const largest = Math.floor(Math.sqrt(maxPixels)) - 2 * halo;
  const core = tile === undefined ? largest : tile >= width && tile >= height && whole ? tile : Math.min(tile, largest);
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

/** One pass over the input for non-finite values and for values above `maxInput`. */
function checkInputValues(img: Image, maxInput: number): void {
  const d = img.data;
  let max = 0;
  let min = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    // A NaN in would come out as a NaN, which the output check blames on the weights.
    if (!Number.isFinite(v)) throw new Error(`derain input: value ${v} at index ${i} (channel ${Math.floor(i / (img.width * img.height))}); images hold finite values in [0, 1]`);
    if (v > max) max = v;
    if (v < min) min = v;
  }
  if (max > maxInput) throw new Error(`derain input: values up to ${max}, but images hold floats in [0, 1] (divide 8-bit samples by 255, or use rgbaToImage)`);
  if (min < 1 - maxInput) throw new Error(`derain input: values down to ${min}, but images hold floats in [0, 1]`);
}

/** The options derainImage takes from its caller, checked before any work. */
function checkOptions(opts: DerainOptions): void {
  const n = opts.ensemble ?? 1;
  if (!ENSEMBLES.includes(n)) throw new Error(`derain: ensemble must be 1, 2 or 4, got ${describeValue(opts.ensemble)}`);
  const number = (k: 'activationBudget' | 'stateBudget' | 'maxInput', ok: (v: number) => boolean, want: string) => {
    const v = opts[k];
    if (v !== undefined && !(typeof v === 'number' && ok(v))) throw new Error(`derain: ${k} must be ${want}, got ${describeValue(v)}`);
  };
  number('activationBudget', (v) => v > 0, 'a positive number of bytes');
  number('stateBudget', (v) => v >= 0, 'a number of bytes >= 0'); // 0: every tile's state in CPU memory
  number('maxInput', (v) => v > 0, 'a positive number');
  checkCallback('derain: onTile', opts.onTile);
  checkCallback('derain: onTuning', opts.onTuning);
}

/**
 * Derains one image with the model in eval mode (running BN statistics), then puts every
 * submodule back in the mode the caller had it in. Output not clamped; a non-finite output
 * (broken weights) is an error rather than a black image. A greyscale input (R = G = B everywhere)
 * gives a greyscale output.
 */
export async function derainImage(model: DrdNet, img: Image, opts: DerainOptions = {}): Promise<Image> {
  checkImage(img, 'derain input');
  checkOptions(opts);
  const n = opts.ensemble ?? 1;
  checkInputValues(img, opts.maxInput ?? Infinity);
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  // BatchNorm and PReLU folded into the convs for this call (the weights cannot change during it).
  const unfold = model.foldForInference();
  try {
    let out: Image;
    if (n === 1) {
      out = await derainEval(model, img, opts);
    } else {
      const sum = new Float32Array(3 * img.width * img.height);
      for (const [k, [lr, ud]] of MIRRORS.slice(0, n).entries()) {
        // Progress counts the tiles of all n passes.
        const onTile = opts.onTile && ((done: number, total: number) => opts.onTile!(k * total + done, n * total));
        const pass = mirror(await derainEval(model, mirror(img, lr, ud), { ...opts, onTile }), lr, ud);
        for (let i = 0; i < sum.length; i++) sum[i] += pass.data[i];
      }
      for (let i = 0; i < sum.length; i++) sum[i] /= n;
      out = { width: img.width, height: img.height, data: sum, ...sourceTraits(img) };
    }
    // A grey photo stays grey: the network's three outputs differ (by up to 20-46/255 per grey
    // held-out photo), a tint that is no part of the rain; their mean is also closer to the truth
    // (+0.06 dB on the held-out photos under light rain, all 5 grey ones up).
    if (isGrey(img)) greyInPlace(out);
    return out;
  } finally {
    unfold();
    for (const [m, training] of modes) m.training = training;
  }
}

/** Whether every pixel has R = G = B (a greyscale photo, decoded or made so). */
function isGrey(img: Image): boolean {
  const P = img.width * img.height;
  const d = img.data;
  for (let i = 0; i < P; i++) if (d[i] !== d[P + i] || d[i] !== d[2 * P + i]) return false;
  return true;
}

/** Each pixel's three channels replaced by their mean. */
function greyInPlace(img: Image): void {
  const P = img.width * img.height;
  const d = img.data;
  for (let i = 0; i < P; i++) d[i] = d[P + i] = d[2 * P + i] = (d[i] + d[P + i] + d[2 * P + i]) / 3;
}

/** The RGB planes mirrored left-right and/or up-down (alpha and depth are left to the caller). */
function mirror(img: Image, lr: boolean, ud: boolean): Image {
  const { width: w, height: h } = img;
  if (!lr && !ud) return { width: w, height: h, data: img.data };
  const data = new Float32Array(img.data.length);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const src = c * w * h + (ud ? h - 1 - y : y) * w;
      const row = img.data.subarray(src, src + w);
      const dst = c * w * h + y * w;
      if (lr) for (let x = 0; x < w; x++) data[dst + x] = row[w - 1 - x];
      else data.set(row, dst);
    }
  }
  return { width: w, height: h, data };
}

/** One tile's core: the output pixels it owns (the cores partition the image). */
interface Tile {
  cx0: number;
  cy0: number;
  cw: number;
  ch: number;
}

/** A rectangle of the image: a tile's core plus context. */
interface Region {
  x0: number;
  y0: number;
  w: number;
  h: number;
}

function tileGrid(img: Image, core: number): Tile[] {
  const tiles: Tile[] = [];
  for (let cy0 = 0; cy0 < img.height; cy0 += core) {
    for (let cx0 = 0; cx0 < img.width; cx0 += core) tiles.push({ cx0, cy0, cw: Math.min(core, img.width - cx0), ch: Math.min(core, img.height - cy0) });
  }
  return tiles;
}

/** The core with `halo` pixels of context on each side; at the image border the zero padding of the untiled run is reproduced by clamping. */
function region(img: Image, t: Tile, halo: number): Region {
  const x0 = Math.max(0, t.cx0 - halo);
  const y0 = Math.max(0, t.cy0 - halo);
  return { x0, y0, w: Math.min(img.width, t.cx0 + t.cw + halo) - x0, h: Math.min(img.height, t.cy0 + t.ch + halo) - y0 };
}

/** Default of `DerainOptions.stateBudget` on a hardware adapter. */
export const DEFAULT_STATE_BUDGET = 2 ** 30;

async function derainEval(model: DrdNet, img: Image, opts: DerainOptions): Promise<Image> {
  const engine = model.parameters()[0].engine;
  const { core, halo } = planTiles(model, img.width, img.height, opts);
  // Stored kernel choices first; a tile size met untuned is timed after that tile (engine.tune).
  await prepareTuning(engine);
  const tiles = tileGrid(img, core);
  const out = new Float32Array(3 * img.width * img.height);
  // Gates pool the whole image: with more than one tile they need the network run in stages.
  const stages = tiles.length > 1 ? noGrad(() => model.gateStages()) : null;
  if (stages) {
    await derainStaged(model, stages, img, tiles, halo, out, opts);
  } else {
    // One tile, or no SE gates: every output pixel depends on its receptive field only. (Gates
    // replaced through DrdNetOptions run per tile: one that pools globally sees its tile only.)
    for (const [i, t] of tiles.entries()) {
      const r = region(img, t, halo);
      const result = await tidy(async () => {
        const input = Tensor.fromData(engine, crop(img, r.x0, r.y0, r.w, r.h), [1, 3, r.h, r.w]);
        const { final } = noGrad(() => model.forward(input));
        return await final.read();
      });
      place(out, img, t, r, result, i, tiles.length);
      await tunePending(engine, { onStart: opts.onTuning });
      opts.onTile?.(i + 1, tiles.length);
    }
  }
  // Transparency and bit depth are not the network's business: they pass through unchanged.
  return { width: img.width, height: img.height, data: out, ...sourceTraits(img) };
}

/** Copies a tile's core out of its region's result into the image, refusing a non-finite output. */
function place(out: Float32Array, img: Image, t: Tile, r: Region, result: Float32Array, index: number, total: number): void {
  const bad = result.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`the model's output is ${result[bad]} (at tile ${index + 1} of ${total}): the weights are broken`);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < t.ch; y++) {
      const src = c * r.w * r.h + (t.cy0 - r.y0 + y) * r.w + (t.cx0 - r.x0);
      out.set(result.subarray(src, src + t.cw), c * img.width * img.height + (t.cy0 + y) * img.width + t.cx0);
    }
  }
}

/** A tile's activation between stages: on the GPU, or in CPU memory past the state budget. */
type Stored = Tensor | { data: Float32Array; shape: number[] };

/**
 * Tiled inference whose SE gates equal the untiled run's. Stage j runs every tile from its stored
 * state (block j's input over the tile's rain region) through block j's convs and adds the sums of
 * the pre-gate activation over the tile's core to one buffer; the cores partition the image, so
 * after the last tile that buffer holds the image's sums and block j's gate for every tile is the
 * untiled one up to summation order. The last stage applies the last gate and runs the rest of the
 * network per tile in one go (the detail branch has no gate).
 *
 * With detail input O (the presets), the final image is O - R + D with D computed from O alone, so
 * the rain branch needs only its own receptive field as context (35 px for the paper preset, 9 for
 * tiny, against the detail branch's 163 and 33): its regions, states and work are that much smaller.
 */
async function derainStaged(model: DrdNet, stages: GateStages, img: Image, tiles: Tile[], halo: number, out: Float32Array, opts: DerainOptions): Promise<void> {
  const engine = model.parameters()[0].engine;
  const C = model.config.channels;
  const count = img.width * img.height;
  const split = model.config.detail && model.config.detailInput === 'O';
  const rainHalo = split ? receptiveRadius({ ...model.config, detail: false }) : halo;
  const rainRegions = tiles.map((t) => region(img, t, rainHalo));
  const parts = pooledParts(engine, C, Math.max(...tiles.map((t) => t.cw * t.ch)));
  // Between stages each tile keeps its block input and pre-gate activation (2C channels) on the GPU;
  // past the budget only the block input (C channels) in CPU memory, the other recomputed from it
  // (the block's two convs once more): a 12 MP photo with the paper preset holds 3.3 GB, not 6.5.
  const stateBytes = rainRegions.reduce((a, r) => a + 2 * C * r.w * r.h * 4, 0);
  const resident = stateBytes <= (opts.stateBudget ?? (engine.adapter.software ? Infinity : DEFAULT_STATE_BUDGET));
  const store = async (x: Tensor): Promise<Stored> => (resident ? x.keep() : { data: await x.read(), shape: [...x.shape] });
  const restore = (s: Stored): Tensor => (s instanceof Tensor ? s : Tensor.fromData(engine, s.data, s.shape));
  const upload = (r: Region) => Tensor.fromData(engine, crop(img, r.x0, r.y0, r.w, r.h), [1, 3, r.h, r.w]);
  // Tile i's state (block input, pre-gate activation or null), replaced by tile i alone at each stage.
  const states: Array<[Stored, Stored | null] | null> = tiles.map(() => null);
  let sums: Tensor | null = null; // the previous stage's pooled sums
  let next: Tensor | null = null; // this stage's
  const freeStates = () => {
    for (const s of states) for (const v of s ?? []) if (v instanceof Tensor) v.dispose();
  };
  try {
    for (let j = 0; j <= stages.blocks; j++) {
      next = j < stages.blocks ? Tensor.fromData(engine, new Float32Array(C * parts), [C * parts]).keep() : null;
      const pooled = sums && { sums, parts, count };
      for (const [i, t] of tiles.entries()) {
        const r = rainRegions[i];
        await tidy(async () => {
          let x: Tensor;
          if (j === 0) {
            x = noGrad(() => stages.head(upload(r)));
          } else {
            const [xs, hs] = states[i]!;
            const xp = restore(xs);
            const hp = hs ? restore(hs) : noGrad(() => stages.preGate(j - 1, xp));
            x = noGrad(() => stages.gate(j - 1, hp, xp, pooled));
            xp.dispose();
            hp.dispose();
            states[i] = null;
          }
          if (next) {
            const h = noGrad(() => stages.preGate(j, x));
            squeezeExcitePoolRect(h, { x0: t.cx0 - r.x0, y0: t.cy0 - r.y0, w: t.cw, h: t.ch }, next, parts);
            states[i] = [await store(x), resident ? await store(h) : null];
          } else if (split) {
            // The head is recomputed (27C multiply-adds a pixel) rather than kept for the long skip.
            const o = upload(r);
            const rain = noGrad(() => stages.rain(stages.head(o), x));
            const f = region(img, t, halo);
            const detail = noGrad(() => stages.detail(upload(f)))!;
            const [rd, dd] = await Promise.all([rain.read(), detail.read()]);
            // O - R + D as the untiled run adds them (float32, in that order), over the core.
            const result = new Float32Array(3 * t.cw * t.ch);
            for (let c = 0; c < 3; c++) {
              for (let y = 0; y < t.ch; y++) {
                for (let k = 0; k < t.cw; k++) {
                  const ri = (c * r.h + t.cy0 - r.y0 + y) * r.w + t.cx0 - r.x0 + k;
                  const derained = Math.fround(img.data[(c * img.height + t.cy0 + y) * img.width + t.cx0 + k] - rd[ri]);
                  result[(c * t.ch + y) * t.cw + k] = derained + dd[(c * f.h + t.cy0 - f.y0 + y) * f.w + t.cx0 - f.x0 + k];
                }
              }
            }
            place(out, img, t, { x0: t.cx0, y0: t.cy0, w: t.cw, h: t.ch }, result, i, tiles.length);
          } else {
            const o = upload(r);
            const { final } = noGrad(() => stages.outputs(o, stages.rain(stages.head(o), x)));
            place(out, img, t, r, await final.read(), i, tiles.length);
          }
        });
        await tunePending(engine, { onStart: opts.onTuning });
        if (!next) opts.onTile?.(i + 1, tiles.length);
      }
      sums?.dispose();
      sums = next;
      next = null;
    }
  } finally {
    freeStates();
    sums?.dispose();
    next?.dispose();
  }
}
