// Pre-flight for the test and main-job commands: is there a WebGPU adapter? If not, and this
// machine can install one (root + apt), installs Mesa lavapipe; otherwise says what to do, in one line.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const probe = `import { create, globals } from 'webgpu'; Object.assign(globalThis, globals);
const a = await create([]).requestAdapter(); if (!a) process.exit(3);
console.log(a.info.vendor + ' ' + (a.info.description || a.info.device || a.info.architecture));`;

function adapter() {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 60000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

const wantChromium = process.argv.includes('--chromium');
const chromiumMissing = () => wantChromium && spawnSync('sh', ['-c', 'command -v chromium'], { stdio: 'ignore' }).status !== 0;
let found = adapter();
if (found && !chromiumMissing()) {
  if (!process.argv.includes('--quiet')) console.error(`webgpu: ${found}`);
  process.exit(0);
}
const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
if (!canInstall) {
  console.error(found
    ? 'webgpu: Chromium is missing for the browser tests: install Debian\'s chromium package (sudo apt-get install chromium)'
    : 'webgpu: no WebGPU adapter found: run `sudo scripts/setup-webgpu.sh` (Mesa lavapipe 24+) or install a Vulkan driver for your GPU');
  process.exit(1);
}
const script = fileURLToPath(new URL('./setup-webgpu.sh', import.meta.url));
console.error('webgpu: installing what is missing (scripts/setup-webgpu.sh)...');
execFileSync('bash', [script, ...(wantChromium ? ['--chromium'] : [])], { stdio: 'inherit' });
found = adapter();
if (!found) {
  console.error('webgpu: still no adapter after installing Mesa lavapipe; check `vulkaninfo --summary`');
  process.exit(1);
}
console.error(`webgpu: ${found}`);
