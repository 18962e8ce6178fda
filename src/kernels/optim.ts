// Optimizer update kernels (in place on the parameter buffers).
import code from '../../shaders/optim.wgsl';
import { f32 } from '../gpu/runtime.js';
import type { Tensor } from '../core/tensor.js';
import { grid } from './util.js';

const WG = 256;

export function sgdUpdate(p: Tensor, g: Tensor, buf: Tensor, lr: number, momentum: number, dampening: number, weightDecay: number, first: boolean): void {
  p.engine.dispatch({
    label: 'sgd',
    code,
    entry: 'sgd',
    constants: { WG },
    uniforms: [p.size, f32(lr), f32(momentum), f32(weightDecay), f32(dampening), first ? 1 : 0],
    bindings: [p.binding(), g.binding(), buf.binding()],
    workgroups: grid(p.engine, Math.ceil(p.size / WG)),
  });
}

export function adamUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, step: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number): void {
  const bc1 = 1 - beta1 ** step;
  const bc2s = Math.sqrt(1 - beta2 ** step);
  p.engine.dispatch({
    label: 'adam',
    code,
    entry: 'adam',
    constants: { WG },
    uniforms: [p.size, f32((lr * bc2s) / bc1), f32(beta1), f32(beta2), f32(eps * bc2s), f32(weightDecay)],
    bindings: [p.binding(), g.binding(), m.binding(), v.binding()],
    workgroups: grid(p.engine, Math.ceil(p.size / WG)),
  });
}
