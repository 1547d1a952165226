import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { TestCa } from '../../../pki/src/testing/hierarchy.js';
import { Admission } from './admission.js';
import { baselineAuthorization } from './authorization.js';
import { startBroker, type RunningBroker } from './broker.js';
import type { BrokerLogger } from './engine.js';
import { fleet, keyPem, type Fleet } from './test-fixtures.js';

interface Entry { level: string; obj: Record<string, unknown>; msg: string }
const logs: Entry[] = [];
const rec = (level: string) => (obj: Record<string, unknown>, msg: string) => void logs.push({ level, obj, msg });
const logger: BrokerLogger = { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };

let f: Fleet;
let broker: RunningBroker;

async function serve(): Promise<RunningBroker> {
  return startBroker({
    port: 0,
    // The leaf and its intermediate: a device holding only the root can verify the server.
    tls: { key: keyPem(f.server.key), cert: f.server.cert.toPem() + f.issuing.cert.toPem() },
    admission: new Admission({ cas: f.cas, certificates: f.certificates, now: () => new Date() }),
    logger,
  });
}

before(async () => {
  f = fleet();
  broker = await serve();
});
after(() => broker.close());

async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

// MqttClient's typed emitter does not fit events.once().
const nextMessage = (c: MqttClient) => new Promise<[string, Buffer]>((resolve) => c.once('message', (t, p) => resolve([t, p])));
const closeOf = (c: MqttClient) => new Promise<void>((resolve) => c.once('close', () => resolve()));

/** MQTT 3.1.1 over TLS, verifying the server against the fleet root only; no retries. */
function device(clientId: string, identity?: { leaf: TestCa; chain?: TestCa[] }): Promise<MqttClient> {
  const opts: IClientOptions = { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ca: f.root.cert.toPem() };
  if (identity) {
    opts.key = keyPem(identity.leaf.key);
    opts.cert = [identity.leaf, ...(identity.chain ?? [])].map((c) => c.cert.toPem()).join('');
  }
  return connectAsync(`mqtts://localhost:${broker.port}`, opts, false);
}

describe('MQTT over mutual TLS', () => {
  it('admits a registered device, which subscribes, publishes and receives its own message', async () => {
    const c = await device('dev-1', { leaf: f.dev1, chain: [f.issuing] });
    try {
      const granted = await c.subscribeAsync('things/dev-1/#', { qos: 1 });
      assert.deepEqual(granted.map((g) => g.qos), [1]);
      const got = nextMessage(c);
      await c.publishAsync('things/dev-1/temp', '21.5', { qos: 1 });
      const [topic, payload] = await got;
      assert.equal(topic, 'things/dev-1/temp');
      assert.equal(payload.toString(), '21.5');
      const connected = logs.find((l) => l.msg === 'device connected' && l.obj.clientId === 'dev-1');
      assert.deepEqual(connected?.obj, { clientId: 'dev-1', certificateId: f.dev1.cert.fingerprint(), thingName: 'dev-1' });
    } finally {
      await c.endAsync();
    }
  });

  const refusals = [
    { name: 'an unknown certificate', identity: () => ({ leaf: f.unknown, chain: [f.issuing] }), reason: 'unknown-certificate' },
    { name: 'a certificate of a foreign CA', identity: () => ({ leaf: f.foreign, chain: [f.foreignIssuing] }), reason: 'untrusted-chain' },
    { name: 'a revoked certificate', identity: () => ({ leaf: f.revoked }), reason: 'revoked-certificate' },
    { name: 'no certificate at all', identity: () => undefined, reason: 'no-certificate' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} before MQTT, and logs why`, async () => {
      const clientId = `refused-${r.reason}`;
      await assert.rejects(device(clientId, r.identity()));
      await waitFor(`a ${r.reason} log`, () => logs.some((l) => l.msg === 'device refused' && l.obj.reason === r.reason));
      const entry = logs.find((l) => l.obj.reason === r.reason)!;
      assert.equal(entry.level, 'warn');
      assert.match(String(entry.obj.remote), /:\d+$/);
      assert.ok(String(entry.obj.detail).length > 0);
      assert.ok(!logs.some((l) => l.obj.clientId === clientId), 'a refused connection never reaches MQTT');
    });
  }

  it('drops a device publishing to $certfleet/ and delivers nothing, not even to a $certfleet/# subscriber', async () => {
    const watcher = await device('watcher', { leaf: f.dev1 });
    const pub = await device('dev-2', { leaf: f.dev2 });
    try {
      // `#` alone never matches `$…` topics [MQTT-4.7.2-1], so subscribe to the reserved tree explicitly.
      const granted = await watcher.subscribeAsync(['#', '$certfleet/#'], { qos: 0 });
      assert.deepEqual(granted.map((g) => g.qos), [0, 0]);
      const seen: string[] = [];
      watcher.on('message', (topic) => seen.push(topic));

      const closed = closeOf(pub);
      pub.publish('$certfleet/x', 'forged', { qos: 1 });
      await closed; // MQTT 3.1.1 cannot refuse a PUBLISH: the server closes the connection [MQTT-3.3.5-2]

      await watcher.publishAsync('things/dev-1/after', 'ok', { qos: 1 });
      await waitFor('the sentinel message', () => seen.includes('things/dev-1/after'));
      assert.deepEqual(seen, ['things/dev-1/after']);
      const closedLog = logs.find((l) => l.msg === 'connection closed on error' && l.obj.clientId === 'dev-2');
      assert.equal(closedLog?.obj.certificateId, f.dev2.cert.fingerprint());
      assert.match(String(closedLog?.obj.err), /\$certfleet\//);
    } finally {
      await watcher.endAsync();
      pub.end(true);
    }
  });

  it('close() ends admitted clients and connections still in the handshake', async () => {
    const second = await serve();
    const c = await connectAsync(`mqtts://localhost:${second.port}`, {
      clientId: 'dev-1-b', reconnectPeriod: 0, ca: f.root.cert.toPem(), key: keyPem(f.dev1.key), cert: f.dev1.cert.toPem(),
    }, false);
    const raw = tcpConnect(second.port, 'localhost'); // never starts TLS
    await once(raw, 'connect');
    const clientClosed = closeOf(c);
    const rawClosed = once(raw, 'close');
    await second.close();
    await Promise.all([clientClosed, rawClosed]);
    await second.close(); // idempotent
    c.end(true);
  });
});

describe('baseline authorization', () => {
  const cases = [
    { topic: 'things/dev-1/temp', allowed: true },
    { topic: '$certfleet/certificates/create/json', allowed: false },
    { topic: '$SYS/broker/heartbeat', allowed: false },
    { topic: 'certfleet/x', allowed: true },
  ];
  for (const c of cases) {
    it(`${c.allowed ? 'allows' : 'refuses'} a publish to ${c.topic}`, async () => {
      const verdict = baselineAuthorization.authorizePublish(null, c.topic);
      if (c.allowed) await verdict;
      else await assert.rejects(verdict, (err: Error & { code?: string }) => err.code === 'forbidden');
    });
  }
});

function onPath(bin: string): string | undefined {
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

const mosquittoPub = onPath('mosquitto_pub');

describe('mosquitto_pub (a real client built on OpenSSL)', { skip: mosquittoPub ? false : 'mosquitto_pub is not installed' }, () => {
  function pub(identity: TestCa, topic: string): Promise<{ code: number | null; killed: boolean; out: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'certfleet-broker-'));
    writeFileSync(join(dir, 'ca.pem'), f.root.cert.toPem());
    writeFileSync(join(dir, 'cert.pem'), identity.cert.toPem()); // the leaf only, as `certfleet cert issue` writes it
    writeFileSync(join(dir, 'key.pem'), keyPem(identity.key), { mode: 0o600 });
    const args = ['--cafile', 'ca.pem', '--cert', 'cert.pem', '--key', 'key.pem', '-h', 'localhost', '-p', String(broker.port), '-t', topic, '-m', 'hi'];
    // Asynchronous on purpose: the broker runs in this process and must keep serving.
    return new Promise((resolve) => {
      execFile(mosquittoPub!, args, { cwd: dir, timeout: 15_000 }, (err, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        const e = err as (Error & { code?: number; killed?: boolean }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, killed: e?.killed ?? false, out: `${stdout}${stderr}` });
      });
    });
  }

  it('publishes with an admitted certificate (exit 0) and the message is delivered', async () => {
    const watcher = await device('watcher-mosq', { leaf: f.dev2 });
    try {
      await watcher.subscribeAsync('things/dev-1/x', { qos: 0 });
      const got = nextMessage(watcher);
      const r = await pub(f.dev1, 'things/dev-1/x');
      assert.equal(r.code, 0, r.out);
      const [, payload] = await got;
      assert.equal(payload.toString(), 'hi');
    } finally {
      await watcher.endAsync();
    }
  });

  it('fails with an unknown certificate (non-zero exit, not a timeout)', async () => {
    const r = await pub(f.unknown, 'things/dev-1/x');
    assert.equal(r.killed, false, 'mosquitto_pub should fail, not hang');
    assert.notEqual(r.code, 0, r.out);
  });
});
