// Runs a Node script in a child process whose stderr is passed through without Dawn's two
// start-up notices. dawn.node prints them from native code straight to file descriptor 2 when
// Vulkan reports more dynamic buffers than Dawn supports (lavapipe does), so no in-process
// setting can silence them; everything else, progress bars included, is forwarded as it comes.
import { spawn } from 'node:child_process';

const NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const PREFIX = 'Warning: maxDynamic';

/** A stateful filter: feed it chunks, it returns what to print now. */
export function dawnNoticeFilter() {
  let pending = '';
  return (chunk) => {
    pending += chunk;
    let out = '';
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!NOTICE.test(line)) out += `${line}\n`;
    }
    // A partial line (a progress bar's \r update) goes out at once unless it may become a notice.
    if (pending && !PREFIX.startsWith(pending.slice(0, PREFIX.length))) {
      out += pending;
      pending = '';
    }
    return out;
  };
}

/**
 * Runs `node <args>` with filtered stderr and resolves to its exit code. The child learns through
 * SEMI_DRDNET_STDERR_TTY whether our stderr is a terminal (its own is a pipe). The child has a
 * process group of its own, so a terminal's Ctrl-C reaches it once, through us, like a signal
 * sent to our pid alone: SIGINT, SIGTERM and SIGHUP are all passed on.
 */
export function runQuiet(args, opts = {}) {
  const child = spawn(process.execPath, args, {
    ...opts,
    detached: true,
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, ...opts.env, SEMI_DRDNET_STDERR_TTY: process.stderr.isTTY ? String(process.stderr.columns || 80) : '' },
  });
  const filter = dawnNoticeFilter();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    const out = filter(chunk);
    if (out) process.stderr.write(out);
  });
  const forward = (sig) => child.kill(sig);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  // Should we exit first (an exception), the child must not outlive us in its own group.
  const reap = () => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM');
  process.on('exit', reap);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      process.off('exit', reap);
      resolve(code ?? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9, SIGHUP: 1 }[signal] ?? 1));
    });
  });
}
