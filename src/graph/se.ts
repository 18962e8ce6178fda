// Differentiable squeeze-and-excitation (the channel gate of Semi-DRDNet's rain blocks).
import { squeezeExciteBackward, squeezeExciteForward } from '../kernels/se.js';
import { defineOp } from './autograd.js';
import type { Tensor } from '../core/tensor.js';

const seDef = defineOp({
  name: 'squeezeExcite',
  forward(ctx, [x, w1, w2]) {
    const { y, saved } = squeezeExciteForward(x, w1, w2, ctx.recording);
    ctx.save(x, w1, w2, saved);
    saved.dispose();
    return y;
  },
  backward(ctx, [g]) {
    const [x, w1, w2, saved] = ctx.saved;
    const r = squeezeExciteBackward(x, w1, w2, saved, g!, ctx.needsGrad[1] || ctx.needsGrad[2]);
    return [ctx.needsGrad[0] ? r.dx : null, ctx.needsGrad[1] ? r.dw1 : null, ctx.needsGrad[2] ? r.dw2 : null];
  },
});

/**
 * Squeeze-and-excitation: x * sigmoid(w2 relu(w1 mean_hw(x))) per (n, c), w1 [hidden, C],
 * w2 [C, hidden], no biases. Forward 2 dispatches, backward 2.
 */
export const squeezeExcite = (x: Tensor, w1: Tensor, w2: Tensor): Tensor => seDef([x, w1, w2], undefined)[0];
