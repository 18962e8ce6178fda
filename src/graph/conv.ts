// Differentiable convolutions: conv2d (with an optional fused bias + activation epilogue) and
// multiDilationConv, the linear detail block of Semi-DRDNet (parallel dilated 3x3 convolutions,
// concatenated, then fused by a 1x1 convolution) computed without the concatenated tensor.
import { binary, unaryGrad } from '../kernels/elementwise.js';
import { matmul2d } from '../kernels/matmul.js';
import * as copy from '../kernels/copy.js';
import {
  conv2dBackwardBias,
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dBackwardFilterMulti,
  conv2dForward,
  conv2dMultiBackwardData,
  conv2dMultiForward,
  composeFusedBias,
  pair,
  type Activation,
  type ConvBranch,
  type PerAxis,
} from '../kernels/conv2d.js';
import { defineOp } from './autograd.js';
import { Tensor, shapeStr } from '../core/tensor.js';

/** Stride, padding and dilation (one number or [h, w]) and a fused activation of `conv2d`. */
export interface Conv2dOptions {
  stride?: PerAxis;
  padding?: PerAxis;
  dilation?: PerAxis;
  /** Fused epilogue after the bias (default 'none'). */
  activation?: Activation;
  /** leakyRelu slope for negative inputs (default 0.01; must be > 0 for the gradient). */
  negativeSlope?: number;
}

interface ConvAttrs {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  activation: Activation;
  negativeSlope: number;
  hasBias: boolean;
}

const conv2dDef = defineOp<ConvAttrs>({
  name: 'conv2d',
  forward(ctx, [x, w, b], a) {
    const y = conv2dForward(x, w, a.hasBias ? b : null, a);
    // Only what backward reads: x for dW, w for dx, and the output, whose sign gives the
    // activation's gradient (a frozen layer, e.g. VGG's, keeps no input alive).
    if (ctx.needsGrad[1]) ctx.save(x);
    if (ctx.needsGrad[0]) ctx.save(w);
    if (a.activation !== 'none') ctx.save(y);
    return y;
  },
  backward(ctx, [gy], a) {
    let i = 0;
    const x = ctx.needsGrad[1] ? ctx.saved[i++] : null;
    const w = ctx.needsGrad[0] ? ctx.saved[i++] : null;
    const y = a.activation !== 'none' ? ctx.saved[i++] : null;
    const g = y ? unaryGrad(a.activation as 'relu' | 'leakyRelu', y, gy!, a.negativeSlope) : gy!;
    return [
      ctx.needsGrad[0] ? conv2dBackwardData(g, w!, ctx.inputShapes[0], a) : null,
      ctx.needsGrad[1] ? conv2dBackwardFilter(x!, g, ctx.inputShapes[1], a) : null,
      a.hasBias && ctx.needsGrad[2] ? conv2dBackwardBias(g) : null,
    ];
  },
});

/**
 * 2-D convolution (cross-correlation, like torch.nn.functional.conv2d): x [N,Ci,H,W], weight
 * OIHW [Co,Ci,KH,KW], optional bias [Co], zero padding -> [N,Co,Ho,Wo] with
 * Ho = floor((H + 2*padding - dilation*(KH-1) - 1) / stride) + 1. An activation in `opts` is
 * applied in the same kernel (bias and activation fused into the epilogue).
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const attrs: ConvAttrs = {
    stride: pair(opts.stride, 1, 'stride'),
    padding: pair(opts.padding, 0, 'padding'),
    dilation: pair(opts.dilation, 1, 'dilation'),
    activation: opts.activation ?? 'none',
    negativeSlope: opts.negativeSlope ?? 0.01,
    hasBias: !!bias,
  };
  if (attrs.activation === 'leakyRelu' && !(attrs.negativeSlope > 0)) {
    throw new Error(`conv2d: fused leakyRelu needs a positive negativeSlope, got ${attrs.negativeSlope}`);
  }
  if (bias && (bias.size !== weight.shape[0] || bias.shape.length !== 1)) {
    throw new Error(`conv2d: bias ${shapeStr(bias.shape)} must be [${weight.shape[0]}] for weight ${shapeStr(weight.shape)}`);
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return conv2dDef(inputs, attrs)[0];
}

// ---- multiDilationConv ------------------------------------------------------------------------

/** One dilated 3x3 branch of `multiDilationConv`: weight, bias and dilation. */
export interface DilationBranch {
  /** OIHW [C_k, Cin, KH, KW]; every branch has the same Cin and kernel size. */
  weight: Tensor;
  bias?: Tensor | null;
  dilation: PerAxis;
  /** Default dilation * (k - 1) / 2 per axis (same-size output for odd kernels). */
  padding?: PerAxis;
}

interface MdcAttrs {
  nb: number;
  hasBias: boolean[];
  hasFuseBias: boolean;
  sizes: number[];
  padding: Array<[number, number]>;
  dilation: Array<[number, number]>;
}

/** Column blocks [Cout, C_k] of the fuse weight, one per branch (new tensors). */
function fusePieces(wf: Tensor, sizes: number[]): Tensor[] {
  const w2 = wf.view([wf.shape[0], wf.size / wf.shape[0]]);
  const pieces = copy.split(w2, sizes, 1);
  w2.dispose();
  return pieces;
}

/** a + b, disposing both operands. */
function addInto(a: Tensor, b: Tensor): Tensor {
  const s = binary('add', a, b);
  a.dispose();
  b.dispose();
  return s;
}

function unpack(inputs: readonly Tensor[], a: MdcAttrs) {
  const x = inputs[0];
  const ws = inputs.slice(1, 1 + a.nb);
  let i = 1 + a.nb;
  const bs = a.hasBias.map((h) => (h ? inputs[i++] : null));
  const wf = inputs[i++];
  const bf = a.hasFuseBias ? inputs[i++] : null;
  return { x, ws, bs, wf, bf };
}

const mdcDef = defineOp<MdcAttrs>({
  name: 'multiDilationConv',
  forward(ctx, inputs, a) {
    const { x, ws, bs, wf, bf } = unpack(inputs, a);
    // The kernel folds Wf_k into W_k while packing: W'_k = Wf_k . W_k; b' = bf + sum_k Wf_k b_k.
    const bias = composeFusedBias(wf, a.sizes, bs, bf);
    const y = conv2dMultiForward(x, branchesOf(ws, a), bias, { fuse: wf });
    bias?.dispose();
    // Saved: the inputs except the fuse bias (x for wgrad; W_k, Wf, b_k for the chain rule).
    ctx.save(...inputs.slice(0, a.hasFuseBias ? -1 : undefined));
    return y;
  },
  backward(ctx, [g], a) {
    const { x, ws, bs, wf } = unpack(ctx.saved, { ...a, hasFuseBias: false });
    const need = ctx.needsGrad;
    const out: Array<Tensor | null> = new Array(need.length).fill(null);
    if (need[0]) out[0] = conv2dMultiBackwardData(g!, branchesOf(ws, a), ctx.inputShapes[0], { fuse: wf });
    if (!need.slice(1).some(Boolean)) return out;
    let bi = 1 + a.nb;
    const biasIndex = a.hasBias.map((h) => (h ? bi++ : -1));
    const wfIndex = bi++;
    const bfIndex = a.hasFuseBias ? bi++ : -1;
    const Cout = g!.shape[1];
    const db = conv2dBackwardBias(g!); // d b' [Cout]
    const db2 = db.view([Cout, 1]);
    const pieces = fusePieces(wf, a.sizes);
    const dwfParts: Tensor[] = [];
    // dW'_k, the gradients of the composed weights (one pass over x and g for all branches), then
    // the chain rule through W'_k = Wf_k . W_k.
    const dEffs = conv2dBackwardFilterMulti(x, g!, [Cout, ...ws[0].shape.slice(1)], a.padding.map((padding, k) => ({ padding, dilation: a.dilation[k] })));
    for (let k = 0; k < a.nb; k++) {
      const w = ws[k];
      const Ck = a.sizes[k];
      const dEff2 = dEffs[k].view([Cout, dEffs[k].size / Cout]);
      if (need[1 + k]) out[1 + k] = matmul2d(pieces[k], dEff2, { transA: true }).view(w.shape); // Wf_k^T dW'_k
      if (need[wfIndex]) {
        let dwf = matmul2d(dEff2, w.view([Ck, w.size / Ck]), { transB: true }); // dW'_k W_k^T
        const b = bs[k];
        if (b) dwf = addInto(dwf, matmul2d(db2, b.view([1, Ck]))); // + db' b_k^T
        dwfParts.push(dwf);
      }
      if (biasIndex[k] >= 0 && need[biasIndex[k]]) out[biasIndex[k]] = matmul2d(pieces[k], db2, { transA: true }).view([Ck]); // Wf_k^T db'
    }
    if (need[wfIndex]) out[wfIndex] = (a.nb === 1 ? dwfParts[0] : copy.concat(dwfParts, 1)).view(ctx.inputShapes[wfIndex]);
    if (bfIndex >= 0 && need[bfIndex]) out[bfIndex] = db.view(ctx.inputShapes[bfIndex]);
    return out;
  },
});

function branchesOf(ws: readonly Tensor[], a: MdcAttrs): ConvBranch[] {
  return ws.map((w, k) => ({ weight: w, padding: a.padding[k], dilation: a.dilation[k] }));
}

/**
 * The Semi-DRDNet detail block, fused: `fuseWeight` (1x1, [Cout, sum C_k, 1, 1]) applied to the
 * channel concat of conv2d(x, W_k, b_k; dilation d_k) for each branch, plus `fuseBias`. Because
 * nothing nonlinear sits between them, the branch weights are composed with their block of the
 * fuse weight (W'_k = Wf_k . W_k, b' = bf + sum_k Wf_k b_k) and one kernel accumulates the dilated
 * convolutions into the output; the concatenated tensor never exists. Backward maps dW'_k to dW_k
 * and dWf_k by the chain rule and runs the three input gradients in one kernel.
 */
export function multiDilationConv(
  x: Tensor,
  branches: DilationBranch[],
  fuseWeight: Tensor,
  fuseBias?: Tensor | null,
): Tensor {
  if (branches.length < 1 || branches.length > 4) throw new Error(`multiDilationConv: 1 to 4 branches, got ${branches.length}`);
  const w0 = branches[0].weight.shape;
  const sizes = branches.map((b) => b.weight.shape[0]);
  for (const b of branches) {
    if (b.weight.shape.length !== 4 || b.weight.shape[1] !== w0[1] || b.weight.shape[2] !== w0[2] || b.weight.shape[3] !== w0[3]) {
      throw new Error(`multiDilationConv: branch weights must share Cin and kernel size (got ${branches.map((q) => shapeStr(q.weight.shape)).join(', ')})`);
    }
    if (b.bias && b.bias.size !== b.weight.shape[0]) throw new Error(`multiDilationConv: bias ${shapeStr(b.bias.shape)} for weight ${shapeStr(b.weight.shape)}`);
  }
  const total = sizes.reduce((s, c) => s + c, 0);
  const fs = fuseWeight.shape;
  if (!(fs.length === 4 && fs[1] === total && fs[2] === 1 && fs[3] === 1) && !(fs.length === 2 && fs[1] === total)) {
    throw new Error(`multiDilationConv: fuseWeight ${shapeStr(fs)} must be [Cout, ${total}, 1, 1]`);
  }
  if (fuseBias && fuseBias.size !== fs[0]) throw new Error(`multiDilationConv: fuseBias ${shapeStr(fuseBias.shape)} must have ${fs[0]} values`);
  const dilation = branches.map((b) => pair(b.dilation, 1, 'dilation'));
  const padding = branches.map((b, k) =>
    b.padding !== undefined ? pair(b.padding, 0, 'padding') : ([(dilation[k][0] * (w0[2] - 1)) >> 1, (dilation[k][1] * (w0[3] - 1)) >> 1] as [number, number]),
  );
  const attrs: MdcAttrs = {
    nb: branches.length,
    hasBias: branches.map((b) => !!b.bias),
    hasFuseBias: !!fuseBias,
    sizes,
    padding,
    dilation,
  };
  const inputs = [x, ...branches.map((b) => b.weight), ...branches.flatMap((b) => (b.bias ? [b.bias] : [])), fuseWeight, ...(fuseBias ? [fuseBias] : [])];
  return mdcDef(inputs, attrs)[0];
}
