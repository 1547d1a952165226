/**
 * What certfleet does per connect besides TLS, step by step, timed in
 * process (one call at a time, no load) on the data dir the bench's
 * `certfleet serve` used, once that process has stopped: the parse of the
 * client leaf, admission (chain to an active registered CA, certificate
 * record), the policy load at CONNECT, and the two connection-record writes.
 * The broker code is the one `serve` runs, on the services `serve` opens;
 * only the sockets are missing. Each step is given in CPU time of this
 * process (what the machine's other work does not inflate) and in wall time
 * (which also holds waits: the database's fsync, other processes).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Certificate, decodePem } from '@certfleet/pki';
import { openServices } from '../../packages/server/src/index.js';
import { dataDir, readNodeConfig } from '../../packages/server/src/config/data-dir.js';
import { Admission, type DeviceIdentity } from '../../packages/server/src/broker/index.js';
import { PolicyLoader } from '../../packages/server/src/broker/policy-session.js';
import type { Credential } from './mqtt-load.js';

export interface Cost {
  /** µs of this process's CPU per call. */
  readonly cpu: number;
  /** µs of wall time per call. */
  readonly wall: number;
}

/** Per call, each step, in the order a connect meets them. */
export type Steps = Record<'parse leaf' | 'admission' | 'policy load' | 'record connect + disconnect' | 'one certificate read', Cost>;

async function usPer(n: number, f: (i: number) => unknown): Promise<Cost> {
  for (let i = 0; i < Math.min(n, 100); i++) await f(i); // warm-up
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) await f(i);
  const wall = ((performance.now() - start) * 1000) / n;
  const used = process.cpuUsage(cpu0);
  return { cpu: (used.user + used.system) / n, wall };
}

const ders = (pem: string): Buffer[] => (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) => decodePem(p, 'CERTIFICATE'));

export async function certfleetSteps(data: string, credentials: readonly Credential[], n = 400): Promise<Steps> {
  const dir = dataDir(data);
  const s = await openServices({ database: readNodeConfig(dir).database, masterKeyFile: dir.masterKey });
  try {
    const chains = credentials.map((c) => ders(c.certChain));
    const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now });
    const identities: DeviceIdentity[] = [];
    for (const chain of chains) {
      const r = await admission.admit(chain);
      if (!r.ok) throw new Error(`admission refused a bench device: ${r.reason} ${r.detail}`);
      identities.push(r);
    }
    // The sources serve.ts gives the broker.
    const loader = new PolicyLoader({ policies: s.store, things: s.store, certificates: s.store, claims: s.store });
    const nodeId = `bench-${randomUUID()}`;
    return {
      'parse leaf': await usPer(n, (i) => Certificate.fromDer(chains[i % chains.length]![0]!)),
      admission: await usPer(n, (i) => admission.admit(chains[i % chains.length]!)),
      'policy load': await usPer(n, (i) => loader.load(identities[i % identities.length]!, `bench-steps-${i}`)),
      'record connect + disconnect': await usPer(n, async (i) => {
        const id = randomUUID();
        const at = new Date();
        await s.store.recordConnect({ id, certificateId: identities[i % identities.length]!.certificateId, clientId: `bench-steps-${i}`, remoteAddress: '127.0.0.1:1', connectedAt: at, nodeId });
        await s.store.recordDisconnect(id, at, 'client-disconnect');
      }),
      'one certificate read': await usPer(n, (i) => s.store.getCertificate(identities[i % identities.length]!.certificateId)),
    };
  } finally {
    await s.close();
  }
}
