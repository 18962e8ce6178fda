// The bundled synthetic pairs of adaptation's labelled batch: one definition (photos, recipes, seed,
// crop) for the page's assets (scripts/build-web.mjs) and the `adapt` command. Platform-neutral.
import { rngFor, synthesizeRain, type RainPreset } from '../data/synth.js';
import { toByte, type Image } from '../io/image.js';

export interface AdaptPair {
  rainy: Image;
  clean: Image;
}

/** Varied scenes from data/photos/train and both synthetic rain strengths. */
export const ADAPT_PAIR_SOURCES: ReadonlyArray<readonly [photo: string, rain: RainPreset]> = [
  ['astronaut-00.png', 'heavy'],
  ['gravel-01.png', 'light'],
  ['retina-10.png', 'heavy'],
  ['rocket-02.png', 'light'],
  ['cell-11.png', 'heavy'],
  ['astronaut-11.png', 'light'],
  ['rocket-10.png', 'heavy'],
  ['retina-01.png', 'light'],
];
/** 96 px crops keep the page's assets around 0.3 MB (and bound adaptation's patch size). */
export const ADAPT_PAIR_SIZE = 96;
export const ADAPT_PAIR_SEED = 1;

/** The centred w x h window of an image. */
export function centerCrop(img: Image, w: number, h: number): Image {
  const x0 = (img.width - w) >> 1;
  const y0 = (img.height - h) >> 1;
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const src = c * img.width * img.height + (y0 + y) * img.width + x0;
      out.set(img.data.subarray(src, src + w), (c * h + y) * w);
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * Rounds to 8-bit levels as a PNG stores them, with the decoders' own scaling (rgbaToImage), so
 * Node's in-memory pairs equal the page's decoded assets bit for bit.
 */
export function quantize8(img: Image): Image {
  const scale = 1 / 255;
  return { ...img, data: img.data.map((v) => toByte(v) * scale) };
}

/** Pair `index` of ADAPT_PAIR_SOURCES from its decoded clean photo. */
export function makeAdaptPair(clean: Image, index: number): AdaptPair {
  const [name, rain] = ADAPT_PAIR_SOURCES[index];
  // Rain is made on the whole photo: the presets' streak lengths are tuned to ~256 px images.
  const { rainy } = synthesizeRain(clean, rain, rngFor(ADAPT_PAIR_SEED, name));
  const s = ADAPT_PAIR_SIZE;
  return { rainy: quantize8(centerCrop(rainy, s, s)), clean: quantize8(centerCrop(clean, s, s)) };
}

/** File stem of pair `index` (the page's asset names). */
export function adaptPairStem(index: number): string {
  const [name, rain] = ADAPT_PAIR_SOURCES[index];
  return `${index}-${name.replace(/\.png$/, '')}-${rain}`;
}
