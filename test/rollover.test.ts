/**
 * Issuer rotation and trust-anchor rollover against a real `certfleet serve`,
 * with the real CLI, openssl, curl-free HTTPS and MQTT.js devices speaking
 * docs/device-protocol.md:
 *
 * - a new root and issuing CA, the new root cross-signed by the old one: a
 *   leaf of the new issuer verifies (`openssl verify -x509_strict`) against
 *   the old root alone and against the new root alone; retiring the new
 *   issuer is refused (409, with the count) while the leaf is active;
 * - a root rollover: two devices receive the retained bundle (one was
 *   subscribed, one connects afterwards), one acknowledges and one never
 *   does; `/trust-bundle.pem` holds both roots; removing the old root is
 *   refused (409) until forced;
 * - audit findings stored and listed: at the 30-day threshold one finding
 *   for a certificate expiring in 29 days and none for one in 31 days.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { certfleet, serve, tempDir, type ServerProcess, certfleetOk, opensslVerify } from './helpers/cli.js';
import { operatorApi, until } from './helpers/api.js';

let data: string;
let server: ServerProcess;
let ca: Buffer;
let token: string;
const api = operatorApi(() => ({ port: server.ports.api, ca, token }));
const clients: MqttClient[] = [];

const idOf = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const pemCount = (text: string) => (text.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;


const cli = (args: string[]): Promise<string> => certfleetOk(data, args);



interface Ca { id: string; name: string; kind: string }

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const c = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
  token = c.token;
  ca = readFileSync(c.caFile);
  const policy = join(data, 'device-policy.json');
  writeFileSync(policy, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] }));
  await cli(['policy', 'create', 'device', '--file', policy]);
});

after(async () => {
  for (const c of clients) c.end(true);
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

let oldRoot: Ca;
let newRoot: Ca;

describe('issuer rotation with cross-signing', () => {
  let leafId = '';
  it('a leaf of the new issuer verifies against the old root alone and against the new root alone', async () => {
    oldRoot = (JSON.parse(await cli(['ca', 'list', '--json'])) as { items: Ca[] }).items.find((x) => x.kind === 'root')!;
    newRoot = JSON.parse(await cli(['ca', 'create', 'root-2031', '--subject', 'CN=Device Root 2031,O=certfleet', '--json'])) as Ca;
    await cli(['ca', 'create', 'issuing-2031', '--parent', 'root-2031', '--json']);
    const cross = JSON.parse(await cli(['ca', 'cross-sign', 'root-2031', '--by', oldRoot.id, '--json'])) as { certificatePem: string; notAfter: string };
    const x = new X509Certificate(cross.certificatePem);
    assert.match(x.subject, /Device Root 2031/);
    assert.ok(new Date(cross.notAfter) <= new Date(new X509Certificate(readFileSync(join(data, 'ca.pem'))).validTo), 'bounded by the old root');

    const out = join(data, 'leaf-2031');
    await cli(['cert', 'issue', '--cn', 'rotated-device', '--issuer', 'issuing-2031', '--out', out]);
    const chain = readFileSync(join(out, 'chain.pem'), 'utf8');
    assert.equal(pemCount(chain), 3, 'new issuer, cross certificate, new root');
    leafId = idOf(readFileSync(join(out, 'cert.pem'), 'utf8'));
    const oldOnly = opensslVerify(join(data, 'ca.pem'), join(out, 'chain.pem'), join(out, 'cert.pem'));
    assert.ok(oldOnly.ok, oldOnly.out);
    const newOnly = opensslVerify(join(out, 'ca.pem'), join(out, 'chain.pem'), join(out, 'cert.pem'));
    assert.ok(newOnly.ok, newOnly.out);
    assert.match(readFileSync(join(out, 'ca.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    assert.notEqual(idOf(readFileSync(join(out, 'ca.pem'), 'utf8')), idOf(readFileSync(join(data, 'ca.pem'), 'utf8')));
  });

  it('lists the dependents of a CA and refuses to retire it while they are active', async () => {
    const d = JSON.parse(await cli(['ca', 'dependents', 'root-2031', '--json'])) as { count: number; items: Array<{ id: string }> };
    assert.equal(d.count, 1);
    assert.equal(d.items[0]!.id, leafId);
    const refused = await api('POST', '/api/v1/cas/issuing-2031/retire', {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.dependents, 1);
    const r = await certfleet(['ca', 'retire', 'issuing-2031', '--data', data]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /1 active certificates still depend/);
  });
});

describe('trust-anchor rollover', () => {
  async function device(thing: string) {
    await cli(['thing', 'create', thing]);
    const out = join(data, thing);
    await cli(['cert', 'issue', '--thing', thing, '--out', out]);
    const certPem = readFileSync(join(out, 'cert.pem'), 'utf8');
    await cli(['policy', 'attach', 'device', '--cert', idOf(certPem)]);
    const received: Array<{ version: number; roots: string[] }> = [];
    const answers: string[] = [];
    const client = await connectAsync(`mqtts://localhost:${server.ports.mqtt}`, { clientId: thing, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca, cert: certPem, key: readFileSync(join(out, 'key.pem')) });
    clients.push(client);
    client.on('message', (topic, payload) => {
      if (topic === `$certfleet/things/${thing}/trust-bundle` && payload.length > 0) received.push(JSON.parse(payload.toString()) as { version: number; roots: string[] });
      if (topic.startsWith(`$certfleet/things/${thing}/trust-bundle/ack/`)) answers.push(topic.slice(topic.lastIndexOf('/') + 1));
    });
    await client.subscribeAsync(`$certfleet/things/${thing}/#`, { qos: 1 });
    return { client, received, answers };
  }

  it('delivers the bundle retained, counts acknowledgements, and refuses to remove the old root until forced', async () => {
    const a = await device('meter-a');
    const added = JSON.parse(await cli(['trust', 'add-root', 'root-2031', '--json'])) as { version: number; roots: string[] };
    assert.equal(added.version, 1);
    assert.deepEqual(added.roots, [oldRoot.id, newRoot.id]);
    await until('meter-a receives the bundle', () => a.received.length > 0);
    assert.equal(a.received[0]!.version, 1);
    assert.equal(a.received[0]!.roots.length, 2);

    // meter-b is made and connects after the change: the broker gives it the bundle on connect, retained.
    const b = await device('meter-b');
    await until('meter-b receives the bundle', () => b.received.length > 0);
    assert.deepEqual(b.received[0]!.roots.map(idOf).sort(), a.received[0]!.roots.map(idOf).sort());

    const pem = await (await fetch(`http://127.0.0.1:${server.ports.http}/trust-bundle.pem`)).text();
    assert.equal(pemCount(pem), 2, 'both roots during the rollover');

    await a.client.publishAsync('$certfleet/things/meter-a/trust-bundle/ack', JSON.stringify({ version: 1 }), { qos: 1 });
    await until('meter-a ack accepted', () => a.answers.includes('accepted'));
    const st = JSON.parse(await cli(['trust', 'status', '--json'])) as { version: number; things: number; acknowledged: number; pending: number };
    assert.deepEqual([st.version, st.acknowledged, st.pending], [1, 1, 1]);
    const pending = await api('GET', '/api/v1/trust-bundle/pending');
    assert.deepEqual(pending.body.items, ['meter-b']);

    // An acknowledgement for another thing, or of a version that does not exist, is rejected.
    await a.client.publishAsync('$certfleet/things/meter-a/trust-bundle/ack', JSON.stringify({ version: 9 }), { qos: 1 });
    await until('meter-a bad ack rejected', () => a.answers.includes('rejected'));

    const refused = await api('DELETE', `/api/v1/trust-bundle/roots/${oldRoot.id}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.pending, 1);
    const r = await certfleet(['trust', 'remove-root', oldRoot.id, '--data', data]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /409/);
    const forced = JSON.parse(await cli(['trust', 'remove-root', oldRoot.id, '--force', '--json'])) as { version: number; roots: string[]; pendingAtRemoval: number };
    assert.deepEqual([forced.version, forced.roots, forced.pendingAtRemoval], [2, [newRoot.id], 1]);
    await until('meter-a receives version 2', () => a.received.some((x) => x.version === 2));
    const after = await (await fetch(`http://127.0.0.1:${server.ports.http}/trust-bundle.pem`)).text();
    assert.equal(pemCount(after), 1);
  });
});

describe('stored audit findings', () => {
  it('one finding for a certificate expiring in 29 days, none for 31 days, at the 30-day threshold', async () => {
    await cli(['thing', 'create', 'exp-29']);
    await cli(['thing', 'create', 'exp-31']);
    await cli(['cert', 'issue', '--thing', 'exp-29', '--days', '29', '--out', join(data, 'exp-29')]);
    await cli(['cert', 'issue', '--thing', 'exp-31', '--days', '31', '--out', join(data, 'exp-31')]);
    const id29 = idOf(readFileSync(join(data, 'exp-29', 'cert.pem'), 'utf8'));
    const run = JSON.parse(await cli(['audit', 'run', '--expiring-within', '30d', '--json'])) as { runId: string; newFindings: number };
    assert.match(run.runId, /^run-/);
    const listed = JSON.parse(await cli(['audit', 'findings', '--reason', 'device-certificate-expiring', '--json'])) as { items: Array<{ resource: string; firstSeen: string }> };
    assert.deepEqual(listed.items.map((f) => f.resource), [id29]);
    const csv = await cli(['audit', 'export', '--format', 'csv']);
    assert.match(csv.split('\r\n')[0]!, /^id,severity,reasonCode/);
    assert.ok(csv.includes(id29));
  });
});
