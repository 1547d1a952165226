/** Runs the real certfleet command and server as a user would, for integration tests. */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const BIN = resolve(import.meta.dirname, '../../packages/server/bin/certfleet.js');

export function tempDir(prefix = 'certfleet-it-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function certfleet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** certfleet against the server of data dir `data`; fails the test unless it exits 0, and returns what it printed. */
export async function certfleetOk(data: string, args: string[]): Promise<string> {
  const r = await certfleet([...args, '--data', data]);
  assert.equal(r.code, 0, `certfleet ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `openssl verify -x509_strict` of `leaf` through the `chain` file to the roots in `caFile`. */
export function opensslVerify(caFile: string, chain: string, leaf: string): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', caFile, '-untrusted', chain, leaf], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly ports: { api: number; mqtt: number; http: number };
  readonly data: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `certfleet serve` on free ports and waits for ports.json. */
export async function serve(data: string, extra: string[] = []): Promise<ServerProcess> {
  const portsFile = join(data, 'ports.json');
  rmSync(portsFile, { force: true });
  const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--api-port', '0', '--mqtt-port', '0', '--http-port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!existsSync(portsFile)) {
    if (child.exitCode !== null) throw new Error(`certfleet serve exited ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`certfleet serve did not write ports.json in 60 s:\n${out}`);
    }
    await sleep(50);
  }
  const ports = JSON.parse(readFileSync(portsFile, 'utf8')) as ServerProcess['ports'];
  return {
    child,
    ports,
    data,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
