// A frozen VGG-19 feature extractor (torchvision's `vgg19().features`) for the contrastive
// regularisation: conv3x3 + ReLU blocks with max pooling, taps after relu1_1 .. relu5_1, weights
// named as in torchvision's state_dict (`features.<i>.weight` / `.bias`).
//
// Frozen means the weights never require gradients (they are registered as buffers, not
// parameters, so optimisers never see them and conv2d skips the weight gradient), but the
// extractor is differentiable with respect to its INPUT, so a loss on its features trains
// whatever produced the image.
//
// Only the layers up to the deepest tap asked for (`maxTap`, 1..5) are built, loaded and run.
// The default is maxTap 3 (relu3_1): VGG-19 costs about 112 k multiply-adds per input pixel up
// to relu3_1, 241 k up to relu4_1 and 361 k up to relu5_1 (the 256/512-channel blocks dominate),
// and the contrastive loss runs the extractor on ~10 batches per training step (two anchors
// forward and backward, eight detached positives/negatives), so stopping at relu3_1 cuts the
// regulariser's cost about 3x -- the difference between affordable and not on lavapipe, where
// the `tiny` model itself is only ~66 k multiply-adds per pixel. Deeper taps are one option away.
import type { Engine } from '../gpu/runtime.js';
import { conv2d } from '../graph/conv.js';
import { Module } from '../graph/module.js';
import { maxPool2d } from '../graph/pool.js';
import { mul, sub } from '../graph/ops.js';
import { Tensor, shapeStr } from '../core/tensor.js';
import { parseSafetensors, toFloat32 } from '../io/safetensors.js';
import { Rng } from '../util/rng.js';

/** What the contrastive loss needs from a feature extractor (VGG-19, or a small test stand-in). */
export interface FeatureExtractor {
  /** One weight per tap, in the order `features` returns the taps. */
  readonly layerWeights: readonly number[];
  /** Differentiable w.r.t. x; one tensor per tap (shallowest first). */
  features(x: Tensor): Tensor[];
}

/** torchvision's VGG-19 `features` configuration: output channels of each 3x3 conv, 'M' = 2x2 max pool. */
export const VGG19_CFG: ReadonlyArray<number | 'M'> = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'];

/** The tap names, shallowest first. */
export const VGG_TAPS = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'] as const;

/** AECR-Net's CR layer weights for relu1_1 .. relu5_1 (GlassyWu/AECR-Net model/CR.py). */
export const AECR_LAYER_WEIGHTS: readonly number[] = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1];

/** ImageNet statistics used by torchvision's pretrained models (inputs in [0,1], RGB). */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** The default deepest tap (relu3_1); see the header for why. */
export const DEFAULT_MAX_TAP = 3;

/** One 3x3 conv of the extractor, with its torchvision `features` index. */
export interface VggConvSpec {
  index: number;
  inChannels: number;
  outChannels: number;
  /** 'relu<block>_<n>', e.g. 'relu3_1'. */
  name: string;
  /** Whether a 2x2 max pool follows (after the ReLU). */
  poolAfter: boolean;
  /** Tap number (1..5) when this conv's ReLU output is a tap. */
  tap: number | null;
}

/** The convs needed up to `maxTap`, with torchvision indices (features.0 conv1_1, .2 conv1_2, .5 conv2_1, ...). */
export function vggLayers(maxTap: number = DEFAULT_MAX_TAP): VggConvSpec[] {
  checkMaxTap(maxTap);
  const out: VggConvSpec[] = [];
  let index = 0;
  let cin = 3;
  let block = 1;
  let n = 0;
  for (let i = 0; i < VGG19_CFG.length; i++) {
    const v = VGG19_CFG[i];
    if (v === 'M') {
      out[out.length - 1].poolAfter = true;
      index += 1;
      block++;
      n = 0;
      continue;
    }
    n++;
    const tap = n === 1 ? block : null;
    if (tap !== null && tap > maxTap) break;
    out.push({ index, inChannels: cin, outChannels: v, name: `relu${block}_${n}`, poolAfter: false, tap });
    if (tap === maxTap) break;
    cin = v;
    index += 2; // conv + ReLU
  }
  return out;
}

/** The tensors (torchvision names and shapes) that weights up to `maxTap` must contain. */
export function vggTensorSpec(maxTap: number = DEFAULT_MAX_TAP): Array<{ name: string; shape: number[] }> {
  return vggLayers(maxTap).flatMap((l) => [
    { name: `features.${l.index}.weight`, shape: [l.outChannels, l.inChannels, 3, 3] },
    { name: `features.${l.index}.bias`, shape: [l.outChannels] },
  ]);
}

/** The deepest tap the extractor has (relu5_1). */
export const MAX_TAP = 5;

function checkMaxTap(maxTap: number): void {
  if (!Number.isInteger(maxTap) || maxTap < 1 || maxTap > MAX_TAP) throw new Error(`vgg: maxTap must be an integer from 1 to ${MAX_TAP}, got ${maxTap}`);
}

export interface VggOptions {
  /** Apply (x - mean) / std with the ImageNet statistics first (default true; inputs in [0,1]). */
  normalize?: boolean;
  /** Tap weights (default AECR_LAYER_WEIGHTS up to maxTap). */
  layerWeights?: readonly number[];
}

/**
 * VGG-19 features up to relu<maxTap>_1. Weights live in buffers named `features.<i>.weight` /
 * `.bias` (stateDict order = torchvision's); `parameters()` is empty.
 */
export class Vgg19Features extends Module implements FeatureExtractor {
  readonly maxTap: number;
  readonly layers: readonly VggConvSpec[];
  readonly layerWeights: readonly number[];
  readonly normalize: boolean;
  readonly #weights: Tensor[] = [];
  readonly #biases: Tensor[] = [];
  readonly #mean: Tensor;
  readonly #invStd: Tensor;

  /** Zero-filled weights; use `randomVgg` or `loadVgg`. */
  constructor(engine: Engine, maxTap: number = DEFAULT_MAX_TAP, opts: VggOptions = {}) {
    super();
    this.maxTap = maxTap;
    this.layers = vggLayers(maxTap);
    this.normalize = opts.normalize ?? true;
    this.layerWeights = [...(opts.layerWeights ?? AECR_LAYER_WEIGHTS.slice(0, maxTap))];
    if (this.layerWeights.length !== maxTap) {
      throw new Error(`vgg: ${this.layerWeights.length} layer weights for ${maxTap} taps`);
    }
    for (const l of this.layers) {
      this.#weights.push(this.buffer(`features.${l.index}.weight`, Tensor.fromData(engine, new Float32Array(l.outChannels * l.inChannels * 9), [l.outChannels, l.inChannels, 3, 3])));
      this.#biases.push(this.buffer(`features.${l.index}.bias`, Tensor.fromData(engine, new Float32Array(l.outChannels), [l.outChannels])));
    }
    // Kept out of stateDict: constants, not weights.
    this.#mean = Tensor.fromData(engine, IMAGENET_MEAN, [1, 3, 1, 1]).keep();
    this.#invStd = Tensor.fromData(engine, IMAGENET_STD.map((s) => 1 / s), [1, 3, 1, 1]).keep();
    this.eval();
  }

  /** The conv weight and bias of torchvision index `index` (e.g. 10 for conv3_1). */
  conv(index: number): { weight: Tensor; bias: Tensor } {
    const k = this.layers.findIndex((l) => l.index === index);
    if (k < 0) throw new Error(`vgg: no conv at features.${index} up to relu${this.maxTap}_1`);
    return { weight: this.#weights[k], bias: this.#biases[k] };
  }

  /**
   * Images [N,3,H,W] (RGB in [0,1] when normalising) -> one feature map per tap, relu1_1 first:
   * [N,64,H,W], [N,128,H/2,W/2], [N,256,H/4,W/4], [N,512,H/8,W/8], [N,512,H/16,W/16] (floored).
   * Intermediates are freed; the taps belong to the caller.
   */
  features(x: Tensor): Tensor[] {
    if (x.shape.length !== 4 || x.shape[1] !== 3) throw new Error(`vgg: expected input [N,3,H,W], got ${shapeStr(x.shape)}`);
    const need = 2 ** (this.maxTap - 1);
    if (x.shape[2] < need || x.shape[3] < need) throw new Error(`vgg: input ${shapeStr(x.shape)} is too small for relu${this.maxTap}_1 (needs H, W >= ${need})`);
    let h = x;
    const owned: Tensor[] = [];
    if (this.normalize) {
      const c = sub(x, this.#mean);
      h = mul(c, this.#invStd);
      c.dispose();
      owned.push(h);
    }
    const taps: Tensor[] = [];
    this.layers.forEach((l, k) => {
      const y = conv2d(h, this.#weights[k], this.#biases[k], { padding: 1, activation: 'relu' });
      let next = y;
      if (l.tap !== null) taps.push(y);
      else owned.push(y);
      if (l.poolAfter && k < this.layers.length - 1) {
        next = maxPool2d(y, 2);
        owned.push(next);
      }
      h = next;
    });
    for (const t of owned) t.dispose();
    return taps;
  }

  /** Frees weights and constants. */
  override dispose(): void {
    super.dispose();
    this.#mean.dispose();
    this.#invStd.dispose();
  }
}

/**
 * A seeded, randomly initialised extractor with VGG-19's shapes: kaiming-normal (fan_out, ReLU
 * gain) conv weights and zero biases, as torchvision initialises an untrained VGG. No pretrained
 * ImageNet weights can be obtained in this project's environment; a random VGG still gives a
 * fixed, multi-scale, nonlinear feature space (random conv features are a known, weaker stand-in
 * for perceptual features), and `loadVgg` takes the real weights whenever a file is supplied.
 */
export function randomVgg(engine: Engine, seed = 0, maxTap: number = DEFAULT_MAX_TAP, opts: VggOptions = {}): Vgg19Features {
  const vgg = new Vgg19Features(engine, maxTap, opts);
  const rng = new Rng(seed);
  for (const l of vgg.layers) {
    const std = Math.sqrt(2 / (l.outChannels * 9));
    const w = new Float32Array(l.outChannels * l.inChannels * 9);
    for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
    vgg.conv(l.index).weight.write(w);
  }
  return vgg;
}

/**
 * Loads torchvision's VGG-19 (state_dict converted to safetensors: `features.<i>.weight` /
 * `.bias`; F32, F16, BF16 or F64) up to relu<maxTap>_1. Deeper layers and `classifier.*` are
 * ignored; a file holding just the `features` Sequential (`<i>.weight`, no prefix) is accepted
 * too. A missing or misshaped tensor that is needed is an error naming it.
 */
export function loadVgg(engine: Engine, bytes: Uint8Array, source: string, maxTap: number = DEFAULT_MAX_TAP, opts: VggOptions = {}): Vgg19Features {
  checkMaxTap(maxTap);
  const file = parseSafetensors(bytes, source);
  const prefix = file.tensors.has('features.0.weight') || !file.tensors.has('0.weight') ? 'features.' : '';
  const spec = vggTensorSpec(maxTap);
  if (!file.tensors.has(`${prefix}0.weight`)) {
    throw new Error(`${source}: missing tensor 'features.0.weight' (not a torchvision VGG-19 state_dict?)`);
  }
  const data = spec.map(({ name, shape }) => {
    const key = prefix + name.slice('features.'.length);
    const entry = file.tensors.get(key);
    if (!entry) throw new Error(`${source}: missing tensor '${key}' (VGG-19 up to relu${maxTap}_1 needs it)`);
    if (entry.shape.join() !== shape.join()) throw new Error(`${source}: tensor '${key}' has shape ${shapeStr(entry.shape)}, expected ${shapeStr(shape)}`);
    return toFloat32(entry, key, source);
  });
  const vgg = new Vgg19Features(engine, maxTap, opts);
  const state = new Map(vgg.stateDict());
  spec.forEach(({ name }, i) => state.get(name)!.write(data[i]));
  return vgg;
}
