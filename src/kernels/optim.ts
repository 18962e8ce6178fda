// Optimizer update kernels (in place on the parameter buffers).
import code from '../../shaders/optim.wgsl';
import type { Tensor } from '../core/tensor.js';
import { grid } from './util.js';

const WG = 256;

export function sgdUpdate(p: Tensor, g: Tensor, buf: Tensor, lr: number, momentum: number, dampening: number, weightDecay: number, first: boolean): void {
  p.engine.dispatch({
    label: 'sgd',
    code,
    entry: 'sgd',
    constants: { WG },
    uniforms: { n: p.size, lr, momentum, weight_decay: weightDecay, dampening, first: first ? 1 : 0 },
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
    uniforms: { n: p.size, step_size: (lr * bc2s) / bc1, beta1, beta2, eps_hat: eps * bc2s, weight_decay: weightDecay },
    bindings: [p.binding(), g.binding(), m.binding(), v.binding()],
    workgroups: grid(p.engine, Math.ceil(p.size / WG)),
  });
}
