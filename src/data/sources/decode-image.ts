/**
 * Image files into pixels: PNG (pngjs) and JPEG (jpeg-js), both pure JavaScript, recognized by
 * their first bytes rather than their names; then converted to 1 or 3 channels and resized
 * with bilinear interpolation (TensorFlow 2's `tf.image.resize`, half-pixel centers, as Keras's
 * `image_dataset_from_directory` does).
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError } from '../../errors.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/** Images of more pixels than this are refused (a bound against decompression bombs). */
const MAX_MEGAPIXELS = 100;

export interface DecodedImage {
  width: number;
  height: number;
  /** 8-bit RGBA, row-major. */
  rgba: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

function hexStart(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ') || 'nothing (empty file)';
}

/** Decodes a PNG or JPEG file's bytes; `file` names it in errors. */
export function decodeImage(bytes: Uint8Array, file: string): DecodedImage {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, PNG_MAGIC)) {
    try {
      const png = PNG.sync.read(buffer);
      if (png.width * png.height > MAX_MEGAPIXELS * 1e6) throw new Error(`${png.width}x${png.height} is more than ${MAX_MEGAPIXELS} megapixels`);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    } catch (error) {
      throw new DataError(`${file}: expected a valid PNG image, found a damaged one (${(error as Error).message})`, { cause: error });
    }
  }
  if (startsWith(bytes, JPEG_MAGIC)) {
    try {
      const image = jpeg.decode(buffer, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS });
      return { width: image.width, height: image.height, rgba: image.data };
    } catch (error) {
      throw new DataError(`${file}: expected a valid JPEG image, found a damaged one (${(error as Error).message})`, { cause: error });
    }
  }
  throw new DataError(`${file}: expected a PNG or JPEG image, found a file starting with ${hexStart(bytes)}`);
}

/** RGBA into 3 (RGB, alpha dropped) or 1 channel (ITU-R 601 luma, as TensorFlow's rgb_to_grayscale). */
export function toChannels(image: DecodedImage, channels: 1 | 3): Float32Array {
  const n = image.width * image.height;
  const out = new Float32Array(n * channels);
  const px = image.rgba;
  for (let i = 0; i < n; i++) {
    const r = px[4 * i]!;
    const g = px[4 * i + 1]!;
    const b = px[4 * i + 2]!;
    if (channels === 3) {
      out[3 * i] = r;
      out[3 * i + 1] = g;
      out[3 * i + 2] = b;
    } else {
      out[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    }
  }
  return out;
}

/**
 * Bilinear resize of an [height, width, channels] image with half-pixel centers (TensorFlow 2's
 * tf.image.resize, tfjs's resizeBilinear with halfPixelCenters: true).
 */
export function resizeBilinear(src: Float32Array, height: number, width: number, channels: number, outHeight: number, outWidth: number): Float32Array {
  const out = new Float32Array(outHeight * outWidth * channels);
  const rowScale = height / outHeight;
  const colScale = width / outWidth;
  for (let y = 0; y < outHeight; y++) {
    const fy = rowScale * (y + 0.5) - 0.5;
    const y0 = Math.max(0, Math.floor(fy));
    const y1 = Math.min(height - 1, Math.ceil(fy));
    const dy = fy - y0;
    for (let x = 0; x < outWidth; x++) {
      const fx = colScale * (x + 0.5) - 0.5;
      const x0 = Math.max(0, Math.floor(fx));
      const x1 = Math.min(width - 1, Math.ceil(fx));
      const dx = fx - x0;
      for (let c = 0; c < channels; c++) {
        const tl = src[(y0 * width + x0) * channels + c]!;
        const tr = src[(y0 * width + x1) * channels + c]!;
        const bl = src[(y1 * width + x0) * channels + c]!;
        const br = src[(y1 * width + x1) * channels + c]!;
        const top = tl + (tr - tl) * dx;
        const bottom = bl + (br - bl) * dx;
        out[(y * outWidth + x) * channels + c] = top + (bottom - top) * dy;
      }
    }
  }
  return out;
}

/** A decoded image as `channels` bytes per pixel at [height, width] (rounded, clamped to 0..255). */
export function imageToPixels(image: DecodedImage, size: readonly [number, number], channels: 1 | 3): Uint8Array {
  const floats = toChannels(image, channels);
  const resized = image.height === size[0] && image.width === size[1] ? floats : resizeBilinear(floats, image.height, image.width, channels, size[0], size[1]);
  const out = new Uint8Array(resized.length);
  for (let i = 0; i < resized.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(resized[i]!)));
  return out;
}
