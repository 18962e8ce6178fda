// The before/after view: two canvases, either stacked with a draggable split or side by side.
import { imageToImageData } from '../../src/io/image-browser.js';
import type { Image } from '../../src/io/image.js';
import { el } from './dom.js';

/** Small images are shown enlarged by a whole factor (pixelated) so a comparison is possible. */
const MIN_DISPLAY = 480;

function draw(canvas: HTMLCanvasElement, img: Image): void {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d')!.putImageData(imageToImageData(img), 0, 0);
  const scale = Math.max(1, Math.floor(MIN_DISPLAY / Math.max(img.width, img.height)));
  canvas.style.width = `${img.width * scale}px`;
}

export class CompareView {
  readonly #root = el('compare');
  readonly #before = el<HTMLCanvasElement>('before-canvas');
  readonly #after = el<HTMLCanvasElement>('after-canvas');
  readonly #split = el<HTMLInputElement>('split');

  constructor() {
    const apply = () => this.#root.style.setProperty('--split', `${this.#split.value}%`);
    this.#split.addEventListener('input', apply);
    apply();
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="view"]')) {
      r.addEventListener('change', () => r.checked && this.mode(r.value as 'slider' | 'side'));
    }
  }

  mode(m: 'slider' | 'side'): void {
    this.#root.classList.toggle('slider', m === 'slider');
    this.#root.classList.toggle('side', m === 'side');
  }

  /** A new photo: both panes show it until the derained result arrives. */
  setBefore(img: Image): void {
    draw(this.#before, img);
    draw(this.#after, img);
    el('viewer').hidden = false;
  }

  setAfter(img: Image): void {
    draw(this.#after, img);
  }
}
