import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { PROFILES, type KeyAlgorithm } from '@certfleet/pki';
import { makeChild, makeRoot, type TestCa } from '../../../pki/src/testing/hierarchy.js';
import { CertfleetError, type ErrorCode } from '../errors.js';
import { buildApi } from '../http/api.js';
import { testNode, type TestNode } from '../testing/services.js';
import { tokenActor } from './actor.js';

const HOUR = 3_600_000;
let clock = new Date();
let node: TestNode;
let app: FastifyInstance;
let token: string;
const alice = tokenActor('alice');
const bob = tokenActor('bob');

before(async () => {
  node = await testNode({ now: () => clock });
  app = await buildApi(node.s);
  token = await node.token('admin');
});
after(async () => {
  await app.close();
  await node.close();
});

async function rejects(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CertfleetError || (err instanceof Error && 'code' in err), String(err));
    assert.equal((err as { code: string }).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return true;
  });
}

/** A verification certificate: subject CN = `code`, signed by `signer` (the CA itself, or not). */
const verification = (signer: TestCa, code: string) => makeChild(signer, PROFILES.device, { name: `CN=${code}`, now: clock }).cert.toPem();

async function code(actor = alice): Promise<string> {
  return (await node.s.registrationCodes.issue(actor)).registrationCode;
}

let n = 0;
const outsideRoot = (alg: KeyAlgorithm = 'ec-p256') => makeRoot(alg, `CN=Outside Factory CA ${++n}`, new Date(clock.getTime() - HOUR));

describe('proof of possession of an outside CA key', () => {
  for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`registers a ${alg} root whose key signed a verification certificate with a fresh code; the code is then spent`, async () => {
      const ca = outsideRoot(alg);
      const c = await code();
      const r = await node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, c) });
      assert.deepEqual([r.record.kind, r.record.parentId, r.record.status, r.mode, r.record.keyAlgorithm], ['external', null, 'active', 'default', alg]);
      assert.equal((await node.s.store.getCa(r.record.id))?.kind, 'external');
      assert.equal(await node.s.externalCas.modeOf(r.record.id), 'default');
      // Spent: the same proof cannot register another CA (nor this one again).
      const other = outsideRoot(alg);
      await rejects(node.s.externalCas.register(alice, { caCertificate: other.cert.toPem(), verificationCertificate: verification(other, c) }), 'forbidden');
    });
  }

  it('refuses a CN that is not a code certfleet handed out, in its format or not', async () => {
    const ca = outsideRoot();
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, 'f'.repeat(32)) }), 'forbidden');
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, 'hello') }), 'forbidden');
  });

  it('refuses an expired code, and a code another token asked for', async () => {
    const ca = outsideRoot();
    const c = await code();
    await rejects(node.s.externalCas.register(bob, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, c) }), 'forbidden');
    const start = clock;
    clock = new Date(start.getTime() + HOUR + 1);
    try {
      await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, c) }), 'forbidden');
    } finally {
      clock = start;
    }
    // Still valid one millisecond before expiry.
    clock = new Date(start.getTime() + HOUR - 1);
    try {
      const r = await node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, c) });
      assert.equal(r.record.kind, 'external');
    } finally {
      clock = start;
    }
  });

  it('refuses a verification certificate signed by another key, even under the same CA name', async () => {
    const ca = outsideRoot();
    const impostor = makeRoot('ec-p256', ca.cert.subject(), new Date(clock.getTime() - HOUR));
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(impostor, await code()) }), 'bad-signature', /not signed by the key/);
    const stranger = outsideRoot();
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(stranger, await code()) }), 'bad-signature', /issuer/);
  });

  it('refuses a certificate that is not a CA, an expired CA, and a default registration without proof', async () => {
    const ca = outsideRoot();
    const leaf = makeChild(ca, PROFILES.device, { name: 'CN=not-a-ca', now: clock });
    // Checked before any proof, in both modes.
    await rejects(node.s.externalCas.register(alice, { caCertificate: leaf.cert.toPem(), verificationCertificate: verification(ca, await code()) }), 'chain-invalid', /not a CA/);
    await rejects(node.s.externalCas.register(alice, { caCertificate: leaf.cert.toPem(), mode: 'sni-only' }), 'chain-invalid', /not a CA/);
    const old = makeRoot('ec-p256', 'CN=Old Factory CA', new Date(clock.getTime() - 30 * 366 * 86_400_000));
    await rejects(node.s.externalCas.register(alice, { caCertificate: old.cert.toPem(), mode: 'sni-only' }), 'chain-invalid', /expired/);
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem() }), 'bad-request', /verificationCertificate is required/);
    await rejects(node.s.externalCas.register(alice, { caCertificate: 'not pem' }), 'malformed-pem');
  });

  it('registers sni-only without proof; the same certificate twice is a conflict', async () => {
    const ca = outsideRoot();
    const r = await node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), mode: 'sni-only' });
    assert.equal(r.mode, 'sni-only');
    await rejects(node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, await code()) }), 'conflict');
    // certfleet's own root is already registered too.
    const own = await node.s.store.getCa(node.rootId);
    await rejects(node.s.externalCas.register(alice, { caCertificate: own!.certificateDer.toString('base64').replace(/^/, '-----BEGIN CERTIFICATE-----\n').concat('\n-----END CERTIFICATE-----\n'), mode: 'sni-only' }), 'conflict');
  });

  it('places an intermediate under its registered issuer and refuses one whose issuer is not registered', async () => {
    const root = outsideRoot();
    const reg = await node.s.externalCas.register(alice, { caCertificate: root.cert.toPem(), mode: 'sni-only' });
    const mid = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Outside Line 3', now: clock });
    const r = await node.s.externalCas.register(alice, { caCertificate: mid.cert.toPem(), verificationCertificate: verification(mid, await code()) });
    assert.equal(r.record.parentId, reg.record.id);
    const orphan = makeChild(outsideRoot(), PROFILES['intermediate-ca'], { name: 'CN=Orphan Line', now: clock });
    await rejects(node.s.externalCas.register(alice, { caCertificate: orphan.cert.toPem(), mode: 'sni-only' }), 'chain-invalid', /neither self-signed nor issued by a registered CA/);
  });

  it('never signs for an outside CA: issuance, intermediates and CRLs refuse clearly', async () => {
    const ca = outsideRoot();
    const r = await node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), mode: 'sni-only', name: 'no-key-here' });
    await rejects(node.s.issuance.withGeneratedKey({ issuer: r.record.id, actor: alice, sans: [] } as never), 'invalid-state', /registered from outside/);
    await rejects(node.s.authorities.createIntermediate({ name: 'under-outside', parentId: r.record.id }), 'invalid-state', /registered from outside/);
    await rejects(node.s.crls.crl(r.record.id), 'not-found', /publishes no CRL/);
  });
});

describe('registering device certificates made elsewhere', () => {
  let ca: TestCa;
  let caId: string;
  before(async () => {
    ca = outsideRoot();
    caId = (await node.s.externalCas.register(alice, { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, await code()) })).record.id;
  });

  it('registers a certificate under its registered CA, active by default, once', async () => {
    const leaf = makeChild(ca, PROFILES.device, { name: 'CN=pump-1', now: clock }).cert;
    const rec = await node.s.certificateRegistration.register(alice, { certificatePem: leaf.toPem() });
    assert.deepEqual([rec.id, rec.issuerId, rec.status, rec.profile], [leaf.fingerprint(), caId, 'active', 'registered']);
    await rejects(node.s.certificateRegistration.register(alice, { certificatePem: leaf.toPem() }), 'conflict', /already registered/);
    const pending = makeChild(ca, PROFILES.device, { name: 'CN=pump-2', now: clock }).cert;
    assert.equal((await node.s.certificateRegistration.register(alice, { certificatePem: pending.toPem(), caCertificatePem: ca.cert.toPem(), status: 'pending-activation' })).status, 'pending-activation');
  });

  it('refuses a certificate whose CA is not registered, or not the CA named', async () => {
    const stranger = outsideRoot();
    const leaf = makeChild(stranger, PROFILES.device, { name: 'CN=pump-9', now: clock }).cert;
    await rejects(node.s.certificateRegistration.register(alice, { certificatePem: leaf.toPem() }), 'chain-invalid', /no registered CA signed/);
    await rejects(node.s.certificateRegistration.register(alice, { certificatePem: leaf.toPem(), caCertificatePem: stranger.cert.toPem() }), 'chain-invalid', /not registered/);
    const mine = makeChild(ca, PROFILES.device, { name: 'CN=pump-10', now: clock }).cert;
    await rejects(node.s.certificateRegistration.register(alice, { certificatePem: mine.toPem(), caCertificatePem: stranger.cert.toPem() }), 'chain-invalid');
  });

  it('refuses an expired certificate and a serial already used in certfleet', async () => {
    const expired = makeChild(ca, PROFILES.device, { name: 'CN=pump-old', now: new Date(clock.getTime() - 400 * 86_400_000), validityDays: 30 }).cert;
    await rejects(node.s.certificateRegistration.register(alice, { certificatePem: expired.toPem() }), 'chain-invalid', /expired/);
    const issued = (await node.s.store.listCertificates({ limit: 1 })).items[0];
    assert.ok(issued);
    const twin = (await node.s.store.getCertificateBySerial(issued.serial))!;
    // A different certificate (another CA) with the same serial is refused, not stored beside it.
    await assert.rejects(
      node.s.store.insertCertificate({ ...twin, id: 'f'.repeat(64), issuerId: caId }),
      (err: unknown) => err instanceof CertfleetError && err.code === 'conflict',
    );
  });
});

describe('HTTP: registration code, CA and certificate registration', () => {
  const auth = () => ({ authorization: `Bearer ${token}` });

  it('hands out a code, registers with it, answers stable problem codes', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/cas/registration-code', headers: auth() });
    assert.equal(res.statusCode, 200, res.body);
    const { registrationCode, expiresAt } = res.json() as { registrationCode: string; expiresAt: string };
    assert.match(registrationCode, /^[0-9a-f]{32}$/);
    assert.equal(new Date(expiresAt).getTime(), clock.getTime() + HOUR);

    const ca = outsideRoot('rsa-2048');
    const body = { caCertificate: ca.cert.toPem(), verificationCertificate: verification(ca, registrationCode), autoRegistration: true, provisioningTemplate: '{"thingName":"${cert.subject.cn}"}' };
    const created = await app.inject({ method: 'POST', url: '/api/v1/cas/register', headers: auth(), payload: body });
    assert.equal(created.statusCode, 201, created.body);
    const view = created.json() as { id: string; kind: string; registrationMode: string; autoRegistration: boolean; certificatePem: string };
    assert.deepEqual([view.kind, view.registrationMode, view.autoRegistration], ['external', 'default', true]);
    const got = await app.inject({ method: 'GET', url: `/api/v1/cas/${view.id}`, headers: auth() });
    assert.equal((got.json() as { registrationMode: string }).registrationMode, 'default');

    const again = await app.inject({ method: 'POST', url: '/api/v1/cas/register', headers: auth(), payload: body });
    assert.deepEqual([again.statusCode, (again.json() as { code: string }).code], [403, 'forbidden']);
    const noProof = await app.inject({ method: 'POST', url: '/api/v1/cas/register', headers: auth(), payload: { caCertificate: ca.cert.toPem() } });
    assert.deepEqual([noProof.statusCode, (noProof.json() as { code: string }).code], [400, 'bad-request']);
    const garbage = await app.inject({ method: 'POST', url: '/api/v1/cas/register', headers: auth(), payload: { caCertificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', mode: 'sni-only' } });
    assert.equal(garbage.statusCode, 400, garbage.body);
    const badTemplate = await app.inject({ method: 'POST', url: '/api/v1/cas/register', headers: auth(), payload: { ...body, provisioningTemplate: '{"nope":1}' } });
    assert.equal(badTemplate.statusCode, 400, badTemplate.body);

    const leaf = makeChild(ca, PROFILES.device, { name: 'CN=valve-1', now: clock }).cert;
    const reg = await app.inject({ method: 'POST', url: '/api/v1/certificates/register', headers: auth(), payload: { certificatePem: leaf.toPem(), status: 'inactive' } });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.deepEqual([(reg.json() as { status: string }).status, (reg.json() as { issuerId: string }).issuerId], ['inactive', view.id]);
    const dup = await app.inject({ method: 'POST', url: '/api/v1/certificates/register', headers: auth(), payload: { certificatePem: leaf.toPem() } });
    assert.equal(dup.statusCode, 409);
  });

  it('needs a token with the scope', async () => {
    const auditor = await node.token('auditor');
    const res = await app.inject({ method: 'GET', url: '/api/v1/cas/registration-code', headers: { authorization: `Bearer ${auditor}` } });
    assert.equal(res.statusCode, 403);
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/cas/register', payload: {} })).statusCode, 401);
  });
});
