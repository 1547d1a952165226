import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Certificate, sha256Hex } from '@certfleet/pki';
import type { FastifyInstance } from 'fastify';
import { CertfleetError } from '../errors.js';
import { buildApi } from '../http/api.js';
import { caFixture, dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { DefaultIssuerInUse } from './issuer-rotation.js';

const admin = { id: 'test' };
const DAY = 86_400_000;
const code = (c: string) => (err: unknown) => err instanceof CertfleetError && err.code === c;

const pgSchema = `certfleet_default_issuer_${randomBytes(6).toString('hex')}`;
const dialects = [
  { name: 'SQLite', open: () => testNode(), skip: undefined as string | undefined, cleanup: async () => {} },
  { name: 'PostgreSQL', open: () => testNode({ database: PG_URL, schema: pgSchema }), skip: (await postgresUnreachable()).skip, cleanup: () => dropTestSchema(pgSchema) },
];

for (const d of dialects) {
  describe(`default issuer on ${d.name}`, { skip: d.skip ?? false }, () => {
    let node: TestNode;
    let app: FastifyInstance;
    before(async () => {
      node = await d.open();
      app = await buildApi(node.s);
    });
    after(async () => {
      await app?.close();
      await node?.close();
      await d.cleanup();
    });

    it('refuses a root, an external CA, an inactive or expired one, and one under an inactive root', async () => {
      const r = node.s.issuerRotation;
      await assert.rejects(r.setDefaultIssuer(admin, node.rootId), code('bad-request'));
      const external = caFixture({ kind: 'external', parentId: null });
      const expired = caFixture({ kind: 'intermediate', parentId: node.rootId, notBefore: new Date(Date.now() - 20 * DAY), notAfter: new Date(Date.now() - DAY) });
      const offRoot = await node.s.authorities.createRoot({ name: 'off-root' }, admin);
      const underOff = await node.s.authorities.createIntermediate({ name: 'under-off', parentId: offRoot.id }, admin);
      await node.s.authorities.setStatus(admin, offRoot.id, 'inactive');
      const off = await node.s.authorities.createIntermediate({ name: 'off', parentId: node.rootId }, admin);
      await node.s.authorities.setStatus(admin, off.id, 'inactive');
      for (const c of [external, expired]) await node.s.store.insertCa(c);
      await assert.rejects(r.setDefaultIssuer(admin, external.id), code('bad-request'));
      for (const [id, why] of [[expired.id, /expired/], [off.id, /is inactive/], [underOff.id, /off-root above under-off is inactive/]] as const) {
        await assert.rejects(r.setDefaultIssuer(admin, id), (err) => code('invalid-state')(err) && why.test((err as Error).message));
      }
      await assert.rejects(r.setDefaultIssuer(admin, 'no-such-ca'), code('not-found'));
      assert.equal((await r.defaultIssuer()).id, node.issuingId, 'nothing changed');
    });

    it('issuance and EST cacerts follow the new default issuer; retiring it (or its root) is refused until another is set', async () => {
      const r = node.s.issuerRotation;
      const root2 = await node.s.authorities.createRoot({ name: 'root-b' }, admin);
      const issuing2 = await node.s.authorities.createIntermediate({ name: 'issuing-b', parentId: root2.id }, admin);
      const set = await r.setDefaultIssuer(admin, 'issuing-b');
      assert.deepEqual([set.ca.id, set.previous], [issuing2.id, node.issuingId]);

      const leaf = await node.s.issuance.withGeneratedKey({ commonName: 'after-switch' });
      assert.equal(leaf.record.issuerId, issuing2.id);
      assert.equal(Certificate.fromPem(leaf.certificatePem).issuer(), Certificate.fromDer(issuing2.certificateDer).subject());
      assert.equal(leaf.rootPem, Certificate.fromDer(root2.certificateDer).toPem());
      // RFC 7030 §4.1.3: base64 of a certs-only PKCS#7, the issuer first.
      const cacerts = await app.inject({ method: 'GET', url: '/.well-known/est/cacerts' });
      assert.equal(cacerts.statusCode, 200);
      assert.ok(Buffer.from(cacerts.body, 'base64').includes(issuing2.certificateDer), 'EST cacerts carries the new issuer');

      const log = (await node.s.store.listAuditLog({ limit: 5, target: `ca:${issuing2.id}` })).items;
      assert.deepEqual(log[0]?.details, { from: node.issuingId, to: issuing2.id });

      await assert.rejects(r.retire(admin, 'issuing-b', true), (err) => err instanceof DefaultIssuerInUse && /is the default issuer/.test(err.message));
      await assert.rejects(r.retire(admin, 'root-b', true), (err) => err instanceof DefaultIssuerInUse && /above the default issuer issuing-b/.test(err.message));

      await r.setDefaultIssuer(admin, node.issuingId);
      await node.s.revoker.revoke(admin, leaf.record.id, 'superseded');
      assert.equal((await r.retire(admin, 'issuing-b')).ca.status, 'inactive');
      await assert.rejects(r.setDefaultIssuer(admin, 'issuing-b'), code('invalid-state'));
    });

    it("the node's TLS certificate moves to the default issuer only when clients pinning the old root still verify it", async () => {
      const r = node.s.issuerRotation;
      const oldRoot = (await node.s.authorities.issuer(node.rootId)).cert;
      const serverCert = async () => Certificate.fromPem((await node.s.issuance.withGeneratedKey({ profile: 'server', commonName: 'localhost', sans: [{ type: 'dns', value: 'localhost' }] })).certificatePem);
      const served = await serverCert();
      const root = await node.s.authorities.createRoot({ name: 'root-d' }, admin);
      const d = await node.s.authorities.createIntermediate({ name: 'issuing-d', parentId: root.id }, admin);
      await r.setDefaultIssuer(admin, d.id);
      assert.equal(await r.serverCertificateMoves(served, oldRoot), false, 'not cross-signed: ca.pem would no longer verify it');
      await r.crossSign(admin, root.id, node.rootId);
      assert.equal(await r.serverCertificateMoves(served, oldRoot), true);
      assert.equal(await r.serverCertificateMoves(await serverCert(), oldRoot), false, 'already from the default issuer');
      await r.serverCertificateReplaced(node.s.revoker, served);
      assert.deepEqual([(await node.s.store.getCertificate(sha256Hex(served.der)))?.status, (await node.s.store.getCertificate(sha256Hex(served.der)))?.revocationReason], ['revoked', 'superseded']);
      await r.setDefaultIssuer(admin, node.issuingId);
    });

    it('PUT /api/v1/cas/default-issuer: admin only, validated, 400 for a root and 409 when retiring the default issuer', async () => {
      const admin = await node.token('admin');
      const operator = await node.token('operator');
      const call = (method: 'GET' | 'PUT' | 'POST', url: string, token: string, payload?: object) =>
        app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
      const c = await node.s.authorities.createIntermediate({ name: 'issuing-c', parentId: node.rootId }, { id: 'test' });
      assert.equal((await call('PUT', '/api/v1/cas/default-issuer', operator, { caId: c.id })).statusCode, 403);
      assert.equal((await app.inject({ method: 'PUT', url: '/api/v1/cas/default-issuer', payload: { caId: c.id } })).statusCode, 401);
      assert.equal((await call('PUT', '/api/v1/cas/default-issuer', admin, { ca: c.id })).statusCode, 400);
      const root = await call('PUT', '/api/v1/cas/default-issuer', admin, { caId: node.rootId });
      assert.equal(root.statusCode, 400);
      assert.match(root.json<{ detail: string }>().detail, /is a root/);
      const ok = await call('PUT', '/api/v1/cas/default-issuer', admin, { caId: 'issuing-c' });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual([ok.json<{ ca: { id: string } }>().ca.id, ok.json<{ previous: string }>().previous], [c.id, node.issuingId]);
      const get = await call('GET', '/api/v1/cas/default-issuer', operator);
      assert.equal(get.json<{ ca: { id: string } }>().ca.id, c.id);
      const refused = await call('POST', `/api/v1/cas/${c.id}/retire`, admin, { force: true });
      assert.equal(refused.statusCode, 409);
      assert.match(refused.json<{ detail: string }>().detail, /is the default issuer/);
      assert.equal((await call('PUT', '/api/v1/cas/default-issuer', admin, { caId: node.issuingId })).statusCode, 200);
    });
  });
}
