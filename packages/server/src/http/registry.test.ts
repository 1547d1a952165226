import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { buildApi } from './api.js';

/** The whole registry API, run on each database. */
function registrySuite(open: () => Promise<TestNode>, cleanup: () => Promise<void>): void {
  let node: TestNode;
  let app: FastifyInstance;
  let admin: string;
  let adminId: string;

  before(async () => {
    node = await open();
    app = await buildApi(node.s);
    const t = await node.s.tokens.create('registry-test', ['admin']);
    admin = t.token;
    adminId = t.record.id;
  });
  after(async () => {
    await app?.close();
    await node?.close();
    await cleanup();
  });

  async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${admin}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: res.statusCode, body: res.body ? (res.json() as Record<string, unknown> & { code?: string }) : {} };
  }

  const allow = (...resources: string[]) => ({ statements: [{ effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources }] });

  describe('thing groups', () => {
    it('nest 7 levels; a thing sees its groups and their ancestors', async () => {
      for (let i = 1; i <= 7; i++) assert.equal((await call('POST', '/api/v1/thing-groups', { name: `g${i}`, ...(i > 1 ? { parent: `g${i - 1}` } : {}) })).status, 201);
      assert.equal((await call('POST', '/api/v1/things', { name: 'deep-thing' })).status, 201);
      assert.equal((await call('PUT', '/api/v1/thing-groups/g7/things/deep-thing')).status, 204);
      const t = await call('GET', '/api/v1/things/deep-thing');
      assert.deepEqual((t.body.groups as { name: string }[]).map((g) => g.name), ['g7', 'g6', 'g5', 'g4', 'g3', 'g2', 'g1']);
      const members = await call('GET', '/api/v1/thing-groups/g7/things');
      assert.deepEqual((members.body.items as { name: string }[]).map((m) => m.name), ['deep-thing']);
    });

    it('refuses a cycle, deleting a parent, and names with control characters', async () => {
      const cycle = await call('PATCH', '/api/v1/thing-groups/g1', { parent: 'g7' });
      assert.equal(cycle.status, 409);
      assert.equal(cycle.body.code, 'invalid-state');
      assert.equal((await call('DELETE', '/api/v1/thing-groups/g3')).status, 409);
      const bad = await call('POST', '/api/v1/thing-groups', { name: 'bad\u0001name' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'bad-request');
    });
  });

  describe('policies', () => {
    let certId: string;

    it('refuse documents that do not parse or use unknown actions, and change nothing', async () => {
      const before = await node.s.store.listAuditLog({ limit: 1000 });
      const cases: unknown[] = [
        { statements: [{ effect: 'allow', actions: ['read'], resources: ['a'] }] },
        { statements: [{ effect: 'maybe', actions: ['publish'], resources: ['a'] }] },
        { statements: [{ effect: 'allow', actions: ['publish'], resources: ['a/#/b'] }] },
        { statements: [] },
        { statements: [{ effect: 'allow', actions: ['publish'], resources: ['${thing.nope}'] }] },
        'not an object',
      ];
      for (const document of cases) {
        const r = await call('POST', '/api/v1/policies', { name: 'bad', document });
        assert.equal(r.status, 400, JSON.stringify(document));
        assert.equal(r.body.code, 'bad-request');
      }
      assert.equal((await call('GET', '/api/v1/policies/bad')).status, 404);
      assert.equal((await node.s.store.listAuditLog({ limit: 1000 })).items.length, before.items.length);
    });

    it('versions: at most 5, a default, the default cannot be deleted', async () => {
      assert.equal((await call('POST', '/api/v1/policies', { name: 'telemetry', document: allow('things/${thing.name}/#') })).status, 201);
      for (let v = 2; v <= 5; v++) assert.equal((await call('POST', '/api/v1/policies/telemetry/versions', { document: allow(`v${v}/#`), setDefault: v === 5 })).status, 201);
      const sixth = await call('POST', '/api/v1/policies/telemetry/versions', { document: allow('v6/#') });
      assert.equal(sixth.status, 409);
      assert.match(String(sixth.body.detail), /5/);
      assert.equal((await call('GET', '/api/v1/policies/telemetry')).body.defaultVersion, 5);
      assert.equal((await call('DELETE', '/api/v1/policies/telemetry/versions/5')).status, 409);
      assert.equal((await call('PUT', '/api/v1/policies/telemetry/default-version', { version: 1 })).status, 200);
      assert.equal((await call('DELETE', '/api/v1/policies/telemetry/versions/5')).status, 204);
    });

    it('attach to a certificate and a group; the certificate detail and the effective policies show them', async () => {
      const issued = await node.s.issuance.withGeneratedKey({ thing: 'deep-thing' });
      certId = issued.record.id;
      assert.equal((await call('POST', '/api/v1/policies', { name: 'fleet', document: allow('fleet/#') })).status, 201);
      assert.equal((await call('POST', '/api/v1/policies/telemetry/attach', { certificate: certId })).status, 200);
      assert.equal((await call('POST', '/api/v1/policies/fleet/attach', { group: 'g2' })).status, 200);
      const dup = await call('POST', '/api/v1/policies/fleet/attach', { group: 'g2' });
      assert.equal(dup.status, 409);
      const effective = await node.s.store.effectivePolicies(certId);
      assert.deepEqual(effective.map((p) => p.name).sort(), ['fleet', 'telemetry']);
      const detail = await call('GET', `/api/v1/certificates/${certId}`);
      assert.deepEqual(detail.body.policies, ['telemetry']);
      assert.equal(detail.body.thing, 'deep-thing');
      assert.equal(detail.body.fingerprintSha256, certId);
      assert.equal((await call('GET', '/api/v1/policies/fleet/attachments')).body.items instanceof Array, true);
      assert.equal((await call('DELETE', '/api/v1/policies/fleet')).status, 409, 'attached policies cannot be deleted');
    });

    it('attach names exactly one target that exists', async () => {
      assert.equal((await call('POST', '/api/v1/policies/fleet/attach', {})).status, 400);
      assert.equal((await call('POST', '/api/v1/policies/fleet/attach', { certificate: 'ab'.repeat(32) })).status, 404);
      assert.equal((await call('POST', '/api/v1/policies/fleet/attach', { group: 'nope' })).status, 404);
    });

    it('certificate status: deactivate, activate, never to pending by hand, revoked is final and takes no policy', async () => {
      assert.equal((await call('POST', `/api/v1/certificates/${certId}/status`, { status: 'inactive', reason: 'maintenance' })).status, 200);
      assert.equal((await call('POST', `/api/v1/certificates/${certId}/status`, { status: 'active' })).status, 200);
      assert.equal((await call('POST', `/api/v1/certificates/${certId}/status`, { status: 'pending-activation' })).status, 400);
      const detail = await call('GET', `/api/v1/certificates/${certId}`);
      assert.deepEqual((detail.body.history as { status: string }[]).map((h) => h.status), ['active', 'inactive', 'active']);
      await node.s.certificates.changeStatus({ id: 'test' }, certId, 'revoked', { revocationReason: 'keyCompromise' });
      assert.equal((await call('POST', `/api/v1/certificates/${certId}/status`, { status: 'active' })).status, 409);
      const attach = await call('POST', '/api/v1/policies/fleet/attach', { certificate: certId });
      assert.equal(attach.status, 409);
      assert.equal(attach.body.code, 'invalid-state');
    });

    it('a thing holding a certificate cannot be deleted', async () => {
      const r = await call('DELETE', '/api/v1/things/deep-thing');
      assert.equal(r.status, 409);
    });
  });

  describe('audit log', () => {
    it('records every change with the token as actor, and the chain verifies', async () => {
      const log = await call('GET', `/api/v1/audit-log?actor=token:${adminId}&limit=1000`);
      const actions = new Set((log.body.items as { action: string }[]).map((e) => e.action));
      for (const a of ['group.create', 'group.add-thing', 'thing.create', 'policy.create', 'policy.version.create', 'policy.version.set-default', 'policy.version.delete', 'policy.attach', 'certificate.deactivate', 'certificate.activate']) {
        assert.ok(actions.has(a), `${a} is audited`);
      }
      const caCreate = await call('GET', '/api/v1/audit-log?limit=1000');
      assert.ok((caCreate.body.items as { action: string }[]).some((e) => e.action === 'ca.create'), 'CA operations are audited');
      const v = await call('POST', '/api/v1/audit-log/verify');
      assert.equal(v.body.ok, true);
      assert.ok(Number(v.body.entries) > 10);
    });

    it('auditors read it; provisioners do not', async () => {
      const auditor = await node.token('auditor');
      const prov = await node.token('provisioner');
      const as = (t: string) => app.inject({ method: 'GET', url: '/api/v1/audit-log', headers: { authorization: `Bearer ${t}` } });
      assert.equal((await as(auditor)).statusCode, 200);
      assert.equal((await as(prov)).statusCode, 403);
    });
  });
}

const pgSchema = `certfleet_registry_${randomBytes(6).toString('hex')}`;
describe('registry API on SQLite', () => registrySuite(() => testNode(), async () => {}));
describe('registry API on PostgreSQL', { skip: (await postgresUnreachable()).skip ?? false }, () =>
  registrySuite(() => testNode({ database: PG_URL, schema: pgSchema }), () => dropTestSchema(pgSchema)),
);
