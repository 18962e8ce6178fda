// The Semi-DRDNet network (the DRD-Net backbone): a rain residual network of SE residual blocks
// and a detail repair network of dilated context-aggregation blocks, named as in the authors'
// PyTorch module tree so weights map one-to-one onto their state_dict.
import type { Engine } from '../gpu/runtime.js';
import { BatchNorm2d, Conv2d, DilatedContextBlock, Indexed, PReLU, SqueezeExcite, type Layer } from '../graph/layers.js';
import { Module } from '../graph/module.js';
import { add, sub } from '../graph/ops.js';
import { isGradEnabled } from '../graph/autograd.js';
import { type Tensor, shapeStr } from '../core/tensor.js';
import { composeFusedBias, conv2dForward, conv2dMultiForward, foldAffine, pair, type ConvEpilogue, type FoldBn } from '../kernels/conv2d.js';
import { squeezeExciteForward, type PooledSums } from '../kernels/se.js';
import { Rng } from '../util/rng.js';
import { type DrdConfig, validateConfig } from './config.js';

type Ctx = { engine: Engine; rng: Rng; c: DrdConfig };

/** What a block factory of `DrdNetOptions` gets to build one block. */
export interface BlockContext {
  engine: Engine;
  /** The network's generator: draw initial weights from it so they follow the network's seed. */
  rng: Rng;
  /** Feature channels of the block's input and output. */
  channels: number;
  /** The network's configuration (dilations, SE width, ...). */
  config: DrdConfig;
  /** The block's position in its branch (0 first). */
  index: number;
}

/**
 * Replacements for DrdNet's blocks, for research variants: each factory is called once per block
 * and returns a layer mapping [N,C,H,W] to [N,C,H,W]; its parameters join the network's under the
 * replaced block's name.
 */
export interface DrdNetOptions {
  /** Replaces the SE gate of each rain residual block (the block still adds its skip); used even when `config.se` is false. */
  rainGate?: (ctx: BlockContext) => Layer;
  /** Replaces each rain residual block whole, skip connection included. */
  rainBlock?: (ctx: BlockContext) => Layer;
  /** Replaces each detail block whole, skip connection included. */
  detailBlock?: (ctx: BlockContext) => Layer;
}

/**
 * Sees a PReLU output (named by its PReLU module's state_dict prefix) before it is freed; for
 * numerics checks, which need the side of the kink every float32 pre-activation fell on.
 */
export type ActivationTap = (name: string, t: Tensor) => void;

const conv3 = ({ engine, rng }: Ctx, cin: number, cout: number, dilation = 1) =>
  new Conv2d(engine, rng, cin, cout, 3, { padding: dilation, dilation });

/** Folded inference epilogues by conv layer (`DrdNet.foldForInference`); null: the layer-by-layer path. */
type Folded = Map<Module, ConvEpilogue> | null;

/** One conv (or DCCL) with its folded BatchNorm/PReLU epilogue: no autograd (inference only). */
function foldedConv(layer: Conv2d | DilatedContextBlock, x: Tensor, epilogue: ConvEpilogue): Tensor {
  if (layer instanceof Conv2d) return conv2dForward(x, layer.weight, null, { stride: layer.opts.stride, padding: layer.opts.padding, dilation: layer.opts.dilation, epilogue });
  const branches = layer.branches.map((b) => ({ weight: b.weight, padding: pair(b.opts.padding, 0, 'padding'), dilation: pair(b.opts.dilation, 1, 'dilation') }));
  return conv2dMultiForward(x, branches, null, { fuse: layer.fuse.weight, epilogue });
}

const bnOf = (bn: BatchNorm2d): FoldBn => ({ weight: bn.weight, bias: bn.bias, runningMean: bn.runningMean, runningVar: bn.runningVar, eps: bn.eps });

/** The affine epilogue of `layer` (its bias), then `bn` in eval mode, then `act`. */
function foldLayer(layer: Conv2d | DilatedContextBlock, bn: BatchNorm2d | null, act: PReLU | null): ConvEpilogue {
  const Co = layer instanceof Conv2d ? layer.weight.shape[0] : layer.fuse.weight.shape[0];
  const bias = layer instanceof Conv2d ? layer.bias
    : composeFusedBias(layer.fuse.weight, layer.branches.map((b) => b.weight.shape[0]), layer.branches.map((b) => b.bias), layer.fuse.bias);
  // Kept out of any enclosing tidy scope: the returned unfold function frees it.
  const affine = foldAffine(Co, bias, bn && bnOf(bn), act?.weight ?? null).keep();
  if (bias && !(layer instanceof Conv2d)) bias.dispose();
  // Packed weights are cached per layout on first use (the weights are a snapshot too).
  return { affine, prelu: !!act, packs: new Map() };
}

/** Conv, BN, PReLU, conv, BN, then an SE gate; added to the block input. */
class RainBlock extends Module {
  readonly head: Indexed;
  readonly body: Layer | null;
  tap: ((t: Tensor) => void) | null = null;
  folded: Folded = null;
  constructor(k: Ctx, gate?: () => Layer) {
    super();
    const C = k.c.channels;
    this.head = this.child('rain_residual_block_head', new Indexed([conv3(k, C, C), new BatchNorm2d(k.engine, C), new PReLU(k.engine, C), conv3(k, C, C), new BatchNorm2d(k.engine, C)]));
    // The gate is built after the head, so the head's initialisation is the same whatever the gate.
    const body = gate ? gate() : k.c.se ? new SqueezeExcite(k.engine, k.rng, C, k.c.seHidden) : null;
    this.body = body && this.child('rain_residual_block_body', body);
  }
  /** Folded only: the two convs, the activation the gate pools. */
  preGate(x: Tensor): Tensor {
    const [c1, , , c2] = this.head.items as [Conv2d, BatchNorm2d, PReLU, Conv2d, BatchNorm2d];
    const h2 = foldedConv(c1, x, this.folded!.get(c1)!);
    this.tap?.(h2);
    const h = foldedConv(c2, h2, this.folded!.get(c2)!);
    h2.dispose();
    return h;
  }
  forward(x: Tensor): Tensor {
    const [c1, bn1, act, c2, bn2] = this.head.items as [Conv2d, BatchNorm2d, PReLU, Conv2d, BatchNorm2d];
    let h: Tensor;
    if (this.folded) {
      h = this.preGate(x);
      if (this.body instanceof SqueezeExcite) {
        // The SE scale and the skip connection in one pass.
        const { y, saved } = squeezeExciteForward(h, this.body.fc1.weight, this.body.fc2.weight, false, x);
        saved.dispose();
        h.dispose();
        return y;
      }
    } else {
      const h1 = c1.forward(x);
      const h2 = bn1.forwardPrelu(h1, act);
      this.tap?.(h2);
      const h3 = c2.forward(h2);
      h = bn2.forward(h3);
      for (const t of [h1, h2, h3]) t.dispose();
    }
    if (this.body) {
      const g = this.body.forward(h);
      h.dispose();
      h = g;
    }
    const out = add(h, x);
    h.dispose();
    return out;
  }
}

/** DCCL, BN, PReLU, DCCL, BN; added to the block input. No SE. */
class DetailBlock extends Module {
  readonly body: Indexed;
  tap: ((t: Tensor) => void) | null = null;
  folded: Folded = null;
  constructor(k: Ctx) {
    super();
    const C = k.c.channels;
    this.body = this.child('back_residual_block_body', new Indexed([new DilatedContextBlock(k.engine, k.rng, C, k.c.dilations), new BatchNorm2d(k.engine, C), new PReLU(k.engine, C), new DilatedContextBlock(k.engine, k.rng, C, k.c.dilations), new BatchNorm2d(k.engine, C)]));
  }
  forward(x: Tensor): Tensor {
    const [d1, bn1, act, d2, bn2] = this.body.items as [DilatedContextBlock, BatchNorm2d, PReLU, DilatedContextBlock, BatchNorm2d];
    if (this.folded) {
      const h2 = foldedConv(d1, x, this.folded.get(d1)!);
      this.tap?.(h2);
      // The skip connection is added by the second conv's epilogue.
      const out = foldedConv(d2, h2, { ...this.folded.get(d2)!, residual: x });
      h2.dispose();
      return out;
    }
    const h1 = d1.forward(x);
    const h2 = bn1.forwardPrelu(h1, act);
    this.tap?.(h2);
    const h3 = d2.forward(h2);
    const h4 = bn2.forward(h3);
    const out = add(h4, x);
    for (const t of [h1, h2, h3, h4]) t.dispose();
    return out;
  }
}

/**
 * One of DrdNet's two branches (`rainNet`, `backNet`): head conv + PReLU, residual blocks, body
 * conv + BN with a long skip, tail conv to 3 channels.
 */
export class DrdBranch extends Module {
  readonly head: Indexed;
  readonly blocks: Indexed<Layer>;
  readonly body: Indexed;
  readonly tail: Indexed;
  /** Called with the head's activation during `forward` (DrdNet sets it to collect feature taps), or null. */
  tap: ((t: Tensor) => void) | null = null;
  /** @internal The folded inference weights while `DrdNet.foldForInference` is in effect. */
  folded: Folded = null;
  /** @internal */
  constructor(k: Ctx, names: { head: string; blocks: string; body: string }, blocks: Layer[]) {
    super();
    const C = k.c.channels;
    this.head = this.child(names.head, new Indexed([conv3(k, 3, C), new PReLU(k.engine, C)]));
    this.blocks = this.child(names.blocks, new Indexed(blocks));
    this.body = this.child(names.body, new Indexed([conv3(k, C, C), new BatchNorm2d(k.engine, C)]));
    this.tail = this.child('tail', new Indexed([conv3(k, C, 3)]));
  }
  /** An NCHW batch through the branch: its 3-channel output (the rain layer, or the detail layer). */
  forward(x: Tensor): Tensor {
    const [hc, ha] = this.head.items as [Conv2d, PReLU];
    let x0: Tensor;
    if (this.folded) {
      x0 = foldedConv(hc, x, this.folded.get(hc)!);
    } else {
      const t0 = hc.forward(x);
      x0 = ha.forward(t0);
      t0.dispose();
    }
    this.tap?.(x0);
    let h = x0;
    for (const b of this.blocks.items) {
      const n = b.forward(h);
      if (h !== x0) h.dispose();
      h = n;
    }
    return this.finish(h, x0);
  }
  /** Body conv + BN on the last block's output h, the long skip from x0, then the tail; frees h and x0. */
  finish(h: Tensor, x0: Tensor): Tensor {
    const [bc, bbn] = this.body.items as [Conv2d, BatchNorm2d];
    let s: Tensor;
    if (this.folded) {
      // The long skip is added by the body conv's epilogue.
      s = foldedConv(bc, h, { ...this.folded.get(bc)!, residual: x0 });
    } else {
      const b1 = bc.forward(h);
      const b2 = bbn.forward(b1);
      s = add(b2, x0);
      b1.dispose();
      b2.dispose();
    }
    for (const t of new Set([h, x0])) t.dispose();
    const out = (this.tail.items[0] as Conv2d).forward(s);
    s.dispose();
    return out;
  }
}

/**
 * The folded network cut where the rain blocks' SE gates pool (`DrdNet.gateStages`): head, then per
 * block preGate and gate, then rain and outputs, equals forward when each gate pools its own input.
 */
export interface GateStages {
  /** Rain blocks: gates to pool. */
  blocks: number;
  /** The rain head (conv + PReLU): the first block's input and the long skip x0. */
  head(o: Tensor): Tensor;
  /** Rain block j's convs on its input x: the activation h its gate pools. */
  preGate(j: number, x: Tensor): Tensor;
  /** Block j's output h * gate + x, the gate from `pooled`'s sums (null: from h itself). */
  gate(j: number, h: Tensor, x: Tensor, pooled: PooledSums | null): Tensor;
  /** The rain layer R from the last block's output y and x0 (rain body, long skip, tail); frees y and x0. */
  rain(x0: Tensor, y: Tensor): Tensor;
  /** The detail branch on its input (O, or 2O - R), null without one. */
  detail(input: Tensor): Tensor | null;
  /** The outputs from the input and its rain layer (O - R, the detail branch), as forward ends them. */
  outputs(o: Tensor, rain: Tensor): DrdOutputs;
}

/** The network's outputs: rain layer, derained image, detail map and final image. */
export interface DrdOutputs {
  /** Estimated rain layer R = RRN(O). */
  rain: Tensor;
  /** O - R. */
  derained: Tensor;
  /** Detail map D (null without the detail branch). */
  detail: Tensor | null;
  /** O - R + D: the network's output. */
  final: Tensor;
}

/** The Semi-DRDNet network (DRD-Net backbone) with the authors' PyTorch parameter names. */
export class DrdNet extends Module {
  readonly config: DrdConfig;
  readonly rainNet: DrdBranch;
  readonly backNet: DrdBranch | null;
  /** Called with every PReLU output during forward while set (see ActivationTap). */
  tap: ActivationTap | null = null;
  #folded: Map<Module, ConvEpilogue> | null = null;

  constructor(engine: Engine, config: DrdConfig, seed = 0, options: DrdNetOptions = {}) {
    super();
    validateConfig(config);
    this.config = { ...config, dilations: [...config.dilations] };
    const k: Ctx = { engine, rng: new Rng(seed), c: this.config };
    const at = (index: number): BlockContext => ({ engine, rng: k.rng, channels: this.config.channels, config: this.config, index });
    const { rainGate, rainBlock, detailBlock } = options;
    const rain = Array.from({ length: config.rainBlocks }, (_, i) => (rainBlock ? rainBlock(at(i)) : new RainBlock(k, rainGate && (() => rainGate(at(i))))));
    this.rainNet = this.child('rain_net', new Indexed([new DrdBranch(k, { head: 'rain_net_head', blocks: 'rain_residual_blocks', body: 'rain_net_body' }, rain)])).items[0];
    if (config.detail) {
      const detail = Array.from({ length: config.detailBlocks }, (_, i) => (detailBlock ? detailBlock(at(i)) : new DetailBlock(k)));
      this.backNet = this.child('back_net', new Indexed([new DrdBranch(k, { head: 'back_net_head', blocks: 'back_residual_blocks', body: 'back_net_body' }, detail)])).items[0];
    } else {
      this.backNet = null;
    }
  }

  /**
   * Inference with fewer passes: folds each eval-mode BatchNorm into the preceding conv's weights
   * and bias, and each PReLU into the conv epilogue (per-channel scale, shift and slope computed
   * once here), so a conv + BN + PReLU runs as one conv. Used by forward while no gradient is
   * recorded and every BatchNorm is in eval mode. The folded values are a snapshot: call the
   * returned function (it frees them) before the parameters or running statistics change. The rain
   * blocks' SE pass also adds their skip connection; the detail blocks' second conv and each
   * branch's body conv add theirs in the epilogue.
   * Blocks replaced through DrdNetOptions keep their own forward.
   */
  foldForInference(): () => void {
    this.#unfold();
    const map = new Map<Module, ConvEpilogue>();
    for (const [, m] of this.namedModules()) {
      if (m instanceof DrdBranch) {
        const [hc, ha] = m.head.items as [Conv2d, PReLU];
        const [bc, bbn] = m.body.items as [Conv2d, BatchNorm2d];
        map.set(hc, foldLayer(hc, null, ha)).set(bc, foldLayer(bc, bbn, null));
      } else if (m instanceof RainBlock || m instanceof DetailBlock) {
        const [c1, bn1, act, c2, bn2] = (m instanceof RainBlock ? m.head : m.body).items as [Conv2d | DilatedContextBlock, BatchNorm2d, PReLU, Conv2d | DilatedContextBlock, BatchNorm2d];
        map.set(c1, foldLayer(c1, bn1, act)).set(c2, foldLayer(c2, bn2, null));
      }
    }
    this.#folded = map;
    return () => {
      if (this.#folded === map) this.#unfold();
    };
  }

  #unfold(): void {
    for (const ep of this.#folded?.values() ?? []) {
      ep.affine.dispose();
      for (const t of ep.packs?.values() ?? []) t.dispose();
    }
    this.#folded = null;
  }

  /**
   * The rain branch cut at its SE pooling points, for tiled inference whose gates pool the whole
   * image (derain.ts); null unless the network is folded (`foldForInference`, no gradient, BN in
   * eval mode) and every rain block is a built-in block with an SE gate.
   */
  gateStages(): GateStages | null {
    const folded = this.#prepare();
    const blocks = this.rainNet.blocks.items;
    if (!folded || blocks.length === 0 || !blocks.every((b) => b instanceof RainBlock && b.body instanceof SqueezeExcite)) return null;
    const rain = blocks as RainBlock[];
    const head = this.rainNet.head.items[0] as Conv2d;
    return {
      blocks: rain.length,
      head: (o) => foldedConv(head, o, folded.get(head)!),
      preGate: (j, x) => rain[j].preGate(x),
      gate: (j, h, x, pooled) => {
        const se = rain[j].body as SqueezeExcite;
        const { y, saved } = squeezeExciteForward(h, se.fc1.weight, se.fc2.weight, false, x, pooled);
        saved.dispose();
        return y;
      },
      rain: (x0, y) => this.rainNet.finish(y, x0),
      detail: (input) => this.backNet?.forward(input) ?? null,
      outputs: (o, rain) => this.#outputs(o, rain),
    };
  }

  /** Sets every block's tap and folded state for one forward; returns the epilogues when folded. */
  #prepare(): Folded {
    const tap = this.tap;
    // The folded path only where it equals the layer path: no gradients, BatchNorm on running stats.
    const folded = this.#folded && !isGradEnabled() && this.namedModules().every(([, m]) => !(m instanceof BatchNorm2d) || !m.training) ? this.#folded : null;
    for (const [name, m] of this.namedModules()) {
      const at = (prelu: string) => (tap ? (t: Tensor) => tap(`${name}.${prelu}`, t) : null);
      if (m instanceof RainBlock) m.tap = at('rain_residual_block_head.2');
      else if (m instanceof DetailBlock) m.tap = at('back_residual_block_body.2');
      else if (m instanceof DrdBranch) m.tap = at(`${m === this.rainNet ? 'rain_net_head' : 'back_net_head'}.1`);
      if (m instanceof RainBlock || m instanceof DetailBlock || m instanceof DrdBranch) m.folded = folded;
    }
    return folded;
  }

  /** Runs the network on a [N,3,H,W] batch of rainy images in [0,1]. Intermediates are freed. */
  forward(o: Tensor): DrdOutputs {
    if (o.shape.length !== 4 || o.shape[1] !== 3) throw new Error(`DrdNet: expected input [N,3,H,W], got ${shapeStr(o.shape)}`);
    this.#prepare();
    return this.#outputs(o, this.rainNet.forward(o));
  }

  /** The outputs from the input and the rain layer: O - R, then the detail branch. */
  #outputs(o: Tensor, rain: Tensor): DrdOutputs {
    const derained = sub(o, rain);
    if (!this.backNet) return { rain, derained, detail: null, final: derained };
    let input = o;
    if (this.config.detailInput === '2O-R') input = add(o, derained);
    const detail = this.backNet.forward(input);
    if (input !== o) input.dispose();
    const final = add(derained, detail);
    return { rain, derained, detail, final };
  }

  /** Number of trainable values. */
  parameterCount(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /** BatchNorm layers with their dotted prefixes (for num_batches_tracked). */
  batchNorms(): Array<[string, BatchNorm2d]> {
    return this.namedModules().filter((e): e is [string, BatchNorm2d] => e[1] instanceof BatchNorm2d);
  }
}

