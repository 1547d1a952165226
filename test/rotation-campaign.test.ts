/**
 * Rotation campaigns against a real `certfleet serve`, with the real CLI and
 * MQTT.js devices speaking docs/device-protocol.md: each device listens on
 * its own `$certfleet/things/{thing}/#`; on a retained renew-required for its
 * certificate it sends a CSR with a new key to …/certificate/renew, connects
 * with the certificate it gets and confirms from that connection.
 *
 * - a campaign over a group of 102 devices: the 99 that confirm reach
 *   `retired` (their old certificate revoked, superseded), one that never
 *   connects with its new certificate and one that confirms from its old
 *   connection (refused) keep their old certificate active;
 * - a device offline while it was notified gets the retained renew-required
 *   when it comes back, and renews;
 * - a campaign interrupted by killing the server (SIGKILL) resumes after a
 *   restart, the retained messages the broker lost with its memory published
 *   again, and finishes.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { buildCsrPem, parseName } from '@certfleet/pki';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';
import { operatorApi, until } from './helpers/api.js';

let data: string;
let server: ServerProcess;
let ca: Buffer;
let token: string;
const api = operatorApi(() => ({ port: server.ports.api, ca, token }));



function newKey(thing: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    csr: buildCsrPem({ subject: parseName(`CN=${thing}`), privateKey, publicKey }),
    spki: publicKey.export({ format: 'der', type: 'spki' }),
  };
}

/** Whether `pem` is a certificate for the public key `spki`. */
function certifies(pem: unknown, spki: Buffer): boolean {
  try {
    return typeof pem === 'string' && new X509Certificate(pem).publicKey.export({ format: 'der', type: 'spki' }).equals(spki);
  } catch {
    return false;
  }
}

type Behaviour = 'confirms' | 'never-connects-with-new' | 'confirms-with-old';

/** A device as firmware written against docs/device-protocol.md would behave. */
class Device {
  client: MqttClient | undefined;
  certId = '';
  renewed = 0;
  rejected: string[] = [];
  #cert = '';
  #key = '';
  #pending: { cert: string; key: string; id: string } | undefined;
  #busy = false;
  readonly #clients = new Set<MqttClient>();

  constructor(
    readonly thing: string,
    readonly behaviour: Behaviour = 'confirms',
  ) {}

  async enrol(): Promise<void> {
    const { key, csr } = newKey(this.thing);
    assert.equal((await api('POST', '/api/v1/things', { name: this.thing })).status, 201);
    const c = await api('POST', '/api/v1/certificates', { csr, thing: this.thing });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    this.#cert = c.body.certificatePem as string;
    this.#key = key;
    this.certId = c.body.id as string;
    assert.equal((await api('POST', '/api/v1/policies/device/attach', { certificate: this.certId })).status, 200);
    assert.equal((await api('PUT', `/api/v1/thing-groups/fleet/things/${this.thing}`)).status, 204);
  }

  /**
   * Connects with the current certificate, or with `fallback` when the
   * server refuses the current one (CONNACK "not authorized": its renewal
   * was confirmed but the answer lost), retrying while the server is away
   * (the restart test). A server that is away refuses nothing: a failed
   * TCP or TLS connection never switches certificates, or a device that
   * never confirmed would end up on its new certificate with its campaign
   * item left `issued`.
   */
  async connect(fallback?: { cert: string; key: string; id: string }): Promise<MqttClient> {
    let c: MqttClient | undefined;
    for (let attempt = 0; !c; attempt++) {
      try {
        // Reconnects on its own when the server comes back.
        c = await connectAsync(
          `mqtts://localhost:${server.ports.mqtt}`,
          { clientId: this.thing, protocolVersion: 4, reconnectPeriod: 300, connectTimeout: 5_000, ca, cert: this.#cert, key: this.#key },
          false,
        );
      } catch (err) {
        if (attempt >= 60 || this.closed) throw err;
        if (fallback && refusedByServer(err)) [this.#cert, this.#key, this.certId] = [fallback.cert, fallback.key, fallback.id];
        await sleep(300);
      }
    }
    // Every client is ended at close: one left reconnecting to a stopped server keeps the test process alive.
    this.#clients.add(c);
    if (this.closed) {
      c.end(true);
      throw new Error(`${this.thing} is closed`);
    }
    c.on('message', (topic, payload) => void this.#onMessage(topic, payload));
    await c.subscribeAsync(`$certfleet/things/${this.thing}/#`, { qos: 1 });
    this.client = c;
    return c;
  }

  async #onMessage(topic: string, payload: Buffer): Promise<void> {
    if (!topic.endsWith('/certificate/renew-required') || payload.length === 0) return;
    const required = JSON.parse(payload.toString()) as { certificateId: string };
    if (required.certificateId === this.certId) await this.#attempt(required.certificateId);
  }

  /** One renewal at a time; a failed one is tried again a little later while the same certificate is still current. */
  async #attempt(wanted: string): Promise<void> {
    if (this.#busy || this.closed || wanted !== this.certId) return;
    this.#busy = true;
    try {
      await this.#renew();
    } catch {
      setTimeout(() => void this.#attempt(wanted), 500).unref();
    } finally {
      this.#busy = false;
    }
  }

  closed = false;

  async #renew(): Promise<void> {
    const base = `$certfleet/things/${this.thing}/certificate`;
    if (!this.#pending) {
      const { key, csr, spki } = newKey(this.thing);
      // Answers carry no request id: a late answer to an earlier request (whose certificate this
      // request revokes, docs/device-protocol.md) is told apart by the key it certifies.
      const [outcome, body] = await ask(this.client!, `${base}/renew`, { certificateSigningRequest: csr }, (b) => certifies(b.certificatePem, spki));
      if (outcome !== 'accepted') throw new Error(`renew ${outcome}: ${JSON.stringify(body)}`);
      this.#pending = { cert: body.certificatePem as string, key, id: body.certificateId as string };
      this.renewed++;
    }
    const pending = this.#pending;
    if (this.behaviour === 'never-connects-with-new') return;
    if (this.behaviour === 'confirms-with-old') {
      const [outcome, body] = await ask(this.client!, `${base}/confirm`, { certificateId: pending.id });
      if (outcome === 'rejected') this.rejected.push(body.errorCode as string);
      return;
    }
    // A trial connection with the new certificate; the old one is given up only once confirmed.
    const old = this.client!;
    const trial = { cert: this.#cert, key: this.#key, id: this.certId };
    old.end(true);
    [this.#cert, this.#key, this.certId] = [pending.cert, pending.key, pending.id];
    try {
      const c = await this.connect();
      const [outcome, body] = await ask(c, `${base}/confirm`, { certificateId: pending.id });
      if (outcome !== 'accepted') throw new Error(`confirm ${outcome}: ${JSON.stringify(body)}`);
      this.#pending = undefined;
    } catch (err) {
      this.client?.end(true);
      [this.#cert, this.#key, this.certId] = [trial.cert, trial.key, trial.id];
      const c = await this.connect(pending);
      if (this.certId !== pending.id) throw err;
      // The old certificate was refused: the confirmation was recorded. Confirming again
      // from the new certificate is answered as the first (docs/device-protocol.md).
      const [outcome, body] = await ask(c, `${base}/confirm`, { certificateId: pending.id });
      if (outcome !== 'accepted') throw new Error(`confirm after fallback ${outcome}: ${JSON.stringify(body)}`);
      this.#pending = undefined;
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.#clients) c.end(true);
  }

  /** What the device is waiting on, for a failure message. */
  state(): Record<string, unknown> {
    return { thing: this.thing, certId: this.certId.slice(0, 12), pending: this.#pending?.id.slice(0, 12) ?? null, busy: this.#busy, connected: this.client?.connected ?? false, renewed: this.renewed };
  }
}

/** CONNACK 0x05 (3.1.1) / 0x87 (5): the server is there and refuses this certificate. */
function refusedByServer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 5 || code === 0x87;
}

/**
 * Publishes a request and resolves with its answer (delivered to this connection alone); 15 s at
 * most. An accepted answer `mine` does not recognise belongs to an earlier request and is skipped.
 */
function ask(c: MqttClient, topic: string, body: unknown, mine: (b: Record<string, unknown>) => boolean = () => true): Promise<['accepted' | 'rejected', Record<string, unknown>]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off('message', on);
      reject(new Error(`no answer on ${topic}`));
    }, 15_000);
    const on = (t: string, payload: Buffer) => {
      if (t !== `${topic}/accepted` && t !== `${topic}/rejected`) return;
      const answer = JSON.parse(payload.toString()) as Record<string, unknown>;
      if (t.endsWith('/accepted') && !mine(answer)) return;
      clearTimeout(timer);
      c.off('message', on);
      resolve([t.endsWith('/accepted') ? 'accepted' : 'rejected', answer]);
    };
    c.on('message', on);
    c.publish(topic, JSON.stringify(body), { qos: 1 });
  });
}

const devices: Device[] = [];

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
  token = cli.token;
  ca = readFileSync(cli.caFile);
  const policy = join(data, 'device-policy.json');
  writeFileSync(policy, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] }));
  assert.equal((await certfleet(['policy', 'create', 'device', '--file', policy, '--data', data])).code, 0);
  assert.equal((await api('POST', '/api/v1/thing-groups', { name: 'fleet' })).status, 201);
});

after(async () => {
  for (const d of devices) d.close();
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

type CampaignView = { status: string; counts: Record<string, number> };

/** Polled through the API (a CLI process per poll would cost more than the campaign). */
async function campaign(id: string): Promise<CampaignView> {
  const r = await api('GET', `/api/v1/campaigns/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as CampaignView;
}

/** What `certfleet campaign show ID --json` prints. */
async function shown(id: string): Promise<CampaignView> {
  const r = await certfleet(['campaign', 'show', id, '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CampaignView;
}

async function statusOf(certificateId: string): Promise<[string, unknown]> {
  const r = await api('GET', `/api/v1/certificates/${certificateId}`);
  return [r.body.status as string, r.body.revocationReason ?? null];
}

describe('a rotation campaign over MQTT', () => {
  it('renews every device that confirms, keeps the old certificate of those that do not, and reaches a device that was offline', async () => {
    for (let i = 0; i < 100; i++) devices.push(new Device(`rot-${String(i).padStart(3, '0')}`, i === 99 ? 'never-connects-with-new' : 'confirms'));
    const failing = new Device('rot-failing', 'confirms-with-old');
    const offline = new Device('rot-offline');
    devices.push(failing, offline);
    for (let i = 0; i < devices.length; i += 17) await Promise.all(devices.slice(i, i + 17).map((d) => d.enrol()));
    const oldIds = new Map(devices.map((d) => [d.thing, d.certId]));
    await Promise.all(devices.filter((d) => d !== offline).map((d) => d.connect()));

    const created = await certfleet(['campaign', 'create', '--group', 'fleet', '--rate', '6000', '--grace', '0s', '--json', '--data', data]);
    assert.equal(created.code, 0, created.stderr);
    const { id, counts } = JSON.parse(created.stdout) as { id: string; counts: Record<string, number> };
    assert.equal(counts.pending, 102);

    await until('99 devices retired their old certificate', async () => (await campaign(id)).counts.retired === 99, 40_000);
    // The offline device was notified too; it gets the retained message when it comes back.
    assert.equal(offline.renewed, 0);
    await offline.connect();
    await until('the offline device renewed', async () => (await campaign(id)).counts.retired === 100);
    assert.equal(offline.renewed, 1);

    const done = await shown(id);
    assert.deepEqual([done.counts.retired, done.counts.issued, done.counts.pending, done.counts.notified, done.counts.failed], [100, 2, 0, 0, 0]);
    const issued = await api('GET', `/api/v1/campaigns/${id}/items?state=issued`);
    assert.deepEqual((issued.body.items as Array<{ thingName: string }>).map((i) => i.thingName).sort(), ['rot-099', 'rot-failing']);

    for (const d of devices.slice(0, 3)) {
      assert.deepEqual(await statusOf(oldIds.get(d.thing)!), ['revoked', 'superseded']);
      assert.deepEqual(await statusOf(d.certId), ['active', null]);
      assert.notEqual(d.certId, oldIds.get(d.thing));
    }
    assert.deepEqual(await statusOf(oldIds.get('rot-099')!), ['active', null], 'never connected with the new one: keeps the old');
    assert.deepEqual(await statusOf(oldIds.get('rot-failing')!), ['active', null], 'confirmed from the old connection: refused, keeps the old');
    assert.deepEqual(failing.rejected, ['NotTheNewCertificate']);
    assert.equal(failing.client?.connected, true, 'its old certificate still connects');
  });

  it('resumes a campaign after the server is killed and restarted', async () => {
    const group = devices.slice(0, 20);
    const before = new Map(group.map((d) => [d.thing, d.certId]));
    const created = await certfleet(['campaign', 'create', ...group.flatMap((d) => ['--cert', d.certId]), '--rate', '300', '--grace', '0s', '--json', '--data', data]);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    await until('a few devices notified', async () => {
      const c = await campaign(id);
      return (c.counts.pending ?? 0) <= 12;
    });
    const ports = server.ports;
    await server.stop('SIGKILL');
    const mid = readFileSync(join(data, 'ports.json'), 'utf8');
    assert.ok(mid.length > 0);
    server = await serve(data, ['--api-port', String(ports.api), '--mqtt-port', String(ports.mqtt), '--http-port', String(ports.http)]);
    const resumed = await campaign(id);
    assert.equal(resumed.status, 'running');
    assert.ok((resumed.counts.pending ?? 0) < 20, 'the progress made before the kill is kept');
    await until('all 20 retired after the restart', async () => (await campaign(id)).counts.retired === 20, 45_000).catch(async (err: unknown) => {
      const items = await api('GET', `/api/v1/campaigns/${id}/items`);
      const stuck = (items.body.items as Array<{ thingName: string; state: string }>).filter((i) => i.state !== 'retired');
      const waiting = group.filter((d) => stuck.some((i) => i.thingName === d.thing)).map((d) => d.state());
      throw new Error(`${String(err)}: items ${JSON.stringify(stuck)}; devices ${JSON.stringify(waiting)}\nserver:\n${server.output().slice(-4000)}`);
    });
    // A device whose confirm answer was lost to the kill learns it only when its old certificate is refused.
    await until('every device on its new certificate', () => group.every((d) => d.certId !== before.get(d.thing)));
    for (const d of group) {
      assert.deepEqual(await statusOf(before.get(d.thing)!), ['revoked', 'superseded']);
    }
    // The runner marks the campaign completed on its next tick after the last item.
    await until('the campaign completed', async () => (await shown(id)).status === 'completed');
  });
});
