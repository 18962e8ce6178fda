// Platform-neutral image types and pixel conversions, shared by the Node codecs and the browser.
import { describeValue } from '../util/describe.js';

/** Planar CHW RGB in [0,1]: data[c*H*W + y*W + x], i.e. an NCHW tensor with N=1. */
export interface Image {
  width: number;
  height: number;
  data: Float32Array;
  /**
   * Opacity per pixel in [0,1] (row-major, width*height), present when the source had
   * transparency. The network never sees it: derain passes it through, PNG output keeps it
   * (JPEG cannot), so transparent areas stay transparent rather than showing the RGB under them.
   */
  alpha?: Float32Array;
  /**
   * 16 when the source stored 16 bits per sample (a 16-bit PNG); derain passes it through and the
   * Node PNG encoder then writes 16 bits, so the result is not rounded to 8 bits (the browser's
   * canvas encoder writes 8). Absent: 8 bits.
   */
  depth?: 16;
}

/** Interleaved 4-channel pixels, the layout decoders and canvases produce. */
export interface Rgba8 {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An image file format the package reads and writes. */
export type ImageFormat = 'png' | 'jpg';

/** The one float->byte rule, so Node and browser outputs are bit-identical. */
export function toByte(v: number): number {
  // Equals Math.round(clamp(v, 0, 1) * 255), written so NaN deterministically becomes 0 rather than NaN.
  if (!(v > 0)) return 0;
  if (v >= 1) return 255;
  return Math.round(v * 255);
}

export function checkImage(img: Image, what = 'image'): void {
  if (typeof img !== 'object' || img === null) throw new Error(`${what}: expected an image { width, height, data }, got ${describeValue(img)}`);
  const { width, height, data } = img;
  for (const [k, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${what}: ${k} must be a positive integer, got ${describeValue(v)}`);
  }
  if (!(data instanceof Float32Array) || data.length !== 3 * width * height) {
    throw new Error(`${what}: data must be a Float32Array of 3*${height}*${width} = ${3 * width * height} values, got ${describeValue(data)}`);
  }
  if (img.depth !== undefined && img.depth !== 16) throw new Error(`${what}: depth must be 16 or absent, got ${describeValue(img.depth)}`);
  if (img.alpha !== undefined && (!(img.alpha instanceof Float32Array) || img.alpha.length !== width * height)) {
    throw new Error(`${what}: alpha must be a Float32Array of ${height}*${width} = ${width * height} values, got ${describeValue(img.alpha)}`);
  }
}

/**
 * Interleaved RGBA (any integer sample type) -> planar RGB float. Alpha is never composited in
 * (that would alter the raw samples the network sees); where a pixel is not opaque it is kept
 * beside the colours as `alpha`.
 */
export function rgbaToImage(rgba: ArrayLike<number>, width: number, height: number, maxValue = 255): Image {
  const plane = width * height;
  if (rgba.length < plane * 4) throw new Error(`rgbaToImage: need ${plane * 4} samples for ${width}x${height}, got ${rgba.length}`);
  const data = new Float32Array(plane * 3);
  const scale = 1 / maxValue;
  let opaque = true;
  for (let i = 0; i < plane; i++) {
    data[i] = rgba[i * 4]! * scale;
    data[plane + i] = rgba[i * 4 + 1]! * scale;
    data[2 * plane + i] = rgba[i * 4 + 2]! * scale;
    if (rgba[i * 4 + 3]! !== maxValue) opaque = false;
  }
  if (opaque) return { width, height, data };
  const alpha = new Float32Array(plane);
  for (let i = 0; i < plane; i++) alpha[i] = rgba[i * 4 + 3]! * scale;
  return { width, height, data, alpha };
}

function toInterleaved(img: Image, channels: 3 | 4): Uint8Array {
  checkImage(img);
  const plane = img.width * img.height;
  const out = new Uint8Array(plane * channels);
  const d = img.data;
  for (let i = 0; i < plane; i++) {
    const o = i * channels;
    out[o] = toByte(d[i]!);
    out[o + 1] = toByte(d[plane + i]!);
    out[o + 2] = toByte(d[2 * plane + i]!);
    if (channels === 4) out[o + 3] = img.alpha ? toByte(img.alpha[i]!) : 255;
  }
  return out;
}

/**
 * Interleaved 16-bit samples (RGB, or RGBA with `alpha`) in the platform's byte order, for a 16-bit
 * PNG; each sample is round(clamp(v, 0, 1) * 65535), NaN as 0.
 */
export function imageToInterleaved16(img: Image): Uint16Array {
  checkImage(img);
  const plane = img.width * img.height;
  const channels = img.alpha ? 4 : 3;
  const out = new Uint16Array(plane * channels);
  const q = (v: number) => (v > 0 ? (v < 1 ? Math.round(v * 65535) : 65535) : 0);
  for (let i = 0; i < plane; i++) {
    const o = i * channels;
    for (let c = 0; c < 3; c++) out[o + c] = q(img.data[c * plane + i]!);
    if (img.alpha) out[o + 3] = q(img.alpha[i]!);
  }
  return out;
}

/** What a derained image carries over from its source besides the colours (a copy of alpha, the depth). */
export function sourceTraits(img: Image): Pick<Image, 'alpha' | 'depth'> {
  return { ...(img.alpha && { alpha: img.alpha.slice() }), ...(img.depth && { depth: img.depth }) };
}

/** RGBA8 (opaque unless the image has `alpha`), e.g. for ImageData or jpeg-js (which drops alpha). */
export function imageToRgba8(img: Image): Uint8Array {
  return toInterleaved(img, 4);
}

export function imageToRgb8(img: Image): Uint8Array {
  return toInterleaved(img, 3);
}

/** Sniff the container from magic bytes; file extensions lie too often to trust. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpg';
  return null;
}

/** Output format implied by a path's extension, or null if it is not .png/.jpg/.jpeg. */
export function formatFromPath(path: string): ImageFormat | null {
  const ext = /\.([^./\\]+)$/.exec(path)?.[1]?.toLowerCase();
  if (ext === 'png') return 'png';
  if (ext === 'jpg' || ext === 'jpeg') return 'jpg';
  return null;
}

/**
 * EXIF orientation (1-8) of a JPEG, or 1 when absent. Malformed EXIF also yields 1: a broken
 * camera tag should not make an otherwise decodable photo unusable.
 */
export function readJpegOrientation(bytes: Uint8Array): number {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return 1;
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) { pos++; continue; } // fill bytes before a marker are legal
    if (marker === 0xda || marker === 0xd9) return 1; // metadata segments all precede the scan
    const len = view.getUint16(pos + 2);
    if (len < 2 || pos + 2 + len > bytes.length) return 1;
    if (marker === 0xe1) {
      const o = readExifOrientation(view, pos + 4, pos + 2 + len);
      if (o !== 0) return o;
    }
    pos += 2 + len;
  }
  return 1;
}

/** Orientation from an APP1 payload [start,end), or 0 if this APP1 is not EXIF or lacks the tag. */
function readExifOrientation(view: DataView, start: number, end: number): number {
  const exifId = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
  if (end - start < 14 || !exifId.every((b, i) => view.getUint8(start + i) === b)) return 0;
  const tiff = start + 6;
  const order = view.getUint16(tiff);
  if (order !== 0x4949 && order !== 0x4d4d) return 0; // "II" little-endian, "MM" big-endian
  const le = order === 0x4949;
  if (view.getUint16(tiff + 2, le) !== 42) return 0;
  const ifd0 = tiff + view.getUint32(tiff + 4, le);
  if (ifd0 + 2 > end) return 0;
  const count = view.getUint16(ifd0, le);
  for (let i = 0; i < count; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (entry + 12 > end) return 0;
    if (view.getUint16(entry, le) !== 0x0112) continue;
    // Type 3 (SHORT) with count 1 stores the value left-justified in the 4-byte value field.
    if (view.getUint16(entry + 2, le) !== 3) return 0;
    const value = view.getUint16(entry + 8, le);
    return value >= 1 && value <= 8 ? value : 0;
  }
  return 0;
}

/** Rotate/flip stored pixels so they display upright, per EXIF orientation 1-8. */
export function applyOrientation(img: Rgba8, orientation: number): Rgba8 {
  if (orientation < 2 || orientation > 8 || !Number.isInteger(orientation)) return img;
  const { width: w, height: h, data: src } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(w * h * 4);
  // Each case maps an output pixel (x, y) back to its stored source pixel (sx, sy).
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break; // mirror horizontal
        case 3: sx = w - 1 - x; sy = h - 1 - y; break; // rotate 180
        case 4: sx = x; sy = h - 1 - y; break; // mirror vertical
        case 5: sx = y; sy = x; break; // transpose
        case 6: sx = y; sy = h - 1 - x; break; // rotate 90 clockwise
        case 7: sx = w - 1 - y; sy = h - 1 - x; break; // transverse
        default: sx = w - 1 - y; sy = x; break; // 8: rotate 90 counter-clockwise
      }
      const s = (sy * w + sx) * 4;
      const o = (y * ow + x) * 4;
      out[o] = src[s]!;
      out[o + 1] = src[s + 1]!;
      out[o + 2] = src[s + 2]!;
      out[o + 3] = src[s + 3]!;
    }
  }
  return { width: ow, height: oh, data: out };
}
