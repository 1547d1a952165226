/**
 * Fleet provisioning by claim against a real `certfleet serve`, with the
 * real CLI and MQTT.js devices: a template and a claim credential made with
 * the CLI; a device connected with the claim runs create-from-csr and
 * provision exactly per the contract, then connects with its own
 * certificate and publishes within the template's policy. A spent token is
 * refused, answers reach only the device that asked, a claim certificate
 * publishing anywhere else is disconnected, the same flow works over HTTPS
 * with the claim as client certificate, and `certfleet-agent simulate`
 * provisions 50 devices. (Token expiry is tested with an injected clock in
 * packages/server/src/provisioning/fleet-provisioning.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { buildCsrPem, parseName } from '@certfleet/pki';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

const AGENT = resolve(import.meta.dirname, '../packages/agent/bin/certfleet-agent.js');
const CSR_TOPIC = '$certfleet/certificates/create-from-csr/json';
const provisionTopic = (t: string) => `$certfleet/provisioning-templates/${t}/provision/json`;

let data: string;
let server: ServerProcess;
let claimDir: string;
const clients: MqttClient[] = [];

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const policy = join(data, 'meter-policy.json');
  writeFileSync(
    policy,
    JSON.stringify({
      statements: [
        { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
        { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['meters/${thing.name}/#'] },
      ],
    }),
  );
  const p = await certfleet(['policy', 'create', 'meter-policy', '--file', policy, '--data', data]);
  assert.equal(p.code, 0, p.stderr);
});
after(async () => {
  for (const c of clients) c.end(true);
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

/** An MQTT 3.1.1 client over mutual TLS, as a device with these files would connect. */
async function mqttDevice(clientId: string, cert: string, key: string): Promise<MqttClient> {
  const c = await connectAsync(`mqtts://localhost:${server.ports.mqtt}`, { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca: readFileSync(join(claimDir, 'ca.pem')), cert, key }, false);
  clients.push(c);
  return c;
}

/** Subscribes to both answers, publishes, and resolves with the first answer: [outcome, body]. */
async function ask(c: MqttClient, topic: string, body: unknown): Promise<['accepted' | 'rejected', Record<string, unknown>]> {
  await c.subscribeAsync([`${topic}/accepted`, `${topic}/rejected`], { qos: 1 });
  const answer = new Promise<['accepted' | 'rejected', Record<string, unknown>]>((resolve) => {
    const on = (t: string, payload: Buffer) => {
      if (t !== `${topic}/accepted` && t !== `${topic}/rejected`) return;
      c.off('message', on);
      resolve([t.endsWith('/accepted') ? 'accepted' : 'rejected', JSON.parse(payload.toString()) as Record<string, unknown>]);
    };
    c.on('message', on);
  });
  await c.publishAsync(topic, JSON.stringify(body), { qos: 1 });
  return answer;
}

function deviceKey(cn: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { csr: buildCsrPem({ subject: parseName(`CN=${cn}`), publicKey, privateKey }), keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

describe('fleet provisioning by claim', () => {
  it('template and claim credential from the CLI', async () => {
    const file = join(data, 'meter-template.json');
    writeFileSync(
      file,
      JSON.stringify({
        parameters: { SerialNumber: { type: 'string' } },
        thing: { name: 'meter-${parameters.SerialNumber}', attributes: { serial: '${parameters.SerialNumber}' }, override: 'fail' },
        policies: ['meter-policy'],
        deviceConfiguration: { topic: 'meters/meter-${parameters.SerialNumber}/reading' },
      }),
    );
    const t = await certfleet(['template', 'create', 'meter', '--file', file, '--data', data]);
    assert.equal(t.code, 0, t.stderr);
    const bad = await certfleet(['template', 'create', 'broken', '--file', join(data, 'meter-policy.json'), '--data', data]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /template: unknown field "statements"/);
    const list = await certfleet(['template', 'list', '--json', '--data', data]);
    assert.deepEqual((JSON.parse(list.stdout) as { items: { name: string }[] }).items.map((i) => i.name), ['meter']);

    claimDir = join(data, 'claim');
    const c = await certfleet(['claim', 'create', '--template', 'meter', '--out', claimDir, '--data', data]);
    assert.equal(c.code, 0, c.stderr);
    for (const f of ['cert.pem', 'key.pem', 'chain.pem', 'ca.pem', 'claim.json']) assert.ok(statSync(join(claimDir, f)).size > 0, f);
    assert.equal(statSync(join(claimDir, 'key.pem')).mode & 0o077, 0, 'key.pem is 0600');
    assert.equal((JSON.parse(readFileSync(join(claimDir, 'claim.json'), 'utf8')) as { template: string }).template, 'meter');
    assert.match(readFileSync(join(claimDir, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
  });

  it('create-from-csr, provision, then connect with the new certificate and publish', async () => {
    const claim = await mqttDevice('factory-line-1', readFileSync(join(claimDir, 'cert.pem'), 'utf8'), readFileSync(join(claimDir, 'key.pem'), 'utf8'));
    const key = deviceKey('SN-0001');
    const [outcome, created] = await ask(claim, CSR_TOPIC, { certificateSigningRequest: key.csr });
    assert.equal(outcome, 'accepted', JSON.stringify(created));
    assert.deepEqual(Object.keys(created).sort(), ['certificateId', 'certificateOwnershipToken', 'certificatePem']);
    const [o2, provisioned] = await ask(claim, provisionTopic('meter'), { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: '0001' } });
    assert.equal(o2, 'accepted', JSON.stringify(provisioned));
    assert.deepEqual(provisioned, { thingName: 'meter-0001', deviceConfiguration: { topic: 'meters/meter-0001/reading' } });

    // The spent token: rejected, with the contract's three fields.
    const [o3, reused] = await ask(claim, provisionTopic('meter'), { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: '0002' } });
    assert.equal(o3, 'rejected');
    assert.deepEqual([reused.statusCode, reused.errorCode], [403, 'InvalidToken']);
    assert.match(String(reused.errorMessage), /already used/);
    // Garbage is answered too, and the claim stays connected.
    const [o4, garbage] = await ask(claim, CSR_TOPIC, { certificateSigningRequest: 'not a csr' });
    assert.deepEqual([o4, garbage.statusCode], ['rejected', 400]);
    await claim.endAsync();

    const device = await mqttDevice('meter-0001', String(created.certificatePem), key.keyPem);
    await device.subscribeAsync('meters/meter-0001/#', { qos: 1 });
    const got = new Promise<string>((r) => device.once('message', (_t, p) => r(p.toString())));
    await device.publishAsync('meters/meter-0001/reading', '42', { qos: 1 });
    assert.equal(await got, '42');
    const thing = await certfleet(['thing', 'get', 'meter-0001', '--json', '--data', data]);
    assert.equal(thing.code, 0, thing.stderr);
    assert.deepEqual((JSON.parse(thing.stdout) as { attributes: unknown }).attributes, { serial: '0001' });
    await device.endAsync();
  });

  it('answers only the device that asked; a claim publishing elsewhere is disconnected', async () => {
    const cert = readFileSync(join(claimDir, 'cert.pem'), 'utf8');
    const key = readFileSync(join(claimDir, 'key.pem'), 'utf8');
    const a = await mqttDevice('factory-a', cert, key);
    const b = await mqttDevice('factory-b', cert, key);
    await b.subscribeAsync(`${CSR_TOPIC}/+`, { qos: 1 });
    const seenByB: string[] = [];
    b.on('message', (t) => seenByB.push(t));
    const [outcome] = await ask(a, CSR_TOPIC, { certificateSigningRequest: deviceKey('SN-A').csr });
    assert.equal(outcome, 'accepted');
    await sleep(300);
    assert.deepEqual(seenByB, []);

    const refused = await b.subscribeAsync('meters/#', { qos: 0 }).then((g) => g.map((x) => x.qos), (err: { packet?: { granted?: number[] } }) => err.packet?.granted);
    assert.deepEqual(refused, [128]);
    const closed = new Promise<void>((r) => b.once('close', () => r()));
    b.publish('meters/meter-0001/reading', 'spoofed', { qos: 1 });
    await closed;
    await sleep(300);
    assert.ok(a.connected, 'the other claim client stays connected');
    await a.endAsync();
  });

  it('the same flow over HTTPS with the claim as TLS client certificate', async () => {
    const tls = { ca: readFileSync(join(claimDir, 'ca.pem')), cert: readFileSync(join(claimDir, 'cert.pem')), key: readFileSync(join(claimDir, 'key.pem')) };
    const post = (path: string, body: unknown, withCert = true) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const payload = Buffer.from(JSON.stringify(body));
        const req = request(
          { host: 'localhost', port: server.ports.api, path, method: 'POST', ca: tls.ca, ...(withCert ? { cert: tls.cert, key: tls.key } : {}), headers: { 'content-type': 'application/json', 'content-length': payload.length } },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    const key = deviceKey('SN-HTTP');
    assert.equal((await post('/api/v1/provisioning/create-from-csr', { certificateSigningRequest: key.csr }, false)).status, 401);
    const created = await post('/api/v1/provisioning/create-from-csr', { certificateSigningRequest: key.csr });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const provisioned = await post('/api/v1/provisioning/templates/meter/provision', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: 'http' } });
    assert.equal(provisioned.status, 200, JSON.stringify(provisioned.body));
    assert.equal(provisioned.body.thingName, 'meter-http');
    const again = await post('/api/v1/provisioning/templates/meter/provision', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: 'http2' } });
    assert.deepEqual([again.status, again.body.code], [403, 'forbidden']);
  });

  it('certfleet-agent simulate --devices 50 provisions, connects and publishes them all', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(process.execPath, [AGENT, 'simulate', '--devices', '50', '--data', data], { timeout: 120_000 }, (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim().split('\n').at(-1), '50 provisioned, 50 connected, 0 failed');
    const things = await certfleet(['thing', 'list', '--json', '--data', data]);
    const names = (JSON.parse(things.stdout) as { items: { name: string }[] }).items.map((t) => t.name);
    assert.equal(names.filter((n) => n.startsWith('sim-')).length, 50);
  });
});
