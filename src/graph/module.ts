// Module base: parameters, buffers and children with PyTorch-style dotted names in state_dict order.
import type { Tensor } from '../core/tensor.js';

/** Base of layers and networks: parameters, buffers and children with PyTorch-style dotted names; train/eval mode. */
export class Module {
  /** Training mode (batch statistics in BatchNorm); switch with train()/eval(). */
  training = true;
  #params: Array<[string, Tensor]> = [];
  #buffers: Array<[string, Tensor]> = [];
  #children: Array<[string, Module]> = [];

  /** Registers a trainable tensor (requiresGrad is set) and returns it. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    t.keep();
    this.#params.push([name, t]);
    return t;
  }

  /** Registers a non-trainable state tensor (e.g. BatchNorm running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    t.keep();
    this.#buffers.push([name, t]);
    return t;
  }

  /** Registers a child module under `name` (its tensors get the `name.` prefix). */
  protected child<M extends Module>(name: string, m: M): M {
    this.#children.push([name, m]);
    return m;
  }

  /** Trainable parameters with dotted names, in PyTorch's state_dict order. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = this.#params.map(([n, t]) => [prefix + n, t]);
    for (const [n, m] of this.#children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Trainable parameters in state_dict order. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters and buffers in PyTorch's state_dict order: own params, own buffers, then children. */
  stateDict(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [
      ...this.#params.map(([n, t]): [string, Tensor] => [prefix + n, t]),
      ...this.#buffers.map(([n, t]): [string, Tensor] => [prefix + n, t]),
    ];
    for (const [n, m] of this.#children) out.push(...m.stateDict(`${prefix}${n}.`));
    return out;
  }

  /** This module and its descendants with dotted paths (the root has the empty path). */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, m] of this.#children) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Sets training mode (true) or eval mode (false) on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Eval mode: BatchNorm uses its running statistics. */
  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter, buffer and gradient. */
  dispose(): void {
    for (const [, t] of this.stateDict()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}
