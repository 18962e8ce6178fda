// One supervised forward/backward of the network on one image pair, for checking against PyTorch.
import type { Engine } from '../gpu/runtime.js';
import { backward } from '../graph/autograd.js';
import { add, l1Loss, mulScalar } from '../graph/ops.js';
import { Tensor, tidy } from '../graph/tensor.js';
import type { Image } from '../io/image.js';
import type { NamedSerializableTensor } from '../io/safetensors.js';
import type { DrdNet } from './drdnet.js';

export function imageTensor(engine: Engine, img: Image): Tensor {
  return Tensor.fromData(engine, img.data, [1, 3, img.height, img.width]);
}

/** The supervised loss of the authors' code: 0.1 * L1(O - R, B) + L1(O - R + D, B). */
export function supervisedLoss(derained: Tensor, final: Tensor, clean: Tensor): Tensor {
  return tidy(() => add(mulScalar(l1Loss(derained, clean), 0.1), l1Loss(final, clean)));
}

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
  const engine = model.parameters()[0].engine;
  model.train(mode === 'train');
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  const o = imageTensor(engine, rainy);
  const b = imageTensor(engine, clean);
  const out = model.forward(o);
  const loss = supervisedLoss(out.derained, out.final, b);
  backward(loss);
  const shape = [1, 3, rainy.height, rainy.width];
  const result: NamedSerializableTensor[] = [
    { name: 'output.derained', dtype: 'F32', shape, data: await out.derained.read() },
    { name: 'output.final', dtype: 'F32', shape, data: await out.final.read() },
    { name: 'loss', dtype: 'F32', shape: [1], data: await loss.read() },
  ];
  for (const [name, p] of model.namedParameters()) {
    result.push({ name: `grad.${name}`, dtype: 'F32', shape: [...p.shape], data: p.grad ? await p.grad.read() : new Float32Array(p.size) });
    p.grad?.dispose();
    p.grad = null;
  }
  for (const t of new Set([o, b, loss, out.rain, out.derained, out.final, out.detail])) t?.dispose();
  return result;
}
