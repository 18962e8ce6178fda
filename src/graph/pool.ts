// Differentiable pooling: max and average 2-D pooling (no padding, floor output size) and global average pooling.
import * as pool from '../kernels/pool.js';
import type { PerAxis } from '../kernels/util.js';
import { defineOp } from './autograd.js';
import type { Tensor } from '../core/tensor.js';

export type { PerAxis } from '../kernels/util.js';

interface PoolAttrs {
  kernel: PerAxis;
  stride: PerAxis;
}

const maxPoolDef = defineOp<PoolAttrs>({
  name: 'maxPool2d',
  forward(ctx, [x], { kernel, stride }) {
    const { y, arg } = pool.maxPoolForward(x, kernel, stride, ctx.recording);
    if (arg) {
      ctx.save(arg);
      arg.dispose();
    }
    return y;
  },
  backward: (ctx, [g], { kernel, stride }) => [pool.maxPoolBackward(ctx.inputShapes[0], ctx.saved[0], g!, kernel, stride)],
});

/** Max pooling, no padding, floor output size; the gradient goes to the first maximum of each window. One dispatch each way. */
export const maxPool2d = (x: Tensor, kernel: PerAxis = 2, stride: PerAxis = kernel): Tensor => maxPoolDef([x], { kernel, stride })[0];

const avgPoolDef = defineOp<PoolAttrs>({
  name: 'avgPool2d',
  forward: (_ctx, [x], { kernel, stride }) => pool.avgPoolForward(x, kernel, stride),
  backward: (ctx, [g], { kernel, stride }) => [pool.avgPoolBackward(ctx.inputShapes[0], g!, kernel, stride)],
});

/** Average pooling, no padding, floor output size. One dispatch each way. */
export const avgPool2d = (x: Tensor, kernel: PerAxis = 2, stride: PerAxis = kernel): Tensor => avgPoolDef([x], { kernel, stride })[0];

const globalAvgPoolDef = defineOp({
  name: 'globalAvgPool',
  forward: (_ctx, [x]) => pool.globalAvgPoolForward(x),
  backward: (ctx, [g]) => [pool.globalAvgPoolBackward(ctx.inputShapes[0], g!)],
});

/** Mean over H, W: [N,C,H,W] -> [N,C,1,1]. */
export const globalAvgPool = (x: Tensor): Tensor => globalAvgPoolDef([x], undefined)[0];
