/**
 * A real broker over TLS on an ephemeral port, with hand-written fakes for
 * the store, an event bus, a log that tests can read, and MQTT.js devices.
 * Tests only.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { Counter, Gauge } from 'prom-client';
import type { TestCa } from '../../../pki/src/testing/hierarchy.js';
import { EventBus } from '../events/index.js';
import { Admission } from './admission.js';
import { startBroker, type BrokerOptions, type RunningBroker } from './broker.js';
import type { BrokerLogger } from './engine.js';
import { FakeConnectionRecords, FakePolicies, FakeThings, fleet, keyPem, type Fleet } from './test-fixtures.js';

export interface Entry { level: string; obj: Record<string, unknown>; msg: string }

/** dev-1's policy: its own topics by `${thing.name}`, a shared tree with one topic it may not receive. */
export const DEVICE_POLICY = {
  statements: [
    { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
    { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['things/${thing.name}/#'] },
    { effect: 'allow', actions: ['publish'], resources: ['sites/${thing.attr.site}/telemetry'] },
    { effect: 'allow', actions: ['subscribe', 'receive'], resources: ['shared/#'] },
    { effect: 'deny', actions: ['receive'], resources: ['shared/secret'] },
  ],
};

/** dev-2's policy: everything, `$certfleet/` included (still not publishable: the reserved-topic guard is in front). */
export const OBSERVER_POLICY = {
  statements: [
    { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
    { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['#', '$certfleet/#'] },
  ],
};

export class Harness {
  readonly f: Fleet = fleet();
  readonly policies = new FakePolicies().attach(this.f.dev1, 'device', DEVICE_POLICY).attach(this.f.dev2, 'observer', OBSERVER_POLICY);
  readonly things = new FakeThings().set('dev-1', { site: 'paris' }).set('dev-2');
  readonly records = new FakeConnectionRecords();
  readonly bus = new EventBus({ onListenerError: (err) => assert.fail(`event listener failed: ${String(err)}`) });
  readonly logs: Entry[] = [];
  readonly admission = new Admission({ cas: this.f.cas, certificates: this.f.certificates, now: () => new Date() });
  broker!: RunningBroker;
  readonly #clients: MqttClient[] = [];

  readonly logger: BrokerLogger = {
    debug: this.#rec('debug'), info: this.#rec('info'), warn: this.#rec('warn'), error: this.#rec('error'),
  };

  #rec(level: string) {
    return (obj: Record<string, unknown>, msg: string) => void this.logs.push({ level, obj, msg });
  }

  static async start(overrides: Partial<BrokerOptions> = {}): Promise<Harness> {
    const h = new Harness();
    h.broker = await startBroker(h.options(overrides));
    return h;
  }

  options(overrides: Partial<BrokerOptions> = {}): BrokerOptions {
    return {
      port: 0,
      // The leaf and its intermediate: a device holding only the root can verify the server.
      tls: { key: keyPem(this.f.server.key), cert: this.f.server.cert.toPem() + this.f.issuing.cert.toPem() },
      admission: this.admission,
      policies: { policies: this.policies, things: this.things, certificates: this.f.certificates },
      connections: this.records,
      events: this.bus,
      nodeId: 'test-node',
      logger: this.logger,
      ...overrides,
    };
  }

  /** MQTT 3.1.1 over TLS, verifying the server against the fleet root only; no retries. Closed by close(). */
  async device(clientId: string, leaf?: TestCa, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
    const opts: IClientOptions = { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ca: this.f.root.cert.toPem(), ...extra };
    if (leaf) {
      opts.key = keyPem(leaf.key);
      opts.cert = leaf.cert.toPem();
    }
    const c = await connectAsync(`mqtts://localhost:${this.broker.port}`, opts, false);
    this.#clients.push(c);
    return c;
  }

  logged(msg: string, match: Record<string, unknown> = {}): Entry | undefined {
    return this.logs.find((l) => l.msg === msg && Object.entries(match).every(([k, v]) => l.obj[k] === v));
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.end(true);
    await this.broker.close();
  }
}

export async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

// MqttClient's typed emitter does not fit events.once().
export const nextMessage = (c: MqttClient) => new Promise<[string, Buffer]>((resolve) => c.once('message', (t, p) => resolve([t, p])));
export const closeOf = (c: MqttClient) => new Promise<void>((resolve) => c.once('close', () => resolve()));

/**
 * The SUBACK return codes, one per filter (MQTT.js rejects the whole
 * subscribe when one filter gets 0x80, with the SUBACK on the error).
 */
export async function suback(c: MqttClient, filters: string | string[], qos: 0 | 1 = 0): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted;
  }
}

/** Topics a client receives from now on. */
export function collect(c: MqttClient): string[] {
  const seen: string[] = [];
  c.on('message', (topic) => seen.push(topic));
  return seen;
}

/** The current value of a counter or gauge (with these labels). */
export async function metric(m: Counter<string> | Gauge<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return hit?.value ?? 0;
}

export function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return join(dir, bin);
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface RunResult { code: number; killed: boolean; out: string }

/**
 * Runs a mosquitto client with the device's files as `certfleet cert issue`
 * writes them (leaf only, key, root). Asynchronous on purpose: the broker
 * runs in this process and must keep serving.
 */
export function mosquitto(bin: string, h: Harness, identity: TestCa, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-broker-'));
  writeFileSync(join(dir, 'ca.pem'), h.f.root.cert.toPem());
  writeFileSync(join(dir, 'cert.pem'), identity.cert.toPem());
  writeFileSync(join(dir, 'key.pem'), keyPem(identity.key), { mode: 0o600 });
  const all = ['--cafile', 'ca.pem', '--cert', 'cert.pem', '--key', 'key.pem', '-h', 'localhost', '-p', String(h.broker.port), ...args];
  return new Promise((resolve) => {
    execFile(bin, all, { cwd: dir, timeout: timeoutMs }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      const e = err as (Error & { code?: number; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, killed: e?.killed ?? false, out: `${stdout}${stderr}` });
    });
  });
}
