/**
 * The two brokers of bench/mqtt-connect.ts, started as a user would start
 * them, and what the bench reads from them: a `certfleet serve` child with its
 * device certificates made through the REST API, and a Mosquitto child
 * configured with certfleet's CA and a server certificate certfleet issued.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Credential } from './mqtt-load.js';

export const CERTFLEET_BIN = resolve(import.meta.dirname, '../../packages/server/bin/certfleet.js');
export const MOSQUITTO = process.env.CERTFLEET_BENCH_MOSQUITTO ?? '/usr/sbin/mosquitto';

export interface Broker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
  /** SIGTERM, SIGKILL after 60 s; says how long it took and how it ended. */
  stop(): Promise<string>;
}

/** `taskset -c CPUS cmd …` when CPUS is given, so the servers can be pinned apart from the generator. */
function pinned(cpus: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
}

function started(name: string, child: ChildProcess, port: number): Broker {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => void (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => void (out = (out + d.toString()).slice(-20_000)));
  return {
    name,
    child,
    port,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return `had already exited (${child.exitCode ?? child.signalCode})`;
      const t0 = Date.now();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      // certfleet writes its queued connection records before it exits: give it time, but not forever.
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      return `in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${child.signalCode === 'SIGKILL' ? 'killed after 60 s' : `exit ${child.exitCode ?? child.signalCode}`}`;
    },
  };
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface CertfleetNode extends Broker {
  readonly ports: { api: number; mqtt: number; http: number };
  readonly data: string;
  /** The root devices trust (DIR/ca.pem). */
  readonly caPem: string;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
}

/** `certfleet init` then `certfleet serve` on free ports; `nodeArgs` go to node itself (`--cpu-prof` …). */
export async function startCertfleet(data: string, nodeArgs: string[], cpus?: string): Promise<CertfleetNode> {
  const init = spawnSync(process.execPath, [CERTFLEET_BIN, 'init', '--data', data], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`certfleet init failed:\n${init.stdout}${init.stderr}`);
  const [cmd, args] = pinned(cpus, process.execPath, [...nodeArgs, CERTFLEET_BIN, 'serve', '--data', data, '--api-port', '0', '--mqtt-port', '0', '--http-port', '0']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const portsFile = join(data, 'ports.json');
  const broker0 = started('certfleet', child, 0);
  const deadline = Date.now() + 60_000;
  while (!existsSync(portsFile)) {
    if (child.exitCode !== null) throw new Error(`certfleet serve exited with ${child.exitCode}:\n${broker0.output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`certfleet serve wrote no ports.json in 60 s:\n${broker0.output()}`);
    }
    await sleep(50);
  }
  const ports = JSON.parse(readFileSync(portsFile, 'utf8')) as CertfleetNode['ports'];
  const cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
  const caPem = readFileSync(cli.caFile, 'utf8');
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: caPem });
  const api = <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise((done, fail) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        {
          host: '127.0.0.1',
          port: ports.api,
          servername: 'localhost',
          agent,
          method,
          path,
          headers: { authorization: `Bearer ${cli.token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) return fail(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
            done((text ? JSON.parse(text) : undefined) as T);
          });
        },
      );
      req.on('error', fail);
      req.end(payload);
    });
  return {
    ...broker0,
    port: ports.mqtt,
    ports,
    data,
    caPem,
    api,
    stop: () => {
      agent.destroy();
      return broker0.stop();
    },
  };
}

interface Issued {
  id: string;
  certificatePem: string;
  chainPem: string;
  caPem: string;
  privateKeyPem: string;
}

const firstPem = (pem: string): string => /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/.exec(pem)![0];

/**
 * `count` device certificates (server-made P-256 keys, development phase)
 * with one policy attached that allows connect with any client id
 * (`${client.id}`: a connect resource is compared literally, `*` included),
 * so one certificate may hold several connections with different client ids.
 * `inFlight` requests at a time.
 */
export async function issueDevices(node: CertfleetNode, count: number, inFlight = 8): Promise<Credential[]> {
  await node.api('POST', '/api/v1/policies', {
    name: 'bench-connect',
    document: { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${client.id}'] }] },
  });
  const out: Credential[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const c = await node.api<Issued>('POST', '/api/v1/certificates/generate', { commonName: `bench-device-${String(i).padStart(4, '0')}`, keyAlgorithm: 'ec-p256' });
      await node.api('POST', '/api/v1/policies/bench-connect/attach', { certificate: c.id });
      // The leaf and its issuing CA: a device sends its intermediate, as mosquitto_pub --cert chain.pem does.
      out[i] = { key: c.privateKeyPem, certChain: c.certificatePem + firstPem(c.chainPem) };
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return out;
}

/**
 * Mosquitto with certfleet's PKI: its server certificate is issued by
 * certfleet (profile `server`, `localhost`), the client CA file is
 * certfleet's issuing CA and root, a client certificate is required and its
 * CN becomes the user name (so no anonymous client gets in). Connection
 * log lines are off, like certfleet's (it logs refusals, not admissions).
 */
export async function startMosquitto(node: CertfleetNode, dir: string, cpus?: string): Promise<Broker> {
  const server = await node.api<Issued>('POST', '/api/v1/certificates/generate', {
    profile: 'server',
    commonName: 'localhost',
    sans: ['dns:localhost', 'ip:127.0.0.1'],
    keyAlgorithm: 'ec-p256',
  });
  writeFileSync(join(dir, 'server.pem'), server.certificatePem + firstPem(server.chainPem));
  writeFileSync(join(dir, 'server.key'), server.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'clients-ca.pem'), server.chainPem);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      // Run as the user who started the bench: as root, mosquitto would switch to user "mosquitto", who cannot read this 0700 directory.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'per_listener_settings false',
      'allow_anonymous false',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'connection_messages false',
      'max_connections -1',
      `listener ${port} 127.0.0.1`,
      `cafile ${join(dir, 'clients-ca.pem')}`,
      `certfile ${join(dir, 'server.pem')}`,
      `keyfile ${join(dir, 'server.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      '',
    ].join('\n'),
  );
  const [cmd, args] = pinned(cpus, MOSQUITTO, ['-c', conf]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return started('mosquitto', child, port);
}

/** The broker's own process id (under taskset, the pid is taskset's until it execs, which it does at once). */
export function pidOf(b: Broker): number {
  return b.child.pid!;
}

/** VmRSS of a process, in bytes (proc(5)). */
export function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** utime + stime of a process, all threads, in ms (proc(5) fields 14 and 15, in clock ticks of 1/100 s). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The node:tls null broker (null-broker.ts) on the files startMosquitto wrote to `dir`. */
export async function startNullBroker(dir: string, cpus?: string): Promise<Broker> {
  const script = resolve(import.meta.dirname, 'null-broker.ts');
  const [cmd, args] = pinned(cpus, process.execPath, ['--import', 'tsx', script, dir]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`null broker did not listen in 30 s: ${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => void (out += d.toString()));
    child.once('exit', (code) => fail(new Error(`null broker exited with ${code}: ${out}`)));
  });
  return started('node:tls', child, port);
}
