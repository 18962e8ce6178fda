// The supervised training loss of Semi-DRDNet (the authors' code), used by the trainer, the parity step and the bench.
import { add, l1Loss, mulScalar } from '../graph/ops.js';
import { tidy, type Tensor } from '../core/tensor.js';

/** The supervised loss of the authors' code: 0.1 * L1(O - R, B) + L1(O - R + D, B). */
export function supervisedLoss(derained: Tensor, final: Tensor, clean: Tensor): Tensor {
  return tidy(() => add(mulScalar(l1Loss(derained, clean), 0.1), l1Loss(final, clean)));
}
