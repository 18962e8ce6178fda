// Whole-network benchmarks: inference (ms per megapixel) and one training step, tiny and paper.
import type { BenchCase } from '../case.js';
import type { Engine } from '../../gpu/runtime.js';
import { backward, noGrad } from '../../graph/autograd.js';
import { Tensor, tidy } from '../../core/tensor.js';
import { macsPerPixel, preset, type PresetName } from '../../model/config.js';
import { DrdNet } from '../../model/drdnet.js';
import { supervisedLoss } from '../../train/loss.js';
import { Adam } from '../../train/optim.js';

function input(engine: Engine, shape: number[], seed: number): Tensor {
  let s = seed;
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32));
  return Tensor.fromData(engine, data, shape);
}

function infer(name: PresetName, h: number, w: number, quick = false): BenchCase {
  const c = preset(name);
  return {
    name: 'model.infer',
    shape: `${name} 1x3x${h}x${w}`,
    quick,
    flops: 2 * macsPerPixel(c) * h * w,
    pixels: h * w,
    setup(engine) {
      const model = new DrdNet(engine, c, 1).eval();
      // Inference as derainImage runs it: BatchNorm and PReLU folded into the convs.
      const unfold = model.foldForInference();
      const x = input(engine, [1, 3, h, w], 7);
      return {
        run: () => tidy(() => noGrad(() => model.forward(x).final)).dispose(),
        dispose: () => (unfold(), x.dispose(), model.dispose()),
      };
    },
  };
}

function trainStep(name: PresetName, n: number, p: number, quick = false): BenchCase {
  const c = preset(name);
  return {
    name: 'model.train_step',
    shape: `${name} ${n}x3x${p}x${p}`,
    quick,
    // forward + input gradient + weight gradient: about three forward passes
    flops: 3 * 2 * macsPerPixel(c) * n * p * p,
    pixels: n * p * p,
    setup(engine) {
      const model = new DrdNet(engine, c, 1).train();
      const opt = new Adam(model.parameters(), { lr: 1e-4 });
      const o = input(engine, [n, 3, p, p], 3);
      const b = input(engine, [n, 3, p, p], 5);
      return {
        run() {
          const loss = tidy(() => {
            const out = model.forward(o);
            return supervisedLoss(out.derained, out.final, b);
          });
          backward(loss);
          loss.dispose();
          opt.step();
          opt.zeroGrad();
        },
        dispose: () => (opt.dispose(), o.dispose(), b.dispose(), model.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  infer('micro', 128, 128, true),
  infer('tiny', 256, 256),
  infer('paper', 64, 64),
  trainStep('micro', 2, 64, true),
  trainStep('tiny', 4, 96),
  trainStep('paper', 1, 64),
];
