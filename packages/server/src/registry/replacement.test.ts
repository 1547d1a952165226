import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, OID, parseName, validateChain } from '@certfleet/pki';
import type { FastifyInstance } from 'fastify';
import type { CertfleetEvents } from '../events/bus.js';
import { buildApi } from '../http/api.js';
import { testNode, type TestNode } from '../testing/services.js';
import { SYSTEM } from './actor.js';
import type { ThingCertificateRequest } from './issuance.js';
import { DeviceReplacement } from './replacement.js';

let node: TestNode;
let app: FastifyInstance;
let operator: string;
const events: Array<[string, unknown]> = [];

before(async () => {
  node = await testNode();
  app = await buildApi(node.s);
  operator = await node.token('operator');
  node.s.bus.on('certificate.status-changed', (e) => void events.push(['certificate.status-changed', e]));
  node.s.bus.on('thing.changed', (e) => void events.push(['thing.changed', e]));
});
after(async () => {
  await app.close();
  await node.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function csr(cn = 'ignored'): { pem: string; publicKeyDer: Buffer } {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  return { pem: buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey }), publicKeyDer: publicKey.export({ format: 'der', type: 'spki' }) };
}

/** A thing in a group with an active certificate (policies p-telemetry, p-shadow) and an inactive one (p-telemetry). */
async function device(name: string) {
  const { s } = node;
  await s.things.createThing(SYSTEM, name);
  if (!(await s.store.getGroup('plant-a'))) await s.things.createGroup(SYSTEM, { name: 'plant-a' });
  await s.things.addThing(SYSTEM, 'plant-a', name);
  for (const p of ['p-telemetry', 'p-shadow']) if (!(await s.store.getPolicy(p))) await s.store.createPolicy(p, { statements: [] });
  const active = (await s.issuance.fromCsr({ csr: csr().pem, thing: name })).record;
  const inactive = (await s.issuance.fromCsr({ csr: csr().pem, thing: name })).record;
  await s.certificates.changeStatus(SYSTEM, inactive.id, 'inactive');
  await s.store.attachPolicy('p-telemetry', { type: 'certificate', id: active.id });
  await s.store.attachPolicy('p-shadow', { type: 'certificate', id: active.id });
  await s.store.attachPolicy('p-telemetry', { type: 'certificate', id: inactive.id });
  return { active, inactive };
}

async function auditOf(thing: string) {
  return (await node.s.store.listAuditLog({ limit: 100, target: `thing:${thing}` })).items.filter((e) => e.action === 'thing.replace-certificate');
}

interface Replaced {
  id: string;
  serial: string;
  certificatePem: string;
  chainPem: string;
  caPem: string;
  privateKeyPem?: string;
  certificate: { thing: string; status: string };
  revoked: string[];
  policies: string[];
}

describe('POST /api/v1/things/:name/replace-certificate', () => {
  it('signs the CSR for the thing, moves the policies, revokes every active and inactive certificate, audits once', async () => {
    const old = await device('pump-1');
    const key = csr('whatever');
    events.length = 0;
    const res = await app.inject({ method: 'POST', url: '/api/v1/things/pump-1/replace-certificate', headers: auth(operator), payload: { csr: key.pem } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<Replaced>();
    assert.deepEqual(body.revoked, [old.active.id, old.inactive.id]);
    assert.deepEqual(body.policies, ['p-shadow', 'p-telemetry']);
    assert.equal(body.privateKeyPem, undefined);
    assert.deepEqual([body.certificate.thing, body.certificate.status], ['pump-1', 'active']);

    const cert = Certificate.fromPem(body.certificatePem);
    assert.equal(cert.subject(), 'CN=pump-1');
    assert.ok(cert.spki.equals(key.publicKeyDer), 'the CSR key is certified');
    const chain = Certificate.allFromPem(body.chainPem);
    validateChain(cert, { intermediates: [chain[0]!], roots: [Certificate.fromPem(body.caPem)], at: new Date(), purpose: OID.clientAuth });

    for (const c of [old.active, old.inactive]) {
      const stored = await node.s.store.getCertificate(c.id);
      assert.deepEqual([stored?.status, stored?.revocationReason, stored?.thingName], ['revoked', 'superseded', 'pump-1']);
    }
    const detail = await node.s.certificates.detail(body.id);
    assert.deepEqual(detail.policies, ['p-shadow', 'p-telemetry']);
    assert.deepEqual((await node.s.things.getThing('pump-1')).groups.map((g) => g.name), ['plant-a'], 'the groups stay with the thing');
    assert.deepEqual(
      (await node.s.store.effectivePolicies(body.id)).map((p) => p.name),
      ['p-shadow', 'p-telemetry'],
    );

    const entries = await auditOf('pump-1');
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0]!.details, { thing: 'pump-1', new: body.id, serial: body.serial, revoked: [old.active.id, old.inactive.id], reason: 'superseded' });
    assert.equal((await node.s.store.listAuditLog({ limit: 10, target: `certificate:${body.id}` })).items.length, 0, 'no second entry for the issuance');

    assert.deepEqual(events, [
      ['certificate.status-changed', { certificateId: old.active.id, from: 'active', to: 'revoked' }],
      ['certificate.status-changed', { certificateId: old.inactive.id, from: 'inactive', to: 'revoked' }],
      ['thing.changed', { thingName: 'pump-1', certificateId: body.id }],
    ]);
  });

  it('with a server-generated key, returns the key once; replaces names one certificate, with a reason', async () => {
    const old = await device('pump-2');
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/things/pump-2/replace-certificate',
      headers: auth(operator),
      payload: { keyAlgorithm: 'ed25519', replaces: old.active.serial, reason: 'keyCompromise' },
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<Replaced>();
    assert.match(body.privateKeyPem ?? '', /BEGIN PRIVATE KEY/);
    const cert = Certificate.fromPem(body.certificatePem);
    assert.equal(cert.keyAlgorithm(), 'ed25519');
    assert.ok(
      createPublicKey(body.privateKeyPem!).export({ format: 'der', type: 'spki' }).equals(cert.spki),
      'the key returned is the certified one',
    );
    assert.deepEqual(body.revoked, [old.active.id]);
    assert.deepEqual(body.policies, ['p-shadow', 'p-telemetry']);
    assert.equal((await node.s.store.getCertificate(old.active.id))?.revocationReason, 'keyCompromise');
    assert.equal((await node.s.store.getCertificate(old.inactive.id))?.status, 'inactive', 'not named, not revoked');
  });

  it('answers bad input with a problem and changes nothing', async () => {
    const old = await device('pump-3');
    const bare = 'pump-3-bare';
    await node.s.things.createThing(SYSTEM, bare);
    const other = await device('pump-3-other');
    const auditor = await node.token('auditor');
    const provisioner = await node.token('provisioner');
    const good = csr().pem;
    const cases: Array<{ name: string; url?: string; body: unknown; token?: string; status: number; code: string }> = [
      { name: 'unknown thing', url: '/api/v1/things/ghost/replace-certificate', body: { csr: good }, status: 404, code: 'not-found' },
      { name: 'nothing to replace', url: `/api/v1/things/${bare}/replace-certificate`, body: { csr: good }, status: 409, code: 'invalid-state' },
      { name: 'malformed CSR', body: { csr: 'not a pem' }, status: 400, code: 'malformed-pem' },
      { name: 'unknown reason', body: { csr: good, reason: 'because' }, status: 400, code: 'bad-request' },
      { name: 'certificateHold', body: { csr: good, reason: 'certificateHold' }, status: 400, code: 'bad-request' },
      { name: 'CSR and key algorithm', body: { csr: good, keyAlgorithm: 'ec-p256' }, status: 400, code: 'bad-request' },
      { name: 'unknown key algorithm', body: { keyAlgorithm: 'dsa-1024' }, status: 400, code: 'bad-request' },
      { name: 'extra field', body: { csr: good, thing: 'pump-3' }, status: 400, code: 'bad-request' },
      { name: 'replaces a certificate of another thing', body: { csr: good, replaces: other.active.id }, status: 409, code: 'invalid-state' },
      { name: 'replaces an unknown certificate', body: { csr: good, replaces: 'ab'.repeat(32) }, status: 404, code: 'not-found' },
      { name: 'replaces garbage', body: { csr: good, replaces: 'xyz' }, status: 400, code: 'bad-request' },
      { name: 'auditor', body: { csr: good }, token: auditor, status: 403, code: 'forbidden' },
      { name: 'provisioner', body: { csr: good }, token: provisioner, status: 403, code: 'forbidden' },
    ];
    const before = await node.s.store.countCertificates();
    for (const c of cases) {
      const res = await app.inject({ method: 'POST', url: c.url ?? '/api/v1/things/pump-3/replace-certificate', headers: auth(c.token ?? operator), payload: c.body as object });
      assert.equal(res.statusCode, c.status, `${c.name}: ${res.body}`);
      assert.equal(res.json<{ code: string }>().code, c.code, c.name);
    }
    assert.equal(await node.s.store.countCertificates(), before);
    assert.equal((await node.s.store.getCertificate(old.active.id))?.status, 'active');
    assert.deepEqual(await auditOf('pump-3'), []);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json<{ paths: Record<string, unknown> }>();
    assert.ok(doc.paths['/api/v1/things/{name}/replace-certificate']);
  });
});

describe('DeviceReplacement', () => {
  /** The real issuance behind a spy; `during` runs between the decision and the commit. */
  function replacement(during?: () => Promise<void>) {
    const calls: ThingCertificateRequest[] = [];
    const r = new DeviceReplacement({
      issuance: {
        prepareForThing: async (req) => {
          calls.push(req);
          await during?.();
          return node.s.issuance.prepareForThing(req);
        },
      },
      things: node.s.store,
      certificates: node.s.store,
      replacements: node.s.store,
      bus: node.s.bus,
      now: node.s.now,
    });
    return { r, calls };
  }

  it('signs nothing when it refuses', async () => {
    const { r, calls } = replacement();
    await node.s.things.createThing(SYSTEM, 'valve-revoked');
    const c = (await node.s.issuance.fromCsr({ csr: csr().pem, thing: 'valve-revoked' })).record;
    await node.s.revoker.revoke(SYSTEM, c.id, 'keyCompromise');
    await node.s.things.createThing(SYSTEM, 'valve-pending');
    const pending = (await node.s.issuance.fromCsr({ csr: csr().pem, thing: 'valve-pending' })).record;
    await node.s.store.setCertificateStatus(pending.id, 'active', 'pending-transfer', { actor: 'system', at: new Date() });
    const refusals: Array<[string, unknown, object, string]> = [
      ['ghost', 'ghost', { csr: csr().pem }, 'not-found'],
      ['bad name', '', { csr: csr().pem }, 'bad-request'],
      ['all revoked', 'valve-revoked', { csr: csr().pem }, 'invalid-state'],
      ['replaces a revoked one', 'valve-revoked', { csr: csr().pem, replaces: c.id }, 'invalid-state'],
      ['only pending', 'valve-pending', { csr: csr().pem }, 'invalid-state'],
      ['bad reason', 'valve-pending', { csr: csr().pem, reason: 'removeFromCRL' }, 'bad-request'],
    ];
    for (const [name, thing, req, code] of refusals) {
      await assert.rejects(r.replace(SYSTEM, thing, req), { code }, name);
    }
    assert.equal(calls.length, 0);
    // A pending certificate is replaced when named.
    const done = await r.replace(SYSTEM, 'valve-pending', { csr: csr().pem, replaces: pending.id });
    assert.deepEqual(done.revoked.map((x) => [x.id, x.status]), [[pending.id, 'revoked']]);
  });

  it('a status changed while signing fails the whole replacement: the new certificate is never stored', async () => {
    const old = await device('valve-race');
    const { r } = replacement(async () => {
      await node.s.certificates.changeStatus(SYSTEM, old.inactive.id, 'active');
    });
    let signed: CertfleetEvents['thing.changed'] | undefined;
    const off = node.s.bus.on('thing.changed', (e) => {
      if (e.thingName === 'valve-race') signed = e;
    });
    await assert.rejects(r.replace(SYSTEM, 'valve-race', { csr: csr().pem }), { code: 'invalid-state' });
    off();
    assert.equal(signed, undefined, 'no event for a replacement that did not happen');
    assert.equal(await node.s.store.countCertificates({ thing: 'valve-race' }), 2);
    assert.equal((await node.s.store.getCertificate(old.active.id))?.status, 'active');
    assert.deepEqual(await auditOf('valve-race'), []);
  });
});
