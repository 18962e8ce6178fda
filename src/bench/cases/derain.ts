// derainImage end to end (tiling, SE stages, uploads and readbacks included): ms per megapixel, small and large images.
import type { BenchCase } from '../case.js';
import { macsPerPixel, preset, type PresetName } from '../../model/config.js';
import { derainImage } from '../../model/derain.js';
import { DrdNet } from '../../model/drdnet.js';

function derain(name: PresetName, w: number, h: number, quick = false): BenchCase {
  const c = preset(name);
  return {
    name: 'model.derain',
    shape: `${name} ${w}x${h}`,
    quick,
    // The untiled network's work: a tiled run's halos show up as fewer GFLOP/s, not more FLOPs.
    flops: 2 * macsPerPixel(c) * w * h,
    pixels: w * h,
    setup(engine) {
      const model = new DrdNet(engine, c, 1);
      let s = 7;
      // A smooth gradient with noise, in [0, 1]: finite outputs whatever the random weights.
      const data = Float32Array.from({ length: 3 * w * h }, (_, i) => 0.5 * ((i % w) / w) + 0.5 * ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32));
      const img = { width: w, height: h, data };
      return {
        run: async () => void (await derainImage(model, img)),
        dispose: () => model.dispose(),
      };
    },
  };
}

// The large/small ms-per-MP ratio (issue #13): 256x256 runs untiled; 12 MP (4000x3000) is tiled on
// every device; 2 MP is tiled where the binding limit is 128 MiB (lavapipe). 2 MP is not in the quick
// set: about 20 s a run on lavapipe, and minutes on the browser bench page's SwiftShader.
export const cases: BenchCase[] = [
  derain('tiny', 256, 256, true),
  derain('tiny', 1800, 1200),
  derain('tiny', 4000, 3000),
];
