// The Semi-DRDNet network (the DRD-Net backbone): a rain residual network of SE residual blocks
// and a detail repair network of dilated context-aggregation blocks, named as in the authors'
// PyTorch module tree so weights map one-to-one onto their state_dict.
import type { Engine } from '../gpu/runtime.js';
import { BatchNorm2d, Conv2d, DilatedContextBlock, Indexed, PReLU, SqueezeExcite, type Layer } from '../graph/layers.js';
import { Module } from '../graph/module.js';
import { add, sub } from '../graph/ops.js';
import { type Tensor, shapeStr } from '../core/tensor.js';
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

/** Conv, BN, PReLU, conv, BN, then an SE gate; added to the block input. */
class RainBlock extends Module {
  readonly head: Indexed;
  readonly body: Layer | null;
  tap: ((t: Tensor) => void) | null = null;
  constructor(k: Ctx, gate?: () => Layer) {
    super();
    const C = k.c.channels;
    this.head = this.child('rain_residual_block_head', new Indexed([conv3(k, C, C), new BatchNorm2d(k.engine, C), new PReLU(k.engine, C), conv3(k, C, C), new BatchNorm2d(k.engine, C)]));
    // The gate is built after the head, so the head's initialisation is the same whatever the gate.
    const body = gate ? gate() : k.c.se ? new SqueezeExcite(k.engine, k.rng, C, k.c.seHidden) : null;
    this.body = body && this.child('rain_residual_block_body', body);
  }
  forward(x: Tensor): Tensor {
    const [c1, bn1, act, c2, bn2] = this.head.items as [Conv2d, BatchNorm2d, PReLU, Conv2d, BatchNorm2d];
    const h1 = c1.forward(x);
    const h2 = bn1.forwardPrelu(h1, act);
    this.tap?.(h2);
    const h3 = c2.forward(h2);
    let h = bn2.forward(h3);
    for (const t of [h1, h2, h3]) t.dispose();
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
  constructor(k: Ctx) {
    super();
    const C = k.c.channels;
    this.body = this.child('back_residual_block_body', new Indexed([new DilatedContextBlock(k.engine, k.rng, C, k.c.dilations), new BatchNorm2d(k.engine, C), new PReLU(k.engine, C), new DilatedContextBlock(k.engine, k.rng, C, k.c.dilations), new BatchNorm2d(k.engine, C)]));
  }
  forward(x: Tensor): Tensor {
    const [d1, bn1, act, d2, bn2] = this.body.items as [DilatedContextBlock, BatchNorm2d, PReLU, DilatedContextBlock, BatchNorm2d];
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

/** Head conv + PReLU, residual blocks, body conv + BN with a long skip, tail conv to 3 channels. */
class Branch extends Module {
  readonly head: Indexed;
  readonly blocks: Indexed<Layer>;
  readonly body: Indexed;
  readonly tail: Indexed;
  tap: ((t: Tensor) => void) | null = null;
  constructor(k: Ctx, names: { head: string; blocks: string; body: string }, blocks: Layer[]) {
    super();
    const C = k.c.channels;
    this.head = this.child(names.head, new Indexed([conv3(k, 3, C), new PReLU(k.engine, C)]));
    this.blocks = this.child(names.blocks, new Indexed(blocks));
    this.body = this.child(names.body, new Indexed([conv3(k, C, C), new BatchNorm2d(k.engine, C)]));
    this.tail = this.child('tail', new Indexed([conv3(k, C, 3)]));
  }
  forward(x: Tensor): Tensor {
    const [hc, ha] = this.head.items as [Conv2d, PReLU];
    const t0 = hc.forward(x);
    const x0 = ha.forward(t0);
    this.tap?.(x0);
    t0.dispose();
    let h = x0;
    for (const b of this.blocks.items) {
      const n = b.forward(h);
      if (h !== x0) h.dispose();
      h = n;
    }
    const [bc, bbn] = this.body.items as [Conv2d, BatchNorm2d];
    const b1 = bc.forward(h);
    const b2 = bbn.forward(b1);
    const s = add(b2, x0);
    for (const t of new Set([h, x0, b1, b2])) t.dispose();
    const out = (this.tail.items[0] as Conv2d).forward(s);
    s.dispose();
    return out;
  }
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
  readonly rainNet: Branch;
  readonly backNet: Branch | null;
  /** Called with every PReLU output during forward while set (see ActivationTap). */
  tap: ActivationTap | null = null;

  constructor(engine: Engine, config: DrdConfig, seed = 0, options: DrdNetOptions = {}) {
    super();
    validateConfig(config);
    this.config = { ...config, dilations: [...config.dilations] };
    const k: Ctx = { engine, rng: new Rng(seed), c: this.config };
    const at = (index: number): BlockContext => ({ engine, rng: k.rng, channels: this.config.channels, config: this.config, index });
    const { rainGate, rainBlock, detailBlock } = options;
    const rain = Array.from({ length: config.rainBlocks }, (_, i) => (rainBlock ? rainBlock(at(i)) : new RainBlock(k, rainGate && (() => rainGate(at(i))))));
    this.rainNet = this.child('rain_net', new Indexed([new Branch(k, { head: 'rain_net_head', blocks: 'rain_residual_blocks', body: 'rain_net_body' }, rain)])).items[0];
    if (config.detail) {
      const detail = Array.from({ length: config.detailBlocks }, (_, i) => (detailBlock ? detailBlock(at(i)) : new DetailBlock(k)));
      this.backNet = this.child('back_net', new Indexed([new Branch(k, { head: 'back_net_head', blocks: 'back_residual_blocks', body: 'back_net_body' }, detail)])).items[0];
    } else {
      this.backNet = null;
    }
  }

  /** Runs the network on a [N,3,H,W] batch of rainy images in [0,1]. Intermediates are freed. */
  forward(o: Tensor): DrdOutputs {
    if (o.shape.length !== 4 || o.shape[1] !== 3) throw new Error(`DrdNet: expected input [N,3,H,W], got ${shapeStr(o.shape)}`);
    const tap = this.tap;
    for (const [name, m] of this.namedModules()) {
      const at = (prelu: string) => (tap ? (t: Tensor) => tap(`${name}.${prelu}`, t) : null);
      if (m instanceof RainBlock) m.tap = at('rain_residual_block_head.2');
      else if (m instanceof DetailBlock) m.tap = at('back_residual_block_body.2');
      else if (m instanceof Branch) m.tap = at(`${m === this.rainNet ? 'rain_net_head' : 'back_net_head'}.1`);
    }
    const rain = this.rainNet.forward(o);
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

