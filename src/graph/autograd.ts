// Reverse-mode autograd: the op-definition API, the recorded graph, and `backward`.
import { Tensor, capture, shapeStr, tidy, type GradNode, type Shape } from '../core/tensor.js';
import { binary, fill } from '../kernels/elementwise.js';
import { asyncLocal } from '../util/async-local.js';

// Grad mode follows async contexts where the platform can (Node), so `noGrad(async ...)` in one
// engine's step does not switch recording off for another's; elsewhere a counter held until an
// async `fn` settles (do not interleave async noGrad scopes with recording code there).
const gradOff = asyncLocal<boolean>();
let gradDisabled = 0;

/** Runs `fn` (sync or async) without recording ops for autograd. */
export function noGrad<T>(fn: () => T): T {
  if (gradOff) return gradOff.run(true, fn);
  gradDisabled++;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    gradDisabled--;
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => gradDisabled--) as T;
  gradDisabled--;
  return result;
}

/** Whether ops are being recorded for autograd (false inside `noGrad`). */
export function isGradEnabled(): boolean {
  return gradOff ? gradOff.getStore() !== true : gradDisabled === 0;
}

/** What `forward` sees: which inputs need a gradient, and where to save tensors for backward. */
export interface ForwardContext {
  readonly needsGrad: readonly boolean[];
  /** True when the op is being recorded (some input needs a gradient). */
  readonly recording: boolean;
  /** Keeps tensors alive for backward, even if the caller disposes them; read them as `ctx.saved`. */
  save(...tensors: Tensor[]): void;
}

/** What an op's `backward` sees: which inputs need gradients, the saved tensors and the input shapes. */
export interface BackwardContext {
  readonly needsGrad: readonly boolean[];
  readonly saved: readonly Tensor[];
  /** Shapes of the op's inputs, recorded for every op (no tensor data kept). */
  readonly inputShapes: ReadonlyArray<Shape>;
}

/** A differentiable op: a name, a forward that runs kernels, and a backward that returns input gradients. */
export interface OpDefinition<A> {
  name: string;
  /** Computes the outputs (kernels or other ops; nothing inside is recorded). */
  forward(ctx: ForwardContext, inputs: Tensor[], attrs: A): Tensor | Tensor[];
  /**
   * Given the gradients of the outputs (null where an output got none), returns one gradient per
   * input, each with that input's shape (null/undefined where not needed). Runs without recording.
   */
  backward(ctx: BackwardContext, gradOutputs: Array<Tensor | null>, attrs: A): Array<Tensor | null | undefined>;
}

/** A differentiable op made by `defineOp`: call it with input tensors and attributes. */
export type Op<A> = ((inputs: Tensor[], attrs: A) => Tensor[]) & { definition: OpDefinition<A> };

/**
 * Defines a differentiable op. The returned function takes the input tensors and the op's
 * attributes and always returns an array of outputs.
 */
export function defineOp<A = undefined>(def: OpDefinition<A>): Op<A> {
  const run = (inputs: Tensor[], attrs: A) => applyOp(def, inputs, attrs);
  return Object.assign(run, { definition: def });
}

class Ctx implements ForwardContext, BackwardContext {
  saved: Tensor[] = [];
  constructor(readonly needsGrad: boolean[], readonly recording: boolean, readonly inputShapes: Shape[]) {}
  save(...tensors: Tensor[]): void {
    if (!this.recording) return;
    // An alias shares the storage, so the caller may dispose the original.
    for (const t of tensors) this.saved.push(t.view(t.shape).keep());
  }
  free(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
  }
}

/**
 * One recorded op application. Reference-counted by its live outputs and by downstream nodes, so
 * a graph that is dropped without `backward` still frees its saved tensors.
 */
export class GraphNode implements GradNode {
  refs = 0;
  freed = false;
  /** Producers of the inputs, captured now: disposing an input tensor later must not cut the graph. */
  readonly inputNodes: Array<GraphNode | null>;
  constructor(
    readonly def: OpDefinition<unknown>,
    readonly inputs: Tensor[],
    readonly outputs: Tensor[],
    readonly ctx: Ctx,
    readonly attrs: unknown,
  ) {
    this.inputNodes = inputs.map(nodeOf);
    for (const n of this.inputNodes) n?.ref();
  }
  ref(): void {
    this.refs++;
  }
  unref(): void {
    if (--this.refs > 0) return;
    this.free();
    for (const n of this.inputNodes) n?.unref();
  }
  free(): void {
    this.freed = true;
    this.ctx.free();
  }
}

function applyOp<A>(def: OpDefinition<A>, inputs: Tensor[], attrs: A): Tensor[] {
  for (const t of inputs) {
    if (t.disposed) throw new Error(`${def.name}: input ${t.toString()} was disposed and cannot be used`);
    // Buffers of two devices in one bind group would fail later inside Dawn, on an unrelated call.
    if (t.engine !== inputs[0].engine) throw new Error(`${def.name}: inputs come from two different engines (each Engine has its own GPU device; copy with tensor.read() and Tensor.fromData)`);
  }
  const needsGrad = inputs.map((t) => t.requiresGrad);
  const recording = isGradEnabled() && needsGrad.some(Boolean);
  const ctx = new Ctx(needsGrad, recording, inputs.map((t) => t.shape));
  const out = noGrad(() => def.forward(ctx, inputs, attrs));
  const outputs = Array.isArray(out) ? out : [out];
  if (recording) {
    const node = new GraphNode(def as OpDefinition<unknown>, inputs, outputs, ctx, attrs);
    for (const o of outputs) {
      o.node = node;
      o.requiresGrad = true;
      node.ref();
    }
  }
  return outputs;
}

/** Nodes reachable from `root`, inputs before the ops that consume them (iterative DFS). */
function topoOrder(root: GraphNode): GraphNode[] {
  const order: GraphNode[] = [];
  const seen = new Set<GraphNode>([root]);
  const stack: Array<[GraphNode, number]> = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputNodes[i];
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order;
}

/** Options of `backward`. */
export interface BackwardOptions {
  /** Gradient of the root (default: ones; required for non-scalar roots). */
  grad?: Tensor;
  /** Keep saved tensors so backward can run again over the same graph. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf that requires a gradient. Each node
 * runs once, after all its consumers, so shared inputs and skip connections sum their gradients
 * before flowing further. Gradients are views (shared storage), so a backward may return its
 * incoming gradient, or the same tensor for several inputs, without a copy.
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  if (root.disposed) throw new Error(`backward: ${root.toString()} was disposed`);
  if (!root.requiresGrad) throw new Error(`backward: ${root.toString()} does not require a gradient (no parameter or input with requiresGrad reached it)`);
  if (!opts.grad && root.size !== 1) throw new Error(`backward: ${root.toString()} is not a scalar; pass opts.grad`);
  if (opts.grad && opts.grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward: gradient shape ${shapeStr(opts.grad.shape)} does not match ${shapeStr(root.shape)}`);
  }
  tidy(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, opts.grad ? opts.grad.view(opts.grad.shape) : onesLike(root));
    const rootNode = nodeOf(root);
    const leaves = new Set<Tensor>(rootNode ? [] : [root]);
    const order = rootNode ? topoOrder(rootNode) : [];
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k];
      if (node.freed) throw new Error(`backward: the graph through '${node.def.name}' was already freed; pass retainGraph: true to backpropagate twice`);
      const gOut = node.outputs.map((o) => grads.get(o) ?? null);
      node.outputs.forEach((o) => grads.delete(o));
      if (gOut.some((g) => g !== null)) {
        const { result: gIn, created } = capture(() => node.def.backward(node.ctx, gOut, node.attrs));
        node.inputs.forEach((inp, i) => {
          const g = gIn[i];
          if (!g || !node.ctx.needsGrad[i]) return;
          if (g.shape.join() !== inp.shape.join()) {
            throw new Error(`backward of '${node.def.name}': gradient for input ${i} has shape ${shapeStr(g.shape)}, expected ${shapeStr(inp.shape)}`);
          }
          const own = g.view(g.shape);
          const prev = grads.get(inp);
          grads.set(inp, prev ? sumInto(prev, own) : own);
          if (!node.inputNodes[i]) leaves.add(inp);
        });
        for (const t of created) t.dispose();
        for (const g of gOut) g?.dispose();
      }
      if (!opts.retainGraph) node.free();
    }
    for (const leaf of leaves) {
      const g = grads.get(leaf)!;
      leaf.grad = (leaf.grad ? sumInto(leaf.grad, g) : g).keep();
    }
  });
}

/** Only this module sets `Tensor.node`, always to a GraphNode. */
function nodeOf(t: Tensor): GraphNode | null {
  return t.node as GraphNode | null;
}

// Backward runs without recording, so it uses the kernels directly, not the differentiable ops.
function onesLike(t: Tensor): Tensor {
  const o = Tensor.empty(t.engine, t.shape);
  fill(o, 1);
  return o;
}

function sumInto(a: Tensor, b: Tensor): Tensor {
  const s = binary('add', a, b);
  a.dispose();
  b.dispose();
  return s;
}

/** Sets every given tensor's `.grad` to null (disposing it). */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
