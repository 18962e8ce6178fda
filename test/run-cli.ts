// Runs the command line as a user would (bin/semi-drdnet.js in a child process) for the CLI tests.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as assert from 'uvu/assert';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stderr without blank lines and Node's own warnings. */
  errLines: string[];
}

export function runCli(args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, ['bin/semi-drdnet.js', ...args], { encoding: 'utf8', timeout: 300000, ...opts });
  const stderr = String(r.stderr ?? '');
  const errLines = stderr.split('\n').filter((l) => l && !l.startsWith('Warning: max'));
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr, errLines };
}

/** The command fails with this exit code and exactly one stderr line matching every pattern. */
export function assertCliError(r: CliResult, code: number, ...patterns: RegExp[]): void {
  assert.is(r.status, code, `exit ${r.status}, expected ${code}: ${r.errLines.join(' | ')}`);
  assert.is(r.errLines.length, 1, `expected one line: ${r.errLines.join(' | ')}`);
  for (const p of patterns) assert.match(r.errLines[0]!, p);
}
