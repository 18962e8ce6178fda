// Node image codecs (pngjs, jpeg-js) and file I/O on top of the platform-neutral helpers in image.ts.
import { totalmem } from 'node:os';
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { decode as decodeJpeg, encode as encodeJpeg } from 'jpeg-js';
import { readFileBytes, writeFileAtomic, type ReadLimit } from './fs-node.js';
import {
  applyOrientation,
  checkImage,
  detectImageFormat,
  formatFromPath,
  imageToInterleaved16,
  imageToRgb8,
  imageToRgba8,
  readJpegOrientation,
  rgbaToImage,
  type Image,
  type ImageFormat,
} from './image.js';

export const JPEG_QUALITY = 95;

/** Environment variable that overrides the decoders' pixel budget, in megapixels. */
export const MAX_MEGAPIXELS_ENV = 'SEMI_DRDNET_MAX_MEGAPIXELS';
/**
 * RAM per pixel the default budget sets aside. Deraining one image holds the file, the decoded
 * samples (up to 8 B/px), the float input and output (12 B/px each) and the encoded result at
 * once, about 40 B/px; 256 B/px keeps that peak under a sixth of the machine's memory.
 */
const RAM_BYTES_PER_PIXEL = 256;
/** Hard ceiling whatever the machine: float32 RGB of 1000 MP is already 12 GB. */
const MAX_BUDGET_PIXELS = 1000e6;

/**
 * Largest width x height the decoders accept: the SEMI_DRDNET_MAX_MEGAPIXELS environment variable
 * when set, else one megapixel per 256 MB of RAM (a 16 GB machine: 64 MP), at most 1000 MP.
 */
export function pixelBudget(env: Record<string, string | undefined> = process.env, ram = totalmem()): number {
  const v = env[MAX_MEGAPIXELS_ENV];
  if (v !== undefined && v !== '') {
    const mp = Number(v);
    if (!(mp > 0) || !Number.isFinite(mp)) throw new Error(`${MAX_MEGAPIXELS_ENV} must be a positive number of megapixels, got '${v}'`);
    return Math.floor(mp * 1e6);
  }
  return Math.min(MAX_BUDGET_PIXELS, Math.floor(ram / RAM_BYTES_PER_PIXEL));
}

/** Limits of `decodeImage` / `readImage`. */
export interface DecodeOptions {
  /** Pixel budget (default pixelBudget()). */
  maxPixels?: number;
}

const mp = (px: number): string => `${+(px / 1e6).toPrecision(3)} MP`;

/** Refuses a declared size over the budget before anything of that size is allocated. */
function checkBudget(width: number, height: number, maxPixels: number, fail: (msg: string) => never): void {
  if (width * height > maxPixels) {
    fail(`${width}x${height} pixels (${mp(width * height)}) is over the pixel budget of ${mp(maxPixels)} (set ${MAX_MEGAPIXELS_ENV}, or a library call's maxPixels, to change it)`);
  }
}

const firstLine = (err: unknown): string => ((err as Error)?.message ?? String(err)).split('\n')[0]!;

const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

// Adam7 passes as [x0, y0, dx, dy].
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** Size of the filtered (pre-unfilter) image data: one filter byte plus packed samples per row. */
function pngDataSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7.reduce(
    (sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)),
    0,
  );
}

/**
 * Walk and verify the chunk list before pngjs sees it: pngjs reports truncation with an opaque
 * stream error, and its sync inflate returns uninitialised memory instead of throwing on a corrupt
 * or short zlib stream. `clean` has no tRNS chunk: pngjs zeroes the RGB of colour-keyed pixels,
 * so the samples come from a decode without it; `keyed` (the file as verified, when it has tRNS)
 * gives the alpha.
 */
function sanitizePng(bytes: Uint8Array, maxPixels: number, fail: (msg: string) => never): { clean: Buffer; keyed: Buffer | null } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33) fail('truncated PNG data');
  // The PNG spec fixes IHDR as the first chunk, so its fields sit at fixed offsets.
  if (view.getUint32(8) !== 13 || view.getUint32(12) !== 0x49484452) fail('corrupt PNG data (first chunk is not IHDR)');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = view.getUint8(24);
  const colorType = view.getUint8(25);
  const channels = PNG_CHANNELS[colorType];
  if (width === 0 || height === 0 || channels === undefined || ![1, 2, 4, 8, 16].includes(depth)) {
    fail(`corrupt PNG data (invalid IHDR: ${width}x${height}, colour type ${colorType}, depth ${depth})`);
  }
  checkBudget(width, height, maxPixels, fail);

  const kept: Uint8Array[] = [bytes.subarray(0, 8)];
  const all: Uint8Array[] = [bytes.subarray(0, 8)];
  const idat: Uint8Array[] = [];
  let pos = 8;
  for (;;) {
    if (pos + 12 > bytes.length) fail('truncated PNG data');
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + len;
    if (end > bytes.length) fail('truncated PNG data');
    if (type === 'IDAT') idat.push(bytes.subarray(pos + 8, end - 4));
    if (type !== 'tRNS') kept.push(bytes.subarray(pos, end));
    all.push(bytes.subarray(pos, end));
    pos = end;
    if (type === 'IEND') break;
  }
  if (idat.length === 0) fail('corrupt PNG data (no IDAT chunk)');

  const expected = pngDataSize(width, height, channels * depth, view.getUint8(28) === 1);
  let inflated: number;
  try {
    // Capping the output bounds memory on decompression bombs; surplus data is ignored, as libpng does.
    inflated = inflateSync(Buffer.concat(idat), { maxOutputLength: expected }).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') fail(`corrupt PNG data (${firstLine(err)})`);
    inflated = expected;
  }
  if (inflated < expected) fail(`truncated PNG data (${inflated} of ${expected} image bytes)`);
  return { clean: Buffer.concat(kept), keyed: kept.length < all.length ? Buffer.concat(all) : null };
}

function decodePng(bytes: Uint8Array, maxPixels: number, fail: (msg: string) => never): Image {
  const { clean, keyed } = sanitizePng(bytes, maxPixels, fail);
  const read = (b: Buffer) => {
    try {
      // skipRescale keeps 16-bit and low-bit-depth samples exact; we normalise them below.
      return PNG.sync.read(b, { skipRescale: true, checkCRC: true });
    } catch (err) {
      return fail(`corrupt PNG data (${firstLine(err)})`);
    }
  };
  const png = read(clean);
  // Palette entries are always 8-bit; other sample values span the declared bit depth.
  const maxValue = png.palette ? 255 : 2 ** png.depth - 1;
  // pngjs has expanded every colour type to RGBA at this point; its data is a Uint16Array for 16-bit.
  const rgba = png.data as unknown as Uint8Array | Uint16Array;
  if (keyed) {
    // Transparency from tRNS (palette alphas, or a colour key): the alpha of a decode with it.
    const alpha = read(keyed).data as unknown as Uint8Array | Uint16Array;
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = alpha[i]!;
  }
  const img = rgbaToImage(rgba, png.width, png.height, maxValue);
  return !png.palette && png.depth === 16 ? { ...img, depth: 16 } : img;
}

/** jpeg-js reports cut-off files as e.g. 'marker was not found'; a missing EOI lets us say 'truncated'. */
function jpegHasEoi(bytes: Uint8Array): boolean {
  let pos = 2;
  // Skip the metadata segments by length: an embedded EXIF thumbnail carries its own EOI.
  while (pos + 4 <= bytes.length && bytes[pos] === 0xff) {
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) { pos++; continue; }
    if (marker === 0xda) break;
    pos += 2 + ((bytes[pos + 2]! << 8) | bytes[pos + 3]!);
  }
  // In entropy-coded data 0xFF is always stuffed or a restart marker, so FF D9 can only be EOI.
  for (let i = pos; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return true;
  }
  return false;
}

/** Width and height from the first SOF segment, or null if none precedes the scan. */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } | null {
  let pos = 2;
  while (pos + 4 <= bytes.length && bytes[pos] === 0xff) {
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) { pos++; continue; }
    if (marker === 0xda || marker === 0xd9) return null;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width follow the length.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 9 > bytes.length) return null;
      return { height: (bytes[pos + 5]! << 8) | bytes[pos + 6]!, width: (bytes[pos + 7]! << 8) | bytes[pos + 8]! };
    }
    pos += 2 + ((bytes[pos + 2]! << 8) | bytes[pos + 3]!);
  }
  return null;
}

function decodeJpg(bytes: Uint8Array, maxPixels: number, fail: (msg: string) => never): Image {
  const size = jpegSize(bytes);
  if (size) checkBudget(size.width, size.height, maxPixels, fail);
  if (!jpegHasEoi(bytes)) fail('truncated JPEG data');
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = decodeJpeg(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: maxPixels / 1e6,
      // jpeg-js holds about 4 B/px of RGBA plus its component planes; allow twice that.
      maxMemoryUsageInMB: Math.ceil((maxPixels * 8) / 2 ** 20) + 64,
    });
  } catch (err) {
    return fail(`corrupt JPEG data (${firstLine(err)})`);
  }
  const upright = applyOrientation(raw, readJpegOrientation(bytes));
  return rgbaToImage(upright.data, upright.width, upright.height);
}

/** Decode PNG or JPEG bytes (format sniffed from magic bytes) to a planar RGB float image. */
export function decodeImage(bytes: Uint8Array, source = 'image', opts: DecodeOptions = {}): Image {
  const fail = decodeFail(source);
  const maxPixels = opts.maxPixels ?? pixelBudget();
  if (bytes.length === 0) fail('file is empty');
  const format = detectImageFormat(bytes);
  if (format === 'png') return decodePng(bytes, maxPixels, fail);
  if (format === 'jpg') return decodeJpg(bytes, maxPixels, fail);
  return fail('not a PNG or JPEG file');
}

function decodeFail(source: string): (msg: string) => never {
  return (msg) => {
    throw new Error(`cannot decode image '${source}': ${msg}`);
  };
}

/**
 * How much of a file may be read as an image: the budget's worst case (16-bit RGBA, 8 B/px, plus
 * 64 MiB for metadata), tightened by the size a PNG or JPEG header declares, and refused at once
 * when the head is no image at all or declares a size over the budget.
 */
export function imageReadLimit(source: string, maxPixels = pixelBudget()): ReadLimit {
  const fail = decodeFail(source);
  const bytesFor = (pixels: number) => pixels * 8 + 64 * 2 ** 20;
  return {
    maxBytes: Math.min(2 ** 31 - 1, bytesFor(maxPixels)),
    fromHead: (head) => {
      const format = detectImageFormat(head);
      if (!format) fail('not a PNG or JPEG file');
      let size = format === 'jpg' ? jpegSize(head) : null;
      if (format === 'png' && head.length >= 24) {
        const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
        if (view.getUint32(12) !== 0x49484452) fail('corrupt PNG data (first chunk is not IHDR)');
        size = { width: view.getUint32(16), height: view.getUint32(20) };
      }
      if (!size) return bytesFor(maxPixels);
      checkBudget(size.width, size.height, maxPixels, fail);
      return bytesFor(size.width * size.height);
    },
  };
}

/**
 * RGB PNG (RGBA when the image has `alpha`; 16 bits per sample when its `depth` is 16, else 8) or
 * quality-95 JPEG (8 bits), 8-bit samples quantised with toByte.
 */
export function encodeImage(img: Image, format: ImageFormat): Uint8Array {
  checkImage(img, `cannot encode ${format}`);
  // A NaN would be written as black: a wrong picture rather than an error.
  const bad = img.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`cannot encode ${format}: value ${img.data[bad]} at index ${bad} (channel ${Math.floor(bad / (img.width * img.height))}); images hold finite values`);
  const { width, height } = img;
  if (format === 'png') {
    // RGB, or RGBA with alpha. The packer only reads width/height/data/gamma, so a plain object
    // avoids PNG's RGBA allocation; 16-bit samples go in the platform's byte order (pngjs reads
    // them as a Uint16Array and writes them big-endian).
    const rgba = img.alpha !== undefined;
    const samples = img.depth === 16 ? imageToInterleaved16(img) : rgba ? imageToRgba8(img) : imageToRgb8(img);
    const meta = { width, height, data: Buffer.from(samples.buffer), gamma: 0 } as unknown as PNG;
    const colorType = rgba ? 6 : 2;
    const out = PNG.sync.write(meta, { colorType, inputColorType: colorType, inputHasAlpha: rgba, bitDepth: img.depth ?? 8 });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  if (format === 'jpg') {
    const out = encodeJpeg({ width, height, data: imageToRgba8(img) }, JPEG_QUALITY).data;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  throw new Error(`cannot encode image: unknown format '${String(format)}'`);
}

/** Reads and decodes a PNG or JPEG; reads are capped by the pixel budget (`DecodeOptions.maxPixels`, default `pixelBudget()`). */
export async function readImage(path: string, opts: DecodeOptions = {}): Promise<Image> {
  const maxPixels = opts.maxPixels ?? pixelBudget();
  return decodeImage(await readFileBytes(path, imageReadLimit(path, maxPixels)), path, { maxPixels });
}

/** Format defaults to the path's extension (.png/.jpg/.jpeg); the file is replaced atomically. */
export async function writeImage(path: string, img: Image, format?: ImageFormat): Promise<void> {
  const fmt = format ?? formatFromPath(path);
  if (!fmt) throw new Error(`cannot write image '${path}': unknown extension, use .png, .jpg or .jpeg`);
  let bytes: Uint8Array;
  try {
    bytes = encodeImage(img, fmt);
  } catch (err) {
    throw new Error(`cannot write image '${path}': ${firstLine(err)}`);
  }
  await writeFileAtomic(path, bytes);
}
