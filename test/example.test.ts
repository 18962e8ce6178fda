// The library-use example runs as a user would run it, and the process exits by itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

test('examples/fit-line.ts fits the line and exits by itself', () => {
  const r = spawnSync(process.execPath, ['scripts/run-ts.mjs', 'examples/fit-line.ts'], { encoding: 'utf8', timeout: 60000 });
  assert.is(r.signal, null, 'the example did not exit by itself within 60 s');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /fitted a = 3\.0\d*|fitted a = 2\.99\d*/);
  assert.match(r.stdout, /device still usable: true/);
});

test.run();
