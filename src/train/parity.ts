// One supervised forward/backward of the network on one image pair, for checking against PyTorch.
import { backward, noGrad } from '../graph/autograd.js';
import { mulScalar } from '../graph/ops.js';
import { Tensor } from '../core/tensor.js';
import type { Image } from '../io/image.js';
import type { NamedSerializableTensor } from '../io/safetensors.js';
import type { DrdNet } from '../model/drdnet.js';
import { supervisedLoss } from './loss.js';

/**
 * Runs the model on `rainy` (BN batch statistics in 'train' mode, running statistics in 'eval'),
 * backpropagates the supervised loss against `clean`, and returns output.derained, output.final,
 * loss ([1]) and grad.<name> for every trainable parameter. Running statistics are updated in
 * 'train' mode, as PyTorch does.
 */
export async function parityTensors(model: DrdNet, rainy: Image, clean: Image, mode: 'train' | 'eval'): Promise<NamedSerializableTensor[]> {
  if (rainy.width !== clean.width || rainy.height !== clean.height) {
    throw new Error(`rainy image is ${rainy.width}x${rainy.height} but clean image is ${clean.width}x${clean.height}`);
  }
  return (await parityStep(model, rainy.data, clean.data, [1, 3, rainy.height, rainy.width], mode)).tensors;
}

export interface ParityStep {
  tensors: NamedSerializableTensor[];
  /**
   * With `kinks`: per PReLU (its module prefix), 1 where the float32 pre-activation was > 0. A
   * float64 reference needs these to follow the float32 forward across a kink it cannot resolve.
   */
  preluPositive: Map<string, Uint8Array>;
}

/** parityTensors over a batch: `rainy`, `clean` are [N,3,H,W] data of `shape`. */
export async function parityStep(model: DrdNet, rainy: ArrayLike<number>, clean: ArrayLike<number>, shape: readonly number[], mode: 'train' | 'eval', opts: { kinks?: boolean } = {}): Promise<ParityStep> {
  const engine = model.parameters()[0].engine;
  model.train(mode === 'train');
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  const taps: Array<[string, Tensor]> = [];
  // PReLU slopes are positive, so the output has the sign of the pre-activation; keep a copy.
  model.tap = opts.kinks ? (name, t) => taps.push([name, noGrad(() => mulScalar(t, 1)).keep()]) : null;
  const o = Tensor.fromData(engine, rainy, shape);
  const b = Tensor.fromData(engine, clean, shape);
  let out;
  try {
    out = model.forward(o);
  } finally {
    model.tap = null;
  }
  const loss = supervisedLoss(out.derained, out.final, b);
  backward(loss);
  const tensors: NamedSerializableTensor[] = [
    { name: 'output.derained', dtype: 'F32', shape: [...shape], data: await out.derained.read() },
    { name: 'output.final', dtype: 'F32', shape: [...shape], data: await out.final.read() },
    { name: 'loss', dtype: 'F32', shape: [1], data: await loss.read() },
  ];
  for (const [name, p] of model.namedParameters()) {
    tensors.push({ name: `grad.${name}`, dtype: 'F32', shape: [...p.shape], data: p.grad ? await p.grad.read() : new Float32Array(p.size) });
    p.grad?.dispose();
    p.grad = null;
  }
  const preluPositive = new Map<string, Uint8Array>();
  for (const [name, t] of taps) {
    preluPositive.set(name, Uint8Array.from(await t.read(), (v) => (v > 0 ? 1 : 0)));
    t.dispose();
  }
  for (const t of new Set([o, b, loss, out.rain, out.derained, out.final, out.detail])) t?.dispose();
  return { tensors, preluPositive };
}
