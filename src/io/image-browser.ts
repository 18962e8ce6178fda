// Browser image codecs: decode with the browser's own decoders but without colour management, and
// encode PNG through a canvas, quantising with the shared toByte rule (see image.ts).
import { detectImageFormat, imageToRgba8, rgbaToImage, type Image, type ImageFormat } from './image.js';

type Canvas2D = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

function canvas(width: number, height: number): { ctx: Canvas2D; toBlob: (type: string, quality?: number) => Promise<Blob> } {
  if (typeof OffscreenCanvas !== 'undefined') {
    const c = new OffscreenCanvas(width, height);
    const ctx = c.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('this browser cannot create a 2D canvas');
    return { ctx, toBlob: (type, quality) => c.convertToBlob({ type, quality }) };
  }
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser cannot create a 2D canvas');
  const toBlob = (type: string, quality?: number) =>
    new Promise<Blob>((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error(`cannot encode ${type}`))), type, quality));
  return { ctx, toBlob };
}

/** Whether the bytes look like an image format browsers decode (PNG, JPEG, GIF, WebP, BMP). */
function looksLikeImage(bytes: Uint8Array): boolean {
  if (detectImageFormat(bytes)) return true;
  const ascii = (o: number, n: number) => String.fromCharCode(...bytes.subarray(o, o + n));
  return ascii(0, 4) === 'GIF8' || (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') || ascii(0, 2) === 'BM';
}

/**
 * Decodes an image file to planar RGB float, as the Node decoder would: raw 8-bit samples (no ICC
 * or gamma conversion; alpha kept beside the colours as in Node), EXIF orientation applied. Known differences from Node, all
 * outside opaque 8-bit PNGs: 16-bit PNGs arrive as 8-bit (up to 0.5/255 per sample); a canvas
 * stores premultiplied pixels, so RGB under alpha < 255 loses precision (and is 0 where alpha is
 * 0); JPEG decoders differ slightly between libjpeg-turbo and jpeg-js.
 */
export async function decodeImageBlob(blob: Blob, source = 'image'): Promise<Image> {
  const fail = (msg: string): never => {
    throw new Error(`cannot decode image '${source}': ${msg}`);
  };
  if (blob.size === 0) fail('file is empty');
  const head = new Uint8Array(await blob.slice(0, 16).arrayBuffer());
  if (!looksLikeImage(head)) fail('not a PNG, JPEG, GIF, WebP or BMP file');
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch (e) {
    return fail(`the browser could not decode it (${(e as Error).message || 'corrupt or truncated data'})`);
  }
  try {
    return bitmapToImage(bitmap);
  } finally {
    bitmap.close();
  }
}

/** An ImageBitmap's raw samples as planar RGB float (with `alpha` where not opaque), through a 2D canvas. */
export function bitmapToImage(bitmap: ImageBitmap): Image {
  const { width, height } = bitmap;
  const { ctx } = canvas(width, height);
  // 'copy' writes the samples as they are; drawing over a transparent canvas would blend alpha.
  ctx.globalCompositeOperation = 'copy';
  ctx.drawImage(bitmap, 0, 0);
  const px = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
  return rgbaToImage(px.data, width, height);
}

/** 8-bit RGBA pixels of an image, ready for a canvas (toByte quantisation; opaque unless it has `alpha`). */
export function imageToImageData(img: Image): ImageData {
  const rgba = imageToRgba8(img);
  return new ImageData(new Uint8ClampedArray(rgba.buffer as ArrayBuffer, rgba.byteOffset, rgba.byteLength), img.width, img.height);
}

/**
 * PNG (lossless for opaque images: bytes equal the Node encoder's samples; where alpha < 255 the
 * canvas premultiplies) or JPEG at the CLI's quality, opaque as Node writes it.
 */
export async function encodeImageBlob(img: Image, format: ImageFormat = 'png'): Promise<Blob> {
  const { ctx, toBlob } = canvas(img.width, img.height);
  ctx.putImageData(imageToImageData(format === 'png' ? img : { width: img.width, height: img.height, data: img.data }), 0, 0);
  return format === 'png' ? toBlob('image/png') : toBlob('image/jpeg', 0.95);
}
