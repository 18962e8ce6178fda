// The benchmark registry: every family's cases. Adding a family is one import and one entry.
import type { BenchCase } from '../case.js';
import { cases as conv } from './conv.js';
import { cases as derain } from './derain.js';
import { cases as gemm } from './gemm.js';
import { cases as model } from './model.js';
import { cases as norm } from './norm.js';

export const families: Record<string, readonly BenchCase[]> = { gemm, conv, norm, model, derain };

export const allCases: BenchCase[] = Object.values(families).flat();
