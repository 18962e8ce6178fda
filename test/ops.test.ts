// GPU ops vs float64 references: forward values and gradients by central differences.
import { test } from 'uvu';
import * as R from './ref/ops.js';
import { mulberry32, randn, uniform, refTensor, randnAwayFromZero } from './ref/tensor.js';
import * as ops from '../src/graph/ops.js';
import { engine } from './helpers.js';
import { checkOp, type OpCase } from './gradcheck-gpu.js';

const rng = mulberry32(42);
const t = (shape: number[]) => randn(shape, rng);
const pos = (shape: number[]) => uniform(shape, 0.5, 2, rng);
const away = (shape: number[]) => randnAwayFromZero(shape, rng);

const cases: OpCase[] = [
  { name: 'add same shape', inputs: [t([2, 3, 4, 5]), t([2, 3, 4, 5])], gpu: ([a, b]) => ops.add(a, b), ref: ([a, b]) => R.add(a, b) },
  // Same-sized operands in whole vec4s take the flat entry; 105 elements do not.
  { name: 'add same shape, not whole vec4s', inputs: [t([3, 5, 7]), t([3, 5, 7])], gpu: ([a, b]) => ops.add(a, b), ref: ([a, b]) => R.add(a, b) },
  { name: 'sub same shape', inputs: [t([2, 4, 3, 3]), t([2, 4, 3, 3])], gpu: ([a, b]) => ops.sub(a, b), ref: ([a, b]) => R.sub(a, b) },
  { name: 'mul same shape', inputs: [t([8]), t([8])], gpu: ([a, b]) => ops.mul(a, b), ref: ([a, b]) => R.mul(a, b) },
  { name: 'div same shape', inputs: [t([4, 4]), pos([4, 4])], gpu: ([a, b]) => ops.div(a, b), ref: ([a, b]) => R.div(a, b) },
  { name: 'add channel bias', inputs: [t([2, 3, 4, 5]), t([1, 3, 1, 1])], gpu: ([a, b]) => ops.add(a, b), ref: ([a, b]) => R.add(a, b) },
  { name: 'sub broadcast both ways', inputs: [t([2, 3, 1, 5]), t([3, 4, 1])], gpu: ([a, b]) => ops.sub(a, b), ref: ([a, b]) => R.sub(a, b) },
  { name: 'mul per channel', inputs: [t([2, 3, 4, 5]), t([3, 1, 1])], gpu: ([a, b]) => ops.mul(a, b), ref: ([a, b]) => R.mul(a, b) },
  { name: 'div broadcast', inputs: [t([2, 5, 3, 3]), pos([1, 5, 1, 1])], gpu: ([a, b]) => ops.div(a, b), ref: ([a, b]) => R.div(a, b) },
  { name: 'mul scalar tensor', inputs: [t([7, 9]), t([])], gpu: ([a, b]) => ops.mul(a, b), ref: ([a, b]) => R.mul(a, b) },
  { name: 'affine', inputs: [t([3, 7])], gpu: ([a]) => ops.affine(a, -2.5, 0.75), ref: ([a]) => R.addScalar(R.mulScalar(a, -2.5), 0.75) },
  { name: 'addScalar', inputs: [t([5])], gpu: ([a]) => ops.addScalar(a, 3), ref: ([a]) => R.addScalar(a, 3) },
  { name: 'relu', inputs: [away([2, 3, 7, 9])], gpu: ([a]) => ops.relu(a), ref: ([a]) => R.relu(a) },
  { name: 'leakyRelu', inputs: [away([2, 3, 5])], gpu: ([a]) => ops.leakyRelu(a, 0.2), ref: ([a]) => R.leakyRelu(a, 0.2) },
  { name: 'sigmoid', inputs: [t([4, 9])], gpu: ([a]) => ops.sigmoid(a), ref: ([a]) => R.sigmoid(a) },
  { name: 'exp', inputs: [t([4, 9])], gpu: ([a]) => ops.exp(a), ref: ([a]) => R.exp(a) },
  { name: 'log', inputs: [pos([4, 9])], gpu: ([a]) => ops.log(a), ref: ([a]) => R.log(a) },
  { name: 'sum all', inputs: [t([2, 3, 7, 9])], gpu: ([a]) => ops.sum(a), ref: ([a]) => R.sum(a) },
  { name: 'sum axes 0,2,3', inputs: [t([2, 5, 7, 9])], gpu: ([a]) => ops.sum(a, [0, 2, 3]), ref: ([a]) => R.sum(a, [0, 2, 3]) },
  { name: 'sum axis 1 keepdim', inputs: [t([2, 5, 3])], gpu: ([a]) => ops.sum(a, [1], true), ref: ([a]) => R.sum(a, [1], true) },
  { name: 'mean all', inputs: [t([3, 7, 9])], gpu: ([a]) => ops.mean(a), ref: ([a]) => R.mean(a) },
  { name: 'mean axes -1,-2', inputs: [t([2, 3, 7, 9])], gpu: ([a]) => ops.mean(a, [-1, -2]), ref: ([a]) => R.mean(a, [2, 3]) },
  { name: 'matmul', inputs: [t([5, 7]), t([7, 3])], gpu: ([a, b]) => ops.matmul(a, b), ref: ([a, b]) => R.matmul(a, b) },
  { name: 'matmul odd', inputs: [t([9, 1]), t([1, 6])], gpu: ([a, b]) => ops.matmul(a, b), ref: ([a, b]) => R.matmul(a, b) },
  { name: 'linear with bias', inputs: [t([4, 6]), t([5, 6]), t([5])], gpu: ([x, w, b]) => ops.linear(x, w, b), ref: ([x, w, b]) => R.linear(x, w, b.data) },
  { name: 'concat channels', inputs: [t([2, 3, 4, 5]), t([2, 1, 4, 5]), t([2, 2, 4, 5])], gpu: (xs) => ops.concat(xs), ref: (xs) => R.concat(xs) },
  {
    name: 'split channels',
    inputs: [t([2, 6, 3, 5])],
    gpu: ([x]) => {
      const [a, b, c] = ops.split(x, [1, 3, 2]);
      return ops.concat([ops.mulScalar(c, 2), a, b]);
    },
    ref: ([x]) => {
      const [a, b, c] = R.split(x, [1, 3, 2]);
      return R.concat([R.mulScalar(c, 2), a, b]);
    },
  },
  {
    name: 'split with an unused piece',
    inputs: [t([1, 4, 3, 3])],
    gpu: ([x]) => ops.split(x, [1, 3])[1],
    ref: ([x]) => R.split(x, [1, 3])[1],
  },
  { name: 'reshape', inputs: [t([2, 3, 4])], gpu: ([x]) => ops.mul(ops.reshape(x, [6, -1]), ops.reshape(x, [6, 4])), ref: ([x]) => R.mul(R.reshape(x, [6, 4]), R.reshape(x, [6, 4])) },
  {
    name: 'l1Loss',
    inputs: [t([2, 3, 4, 5]), t([2, 3, 4, 5])],
    gpu: ([a, b]) => ops.l1Loss(a, b),
    ref: ([a, b]) => refTensor([], [R.l1Loss(a, b)]),
  },
  {
    name: 'mseLoss',
    inputs: [t([3, 7, 9]), t([3, 7, 9])],
    gpu: ([a, b]) => ops.mseLoss(a, b),
    ref: ([a, b]) => refTensor([], [R.mseLoss(a, b)]),
  },
  {
    name: 'shared input and skip connection',
    inputs: [t([2, 3, 4])],
    gpu: ([x]) => {
      const h = ops.sigmoid(x);
      return ops.add(ops.mul(h, x), ops.mul(h, h));
    },
    ref: ([x]) => {
      const h = R.sigmoid(x);
      return R.add(R.mul(h, x), R.mul(h, h));
    },
  },
];

for (const c of cases) {
  test(c.name, async () => {
    await checkOp(await engine(), c);
  });
}

test.run();
