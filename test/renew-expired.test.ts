/**
 * Renewal after expiry and campaign deadlines against a real `certfleet
 * serve`, with curl, openssl and MQTT.js as the devices' clients.
 *
 * Both need time to pass: a device certificate lives at least a day, a
 * campaign deadline is at least a day away. So the server is started a
 * second time with its clock three days ahead (helpers/shifted-clock.ts:
 * a preload module shifts `Date`, the server's only clock; the clients keep
 * the real time): the one-day certificates issued in the first run have
 * expired two days ago, and the one-day campaign deadline has passed.
 *
 * - POST /api/v1/renew-expired with the expired certificate as curl's client
 *   certificate: refused while renewal after expiry is off or the
 *   certificate is not expired; within the CA's window (certfleet ca update
 *   --renew-after-expiry 14d) a new certificate that openssl verifies, which
 *   connects and confirms over MQTT, retiring the expired one; refused for
 *   good (403, fallback claim) when revoked, expired too long ago, or off;
 *   400 for another subject; 401 without a certificate.
 * - a campaign with a one-day deadline: the device that renewed and
 *   confirmed is retired, the one that never came back fails with reason
 *   `deadline` and keeps its old certificate, no renew-required is left for
 *   it, and the campaign completes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { buildCsrPem, parseName } from '@certfleet/pki';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';
import { serveShifted } from './helpers/shifted-clock.js';
import { operatorApi, until } from './helpers/api.js';

const DAY = 86_400_000;
const SHIFT_MS = 3 * DAY;

let data: string;
let server: ServerProcess;
let ca: Buffer;
let caFile: string;
let token: string;
const api = operatorApi(() => ({ port: server.ports.api, ca, token }));
const clients: MqttClient[] = [];


function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })));
}


interface Identity {
  thing: string;
  id: string;
  dir: string;
  cert: string;
  key: string;
  chain: string;
}

function keyAndCsr(cn: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csr: buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey }) };
}

/** A thing with one certificate (the `device` policy attached), its files written for curl. */
async function device(thing: string, validityDays?: number): Promise<Identity> {
  assert.equal((await api('POST', '/api/v1/things', { name: thing })).status, 201);
  const { key, csr } = keyAndCsr(thing);
  const c = await api('POST', '/api/v1/certificates', { csr, thing, ...(validityDays ? { validityDays } : {}) });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const id = c.body.id as string;
  assert.equal((await api('POST', '/api/v1/policies/device/attach', { certificate: id })).status, 200);
  const dir = join(data, thing);
  const identity = { thing, id, dir, cert: c.body.certificatePem as string, key, chain: c.body.chainPem as string };
  writeIdentity(identity);
  return identity;
}

function writeIdentity(d: Identity): void {
  rmSync(d.dir, { recursive: true, force: true });
  mkdirSync(d.dir, { recursive: true });
  // The client certificate file carries the chain, as a device sends it.
  writeFileSync(join(d.dir, 'cert.pem'), d.cert + d.chain);
  writeFileSync(join(d.dir, 'key.pem'), d.key, { mode: 0o600 });
}

/** POST /api/v1/renew-expired with curl, `d`'s certificate as the TLS client certificate (none when d is undefined). */
async function renewExpired(d: Identity | undefined, csr: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const bodyFile = join(data, `renew-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(bodyFile, JSON.stringify({ csr }));
  const r = await run('curl', [
    '-sS',
    '--cacert', caFile,
    ...(d ? ['--cert', join(d.dir, 'cert.pem'), '--key', join(d.dir, 'key.pem')] : []),
    '-H', 'content-type: application/json',
    '--data-binary', `@${bodyFile}`,
    '-w', '\n%{http_code}',
    `https://localhost:${server.ports.api}/api/v1/renew-expired`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: JSON.parse(lines.join('\n')) as Record<string, unknown> };
}

async function mqttWith(d: Pick<Identity, 'thing' | 'cert' | 'key'>): Promise<MqttClient> {
  const c = await connectAsync(`mqtts://localhost:${server.ports.mqtt}`, { clientId: d.thing, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca, cert: d.cert, key: d.key });
  clients.push(c);
  await c.subscribeAsync(`$certfleet/things/${d.thing}/#`, { qos: 1 });
  return c;
}

/** Publishes a request and resolves with its answer (delivered to this connection alone). */
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

async function statusOf(id: string): Promise<string> {
  const r = await api('GET', `/api/v1/certificates/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.status as string;
}

let fresh: Identity;
let late: Identity;
let revoked: Identity;
let confirms: Identity;
let silent: Identity;
let issuer: string;
let campaignId: string;
let notExpired: { status: number; body: Record<string, unknown> };

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
  token = cli.token;
  caFile = cli.caFile;
  ca = readFileSync(caFile);
  const policy = join(data, 'device-policy.json');
  writeFileSync(policy, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] }));
  assert.equal((await certfleet(['policy', 'create', 'device', '--file', policy, '--data', data])).code, 0);

  [fresh, late, revoked] = [await device('exp-fresh', 1), await device('exp-late', 1), await device('exp-revoked', 1)];
  [confirms, silent] = [await device('dl-confirms'), await device('dl-silent')];
  assert.equal((await api('POST', `/api/v1/certificates/${revoked.id}/revoke`, { reason: 'keyCompromise' })).status, 200);
  issuer = (await api('GET', `/api/v1/certificates/${fresh.id}`)).body.issuerId as string;

  // Not expired yet: the device should renew over MQTT or EST instead.
  notExpired = await renewExpired(fresh, keyAndCsr(fresh.thing).csr);

  // A campaign over two devices with a one-day deadline: one renews and confirms now, one never comes back.
  const created = await certfleet(['campaign', 'create', '--cert', confirms.id, '--cert', silent.id, '--rate', '6000', '--grace', '0s', '--deadline', '1d', '--json', '--data', data]);
  assert.equal(created.code, 0, created.stderr);
  const campaign = JSON.parse(created.stdout) as { id: string; deadlineAt: string };
  campaignId = campaign.id;
  assert.ok(Math.abs(Date.parse(campaign.deadlineAt) - (Date.now() + DAY)) < 60_000, `deadline a day away: ${campaign.deadlineAt}`);
  const old = await mqttWith(confirms);
  const required = await new Promise<Record<string, unknown>>((resolve) =>
    old.on('message', (t, p) => t.endsWith('/certificate/renew-required') && p.length > 0 && resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
  );
  assert.equal(required.certificateId, confirms.id);
  const next = keyAndCsr(confirms.thing);
  const [outcome, renewed] = await ask(old, `$certfleet/things/${confirms.thing}/certificate/renew`, { certificateSigningRequest: next.csr, campaignId });
  assert.equal(outcome, 'accepted', JSON.stringify(renewed));
  old.end(true);
  const trial = await mqttWith({ thing: confirms.thing, cert: renewed.certificatePem as string, key: next.key });
  assert.equal((await ask(trial, `$certfleet/things/${confirms.thing}/certificate/confirm`, { certificateId: renewed.certificateId }))[0], 'accepted');
  trial.end(true);
  await until('the silent device notified', async () => {
    const items = await api('GET', `/api/v1/campaigns/${campaignId}/items?state=notified`);
    return (items.body.items as unknown[]).length === 1;
  });

  // Three days later.
  await server.stop();
  server = await serveShifted(data, SHIFT_MS);
});

after(async () => {
  for (const c of clients) c.end(true);
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('renewal after expiry (POST /api/v1/renew-expired)', () => {
  it('is off by default and refuses a certificate that has not expired', async () => {
    assert.equal(notExpired.status, 409, JSON.stringify(notExpired.body));
    assert.equal(notExpired.body.reason, 'NotExpired');
    assert.equal(notExpired.body.fallback, undefined);
    const off = await renewExpired(fresh, keyAndCsr(fresh.thing).csr);
    assert.equal(off.status, 403, JSON.stringify(off.body));
    assert.deepEqual([off.body.reason, off.body.fallback], ['RenewalAfterExpiryDisabled', 'claim']);
  });

  it('renews within the CA window: openssl verifies the new certificate, which confirms over MQTT and retires the expired one', async () => {
    const set = await certfleet(['ca', 'update', issuer, '--renew-after-expiry', '14d', '--json', '--data', data]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((JSON.parse(set.stdout) as { renewAfterExpiryDays: number }).renewAfterExpiryDays, 14);
    assert.equal((await api('GET', `/api/v1/cas/${issuer}`)).body.renewAfterExpiryDays, 14);

    const next = keyAndCsr(fresh.thing);
    const r = await renewExpired(fresh, next.csr);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const renewed: Identity = { ...fresh, id: r.body.certificateId as string, dir: join(data, 'exp-fresh-new'), cert: r.body.certificatePem as string, key: next.key, chain: r.body.chainPem as string };
    assert.notEqual(renewed.id, fresh.id);
    writeIdentity(renewed);
    writeFileSync(join(renewed.dir, 'only.pem'), renewed.cert);
    writeFileSync(join(renewed.dir, 'chain.pem'), renewed.chain);
    // Issued "now" on the server's clock, three days ahead of openssl's.
    const at = String(Math.floor((Date.now() + SHIFT_MS) / 1000));
    const verified = await run('openssl', ['verify', '-x509_strict', '-attime', at, '-CAfile', caFile, '-untrusted', join(renewed.dir, 'chain.pem'), join(renewed.dir, 'only.pem')]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.equal(await statusOf(fresh.id), 'active', 'the expired certificate stays until the new one is confirmed');

    const c = await mqttWith(renewed);
    const [outcome, body] = await ask(c, `$certfleet/things/${fresh.thing}/certificate/confirm`, { certificateId: renewed.id });
    assert.equal(outcome, 'accepted', JSON.stringify(body));
    assert.deepEqual(body.retiring, [fresh.id]);
    await until('the expired certificate deactivated', async () => (await statusOf(fresh.id)) !== 'active');
    c.end(true);

    const again = await renewExpired(fresh, keyAndCsr(fresh.thing).csr);
    assert.equal(again.status, 403, 'a certificate that was replaced cannot renew again');
    assert.deepEqual([again.body.reason, again.body.fallback], ['inactive-certificate', 'claim']);
  });

  it('refuses for good (403, fallback claim) a revoked certificate, one expired too long ago, or when turned off; 400 another subject; 401 no certificate', async () => {
    const gone = await renewExpired(revoked, keyAndCsr(revoked.thing).csr);
    assert.equal(gone.status, 403, JSON.stringify(gone.body));
    assert.deepEqual([gone.body.reason, gone.body.fallback], ['revoked-certificate', 'claim']);

    const other = await renewExpired(late, keyAndCsr('someone-else').csr);
    assert.equal(other.status, 400, JSON.stringify(other.body));
    assert.equal(other.body.reason, 'SubjectMismatch');
    assert.equal(other.body.fallback, undefined);

    assert.equal((await api('PATCH', `/api/v1/cas/${issuer}`, { renewAfterExpiryDays: 1 })).status, 200);
    const tooLate = await renewExpired(late, keyAndCsr(late.thing).csr);
    assert.equal(tooLate.status, 403, JSON.stringify(tooLate.body));
    assert.deepEqual([tooLate.body.reason, tooLate.body.fallback], ['ExpiredTooLongAgo', 'claim']);

    assert.equal((await api('PATCH', `/api/v1/cas/${issuer}`, { renewAfterExpiryDays: -1 })).status, 400);
    assert.equal((await api('PATCH', `/api/v1/cas/${issuer}`, { renewAfterExpiryDays: 0 })).status, 200);
    const off = await renewExpired(late, keyAndCsr(late.thing).csr);
    assert.deepEqual([off.status, off.body.reason, off.body.fallback], [403, 'RenewalAfterExpiryDisabled', 'claim']);

    const anonymous = await renewExpired(undefined, keyAndCsr(late.thing).csr);
    assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
    assert.equal(await statusOf(late.id), 'active', 'refusals change nothing');
  });
});

describe('a campaign deadline', () => {
  it('fails the items not confirmed by then (old certificate kept, no renew-required left) and completes the campaign', async () => {
    await until('the campaign completed', async () => (await api('GET', `/api/v1/campaigns/${campaignId}`)).body.status === 'completed');
    const items = (await api('GET', `/api/v1/campaigns/${campaignId}/items`)).body.items as Array<{ thingName: string; state: string; reason: string | null }>;
    const byThing = Object.fromEntries(items.map((i) => [i.thingName, [i.state, i.reason]]));
    assert.deepEqual(byThing, { 'dl-confirms': ['retired', null], 'dl-silent': ['failed', 'deadline'] });
    assert.equal(await statusOf(silent.id), 'active', 'given up on, the device keeps its certificate');

    // It comes back: nothing asks it to renew any more.
    const c = await mqttWith(silent);
    const seen: string[] = [];
    c.on('message', (t, p) => t.endsWith('/certificate/renew-required') && p.length > 0 && seen.push(p.toString()));
    await sleep(1500);
    assert.deepEqual(seen, []);
    const shown = await certfleet(['campaign', 'show', campaignId, '--json', '--data', data]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual((JSON.parse(shown.stdout) as { counts: Record<string, number> }).counts, { pending: 0, notified: 0, issued: 0, confirmed: 0, retired: 1, failed: 1 });
  });
});
