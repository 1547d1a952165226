/**
 * Manufacturing batch throughput against a fresh `certfleet serve` on this
 * machine (server and factory side share its cores, as on a factory PC):
 *   1. the bulk path: `certfleet batch create --count N` (keys made on the
 *      factory side, chunks through POST /api/v1/batches/issue), devices/s;
 *   2. the single-request path in the same run: per device, a key and CSR,
 *      POST /api/v1/things and POST /api/v1/certificates, 16 in flight.
 * Usage: npm run bench:batch -- [N=10000] [--single M=min(N,2000)] [--database URL]
 * A sample of the certificates must pass `openssl verify`, or the run exits
 * non-zero. Never a timed test in CI.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildCsrPem, generateKeyPair, OID } from '@certfleet/pki';
import { api, clientConfig } from '../packages/server/src/cli/client.js';

const BIN = resolve(import.meta.dirname, '../packages/server/bin/certfleet.js');

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const N = Number(args.find((a, i) => /^\d+$/.test(a) && !args[i - 1]?.startsWith('--')) ?? 10_000);
const SINGLE = Number(flag('--single') ?? Math.min(N, 2_000));
const DATABASE = flag('--database');

/** CPU seconds (user + system, all threads) a live process has used, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Runs the command; `cpu` is its CPU time as last sampled (every 100 ms) before it exited. */
function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string; cpu: number }> {
  return new Promise((done) => {
    let cpu = 0;
    const child = execFile(process.execPath, [BIN, ...argv], { maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 }, (err, stdout, stderr) => {
      clearInterval(sampler);
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, cpu });
    });
    const sampler = setInterval(() => (cpu = Math.max(cpu, cpuSeconds(child.pid))), 100);
  });
}

async function serve(data: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--api-port', '0', '--mqtt-port', '0', '--http-port', '0', ...(DATABASE ? ['--database', DATABASE] : [])], { stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(data, 'ports.json'))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('certfleet serve did not start');
    await sleep(50);
  }
  return child;
}

/** The single-request path, as `batch create` worked before the bulk route. */
async function singlePath(data: string, count: number): Promise<number> {
  const cfg = clientConfig(data);
  let next = 0;
  const began = performance.now();
  const worker = async () => {
    while (next < count) {
      const thing = `single-${next++}`;
      const { privateKey, publicKey } = generateKeyPair('ec-p256');
      const csr = buildCsrPem({ subject: [{ type: OID.commonName, value: thing }], publicKey, privateKey });
      await api(cfg, 'POST', '/api/v1/things', { name: thing });
      await api(cfg, 'POST', '/api/v1/certificates', { csr, thing });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return count / ((performance.now() - began) / 1000);
}

const data = mkdtempSync(join(tmpdir(), 'certfleet-bench-batch-'));
let server: ChildProcess | undefined;
try {
  const init = await run(['init', '--data', data, ...(DATABASE ? ['--database', DATABASE] : [])]);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  server = await serve(data);

  const out = join(data, 'batch');
  const serverCpu0 = cpuSeconds(server.pid);
  const began = performance.now();
  const r = await run(['batch', 'create', '--count', String(N), '--out', out, '--data', data, '--json']);
  const wall = (performance.now() - began) / 1000;
  const serverCpu = cpuSeconds(server.pid) - serverCpu0;
  if (r.code !== 0) throw new Error(`batch create failed: ${r.stderr.slice(-2000)}`);
  for (const line of r.stderr.split('\n')) if (line.startsWith('certfleet batch:')) console.log(line);
  const summary = JSON.parse(r.stdout) as { issued: number; failed: unknown[]; seconds: number; devicesPerSecond: number };
  if (summary.issued !== N || summary.failed.length > 0) throw new Error(`batch create issued ${summary.issued} of ${N}`);
  const devices = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { devices: { certPath: string; chainPath: string; caPath: string }[] }).devices;
  for (const d of devices.filter((_, i) => i % Math.max(1, Math.floor(N / 20)) === 0)) {
    const v = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', d.caPath, '-untrusted', d.chainPath, d.certPath], { encoding: 'utf8' });
    if (v.status !== 0) throw new Error(`openssl verify failed: ${v.stdout}${v.stderr}`);
  }

  const single = SINGLE > 0 ? await singlePath(data, SINGLE) : 0;
  const bulk = N / wall;
  console.log(`batch of ${N} on ${DATABASE ? 'PostgreSQL' : 'SQLite'}: ${wall.toFixed(1)} s wall (command start included), ${bulk.toFixed(0)} devices/s; ${summary.devicesPerSecond} devices/s inside the command`);
  if (SINGLE > 0) console.log(`single-request path (${SINGLE} devices, 16 in flight): ${single.toFixed(0)} devices/s; bulk/single = ${(bulk / single).toFixed(1)}x`);
  const perDevice = (s: number) => ((s * 1000) / N).toFixed(3);
  console.log(`CPU per device: server ${perDevice(serverCpu)} ms, factory side ${perDevice(r.cpu)} ms (command start included); load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
  console.log(`with the cores to itself: ${(N / Math.max(serverCpu, (serverCpu + r.cpu) / availableParallelism())).toFixed(0)} devices/s (the server's one thread: ${(N / serverCpu).toFixed(0)}/s)`);
  console.log(`100,000 in 60 s needs 1,667 devices/s: ${bulk >= 1667 ? 'met' : 'not met'} at this size`);
} finally {
  server?.kill('SIGTERM');
  if (server && server.exitCode === null) await new Promise((r) => server!.once('exit', r));
  rmSync(data, { recursive: true, force: true });
}
