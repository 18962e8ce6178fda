// Entry point of `npm run bench` (scripts/bench.mjs bundles and runs it).
import { benchMain } from '../src/bench/main.js';

process.exitCode = await benchMain(process.argv.slice(2));
