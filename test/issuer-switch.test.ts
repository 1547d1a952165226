/**
 * Switching the default issuer against a real `certfleet serve`, with the
 * real CLI, openssl and an MQTT.js device speaking docs/device-protocol.md:
 *
 * - a new root and issuing CA, the new root cross-signed by the old one;
 *   a root is refused as the default issuer and the current default issuer
 *   cannot be retired;
 * - `certfleet ca set-default`: `certfleet cert issue` (no --issuer) now
 *   chains to the new issuer and verifies (`openssl verify -x509_strict`)
 *   against the old root alone, through the cross certificate, and against
 *   the new root alone;
 * - a campaign (`--ca OLD --issuer NEW`) re-issues a connected device under
 *   the new issuer; the device connects with it and confirms;
 * - after a restart the node's own TLS certificate comes from the new
 *   issuer and still verifies with the old ca.pem; its old one is
 *   superseded, so `certfleet ca retire OLD` succeeds without --force.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { buildCsrPem, parseName } from '@certfleet/pki';
import { certfleet, serve, tempDir, type ServerProcess, certfleetOk, opensslVerify } from './helpers/cli.js';
import { operatorApi, until } from './helpers/api.js';

let data: string;
let server: ServerProcess;
let oldCa: Buffer;
let token: string;
const api = operatorApi(() => ({ port: server.ports.api, ca: oldCa, token }));
const clients: MqttClient[] = [];

const idOf = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const pemCount = (text: string) => (text.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;


const cli = (args: string[]): Promise<string> => certfleetOk(data, args);



/** The certificate the api port presents, verified against `ca` alone (Node's TLS, as the CLI does). */
function serverCertificate(port: number, ca: Buffer): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: 'localhost', port, servername: 'localhost', ca }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (peer) resolve(peer);
      else reject(new Error('no peer certificate'));
    });
    socket.on('error', reject);
  });
}

function newKey(thing: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csr: buildCsrPem({ subject: parseName(`CN=${thing}`), privateKey, publicKey }) };
}

/** Publishes a request and resolves with its answer on …/accepted or …/rejected (15 s at most). */
function ask(c: MqttClient, topic: string, body: unknown): Promise<['accepted' | 'rejected', Record<string, unknown>]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer on ${topic}`)), 15_000);
    const on = (t: string, payload: Buffer) => {
      if (t !== `${topic}/accepted` && t !== `${topic}/rejected`) return;
      clearTimeout(timer);
      c.off('message', on);
      resolve([t.endsWith('/accepted') ? 'accepted' : 'rejected', JSON.parse(payload.toString()) as Record<string, unknown>]);
    };
    c.on('message', on);
    c.publish(topic, JSON.stringify(body), { qos: 1 });
  });
}

/** A device that renews when asked (docs/device-protocol.md): CSR with a new key, trial connection with the new certificate, confirmation from it. */
class Device {
  cert = '';
  key = '';
  certId = '';
  client: MqttClient | undefined;
  renewing: Promise<void> | undefined;

  constructor(readonly thing: string) {}

  async connect(): Promise<MqttClient> {
    const c = await connectAsync(`mqtts://localhost:${server.ports.mqtt}`, { clientId: this.thing, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca: oldCa, cert: this.cert, key: this.key });
    clients.push(c);
    c.on('message', (topic, payload) => {
      if (!topic.endsWith('/certificate/renew-required') || payload.length === 0) return;
      if ((JSON.parse(payload.toString()) as { certificateId: string }).certificateId === this.certId) this.renewing ??= this.renew();
    });
    await c.subscribeAsync(`$certfleet/things/${this.thing}/#`, { qos: 1 });
    this.client = c;
    return c;
  }

  async renew(): Promise<void> {
    const base = `$certfleet/things/${this.thing}/certificate`;
    const { key, csr } = newKey(this.thing);
    const [outcome, body] = await ask(this.client!, `${base}/renew`, { certificateSigningRequest: csr });
    assert.equal(outcome, 'accepted', JSON.stringify(body));
    this.client!.end(true);
    [this.cert, this.key, this.certId] = [body.certificatePem as string, key, body.certificateId as string];
    const c = await this.connect();
    const [confirmed, answer] = await ask(c, `${base}/confirm`, { certificateId: this.certId });
    assert.equal(confirmed, 'accepted', JSON.stringify(answer));
  }
}

interface Ca { id: string; name: string; kind: string; status: string }

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const c = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
  token = c.token;
  oldCa = readFileSync(c.caFile);
  const policy = join(data, 'device-policy.json');
  writeFileSync(policy, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] }));
  await cli(['policy', 'create', 'device', '--file', policy]);
});

after(async () => {
  for (const c of clients) c.end(true);
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('switching the default issuer', () => {
  let oldRoot: Ca;
  let oldIssuer: Ca;
  let newIssuer: Ca;
  const meter = new Device('meter-1');

  it('a device enrolled under the first issuer connects', async () => {
    const cas = (JSON.parse(await cli(['ca', 'list', '--json'])) as { items: Ca[] }).items;
    oldRoot = cas.find((x) => x.kind === 'root')!;
    oldIssuer = JSON.parse(await cli(['ca', 'default', '--json'])).ca as Ca;
    assert.equal(oldIssuer.kind, 'intermediate');
    await cli(['thing', 'create', meter.thing]);
    const out = join(data, meter.thing);
    await cli(['cert', 'issue', '--thing', meter.thing, '--out', out]);
    [meter.cert, meter.key] = [readFileSync(join(out, 'cert.pem'), 'utf8'), readFileSync(join(out, 'key.pem'), 'utf8')];
    meter.certId = idOf(meter.cert);
    await cli(['policy', 'attach', 'device', '--cert', meter.certId]);
    await meter.connect();
  });

  it('refuses a root as the default issuer, and retiring the default issuer', async () => {
    newIssuer = JSON.parse(await cli(['ca', 'create', 'issuing-2031', '--parent', (JSON.parse(await cli(['ca', 'create', 'root-2031', '--subject', 'CN=Device Root 2031,O=certfleet', '--json'])) as Ca).id, '--json'])) as Ca;
    await cli(['ca', 'cross-sign', 'root-2031', '--by', oldRoot.id]);
    const root = await certfleet(['ca', 'set-default', 'root-2031', '--data', data]);
    assert.notEqual(root.code, 0);
    assert.match(root.stderr, /is a root/);
    const retire = await api('POST', `/api/v1/cas/${oldIssuer.id}/retire`, { force: true });
    assert.equal(retire.status, 409);
    assert.match(String(retire.body.detail), /is the default issuer/);
  });

  it('after set-default, cert issue chains to the new issuer and verifies against the old root alone and the new root alone', async () => {
    const set = JSON.parse(await cli(['ca', 'set-default', newIssuer.id, '--json'])) as { ca: Ca; previous: string };
    assert.deepEqual([set.ca.id, set.previous], [newIssuer.id, oldIssuer.id]);
    assert.equal((JSON.parse(await cli(['ca', 'default', '--json'])) as { ca: Ca }).ca.id, newIssuer.id);

    const out = join(data, 'after-switch');
    await cli(['cert', 'issue', '--cn', 'after-switch', '--out', out]);
    const leaf = new X509Certificate(readFileSync(join(out, 'cert.pem')));
    const chain = readFileSync(join(out, 'chain.pem'), 'utf8');
    assert.equal(pemCount(chain), 3, 'new issuer, cross certificate, new root');
    assert.equal(leaf.issuer, new X509Certificate(chain.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!).subject);
    assert.match(leaf.issuer, /issuing-2031/);
    const oldOnly = opensslVerify(join(data, 'ca.pem'), join(out, 'chain.pem'), join(out, 'cert.pem'));
    assert.ok(oldOnly.ok, oldOnly.out);
    const newOnly = opensslVerify(join(out, 'ca.pem'), join(out, 'chain.pem'), join(out, 'cert.pem'));
    assert.ok(newOnly.ok, newOnly.out);
    assert.match(new X509Certificate(readFileSync(join(out, 'ca.pem'))).subject, /Device Root 2031/);
  });

  it('a campaign over the old issuer re-issues the device under the new one', async () => {
    const before = meter.certId;
    const created = JSON.parse(await cli(['campaign', 'create', '--ca', oldIssuer.id, '--issuer', newIssuer.id, '--rate', '6000', '--grace', '0s', '--json'])) as { id: string; counts: Record<string, number> };
    assert.equal(created.counts.pending, 1);
    await until('the device retired its old certificate', async () => ((await api('GET', `/api/v1/campaigns/${created.id}`)).body.counts as Record<string, number>).retired === 1);
    await meter.renewing;
    assert.notEqual(meter.certId, before);
    const renewed = await api('GET', `/api/v1/certificates/${meter.certId}`);
    assert.deepEqual([renewed.body.issuerId, renewed.body.status], [newIssuer.id, 'active']);
    assert.equal((await api('GET', `/api/v1/certificates/${before}`)).body.status, 'revoked');
    assert.equal(meter.client?.connected, true, 'connected with the certificate of the new issuer');
  });

  it('after a restart the node serves a certificate of the new issuer, and the old issuer retires without --force', async () => {
    const served = await serverCertificate(server.ports.api, oldCa);
    assert.match(served.issuer, /certfleet Issuing CA/, 'before the restart: still the issuer init made');
    const ports = server.ports;
    await server.stop();
    server = await serve(data, ['--api-port', String(ports.api), '--mqtt-port', String(ports.mqtt), '--http-port', String(ports.http)]);
    const now = await serverCertificate(server.ports.api, oldCa);
    assert.match(now.issuer, /issuing-2031/, 'verified with the old ca.pem alone, through the cross certificate');
    assert.equal((await api('GET', `/api/v1/certificates/${idOf(served.toString())}`)).body.revocationReason, 'superseded');

    const d = JSON.parse(await cli(['ca', 'dependents', oldIssuer.id, '--json'])) as { count: number };
    assert.equal(d.count, 0);
    const retired = JSON.parse(await cli(['ca', 'retire', oldIssuer.id, '--json'])) as { ca: Ca; dependents: number };
    assert.deepEqual([retired.ca.status, retired.dependents], ['inactive', 0]);

    // The device on its new certificate is still admitted; certificates keep coming from the new issuer.
    await meter.connect();
    const out = join(data, 'after-retire');
    await cli(['cert', 'issue', '--cn', 'after-retire', '--out', out]);
    assert.match(new X509Certificate(readFileSync(join(out, 'cert.pem'))).issuer, /issuing-2031/);
  });
});
