// The library-use examples run as a user would run them (against the package's built entry), and exit by themselves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// `import 'semi-drdnet'` in examples/ resolves through the package's own exports to dist/.
execFileSync(process.execPath, ['scripts/build.mjs', '--no-types']);

test('examples/fit-line.mjs fits the line and exits by itself', () => {
  const r = spawnSync(process.execPath, ['examples/fit-line.mjs'], { encoding: 'utf8', timeout: 60000 });
  assert.is(r.signal, null, 'the example did not exit by itself within 60 s');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /fitted a = 3\.0\d*|fitted a = 2\.99\d*/);
  assert.match(r.stdout, /device still usable: true/);
});

test('examples/derain.mjs derains the example photo with the bundled weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-example-'));
  try {
    const out = join(dir, 'out.png');
    const r = spawnSync(process.execPath, ['examples/derain.mjs', 'examples/rainy-chelsea.png', out], { encoding: 'utf8', timeout: 120000 });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /rainy-chelsea\.png \(\d+x\d+\) -> /);
    assert.ok(statSync(out).size > 1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
