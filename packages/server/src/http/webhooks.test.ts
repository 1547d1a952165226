import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testNode, type TestNode } from '../testing/services.js';
import { buildApi } from './api.js';

/* /api/v1/webhooks in process (inject): admin only, validated, the secret shown once, audited. */

describe('webhooks API', () => {
  let node: TestNode;
  let app: FastifyInstance;
  let admin: string;
  let operator: string;
  before(async () => {
    node = await testNode();
    app = await buildApi(node.s);
    admin = await node.token('admin');
    operator = await node.token('operator');
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, token = admin) => {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.body ? (res.json() as Record<string, unknown>) : {} };
  };

  it('creates (secret shown once), lists without secrets, gets, lists deliveries, deletes', async () => {
    const created = await call('POST', '/api/v1/webhooks', { url: 'https://hooks.example/cf', events: ['certificate.registered', 'thing.connected'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    assert.match(created.body.secret as string, /^[A-Za-z0-9_-]{43}$/, 'a random secret when none is given');
    assert.deepEqual(created.body.events, ['certificate.registered', 'thing.connected']);
    const withSecret = await call('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: ['*'], secret: 'my-own-secret' });
    assert.equal(withSecret.body.secret, 'my-own-secret');

    const list = await call('GET', '/api/v1/webhooks');
    const items = list.body.items as Array<Record<string, unknown>>;
    assert.deepEqual(items.map((w) => w.id), [id, withSecret.body.id]);
    assert.ok(items.every((w) => !('secret' in w)), 'never listed');
    assert.equal((await call('GET', `/api/v1/webhooks/${id}`)).body.url, 'https://hooks.example/cf');

    node.s.bus.emit('thing.connected', { thingName: 't', certificateId: 'ab'.repeat(32), clientId: 't', remote: '192.0.2.1:1' });
    await node.s.webhooks.idle();
    const deliveries = (await call('GET', `/api/v1/webhooks/${id}/deliveries`)).body.items as Array<Record<string, unknown>>;
    assert.deepEqual(deliveries.map((d) => [d.type, d.attempts, d.deliveredAt]), [['thing.connected', 0, null]]);

    assert.equal((await call('DELETE', `/api/v1/webhooks/${id}`)).status, 204);
    assert.equal((await call('DELETE', `/api/v1/webhooks/${id}`)).status, 404);
    const audit = await node.s.store.listAuditLog({ limit: 10, target: `webhook:${id}` });
    assert.deepEqual(audit.items.map((e) => e.action).sort(), ['webhook.create', 'webhook.delete']);
    assert.ok(audit.items.every((e) => !JSON.stringify(e.details).includes(created.body.secret as string)), 'the secret is not in the audit log');
  });

  it('refuses bad input with 400 and other scopes with 403', async () => {
    const bad: object[] = [
      { url: 'ftp://example.com', events: ['*'] },
      { url: 'https://example.com', events: ['no.such.event'] },
      { url: 'https://example.com', events: [] },
      { url: 'https://example.com', events: ['*', 'thing.connected'] },
      { url: 'https://example.com', events: ['*'], secret: 'short' },
      { url: 'https://example.com', events: ['*'], extra: 1 },
    ];
    for (const payload of bad) {
      const r = await call('POST', '/api/v1/webhooks', payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.equal(r.body.code, 'bad-request');
    }
    assert.equal((await call('POST', '/api/v1/webhooks', { url: 'https://example.com', events: ['*'] }, operator)).status, 403);
    assert.equal((await call('GET', '/api/v1/webhooks', undefined, operator)).status, 403);
  });
});
