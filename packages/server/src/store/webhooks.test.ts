import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { NewWebhook, NewWebhookDelivery } from './webhook-records.js';
import { T0, at, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const webhook = (overrides: Partial<NewWebhook> = {}): NewWebhook => ({
  id: uniqueName('wh'),
  url: 'https://hooks.example/certfleet',
  events: ['certificate.registered'],
  secret: 's3cret-s3cret',
  createdAt: T0,
  ...overrides,
});

const delivery = (webhookId: string, overrides: Partial<NewWebhookDelivery> = {}): NewWebhookDelivery => ({
  id: randomUUID(),
  webhookId,
  event: JSON.stringify({ id: randomUUID(), type: 'certificate.registered', at: T0.toISOString(), data: { n: 1 } }),
  nextAttemptAt: T0,
  createdAt: T0,
  ...overrides,
});

await describeOnBothDialects('webhooks', ({ fresh }) => {
  it('creates, lists, gets and deletes webhooks; the audit entry commits with the change', async () => {
    const { store: s } = await fresh();
    const a = await s.createWebhook(webhook({ events: ['*'] }), { actor: 'token:t1', action: 'webhook.create', target: 'webhook:a' });
    const b = await s.createWebhook(webhook({ createdAt: at(1000) }));
    assert.deepEqual(await s.listWebhooks(), [a, b]);
    assert.deepEqual(await s.getWebhook(a.id), a);
    await rejectsWith(s.createWebhook(webhook({ id: a.id })), 'conflict');
    await s.enqueueDeliveries([delivery(a.id)]);
    await s.deleteWebhook(a.id, { actor: 'token:t1', action: 'webhook.delete', target: `webhook:${a.id}` });
    assert.equal(await s.getWebhook(a.id), undefined);
    assert.deepEqual(await s.listDeliveries(a.id, 10), [], 'its queue went with it');
    await rejectsWith(s.deleteWebhook(a.id), 'not-found');
    const actions = (await s.listAuditLog({ limit: 10, order: 'asc' })).items.map((e) => e.action);
    assert.deepEqual(actions, ['webhook.create', 'webhook.delete']);
  });

  it('claims due deliveries oldest first, once, and leases them', async () => {
    const { store: s } = await fresh();
    const w = await s.createWebhook(webhook());
    const early = delivery(w.id, { nextAttemptAt: at(0) });
    const late = delivery(w.id, { nextAttemptAt: at(2000) });
    const later = delivery(w.id, { nextAttemptAt: at(5000) });
    await s.enqueueDeliveries([later, early, late]);
    const first = await s.claimDueDeliveries(at(3000), 10, at(63_000));
    assert.deepEqual(first.map((d) => d.id), [early.id, late.id]);
    assert.equal(first[0]!.attempts, 1);
    assert.deepEqual(first[0]!.nextAttemptAt, at(63_000));
    assert.equal(first[0]!.url, w.url);
    assert.equal(first[0]!.secret, w.secret);
    assert.equal(first[0]!.event, early.event, 'the body is kept byte for byte');
    assert.deepEqual(await s.claimDueDeliveries(at(3000), 10, at(63_000)), [], 'leased rows are not due');
    assert.deepEqual((await s.claimDueDeliveries(at(6000), 1, at(66_000))).map((d) => d.id), [later.id]);
    // The lease ends: a worker that died mid-delivery loses nothing.
    const again = (await s.claimDueDeliveries(at(63_000), 10, at(123_000))).map((d) => [d.id, d.attempts]);
    assert.deepEqual(again.sort(), [[early.id, 2], [late.id, 2]].sort());
    await rejectsWith(s.claimDueDeliveries(at(0), 0, at(1)), 'bad-request');
  });

  it('two workers claiming at once never both win a row', async () => {
    const { store: s } = await fresh();
    const w = await s.createWebhook(webhook());
    const rows = Array.from({ length: 20 }, () => delivery(w.id));
    await s.enqueueDeliveries(rows);
    const [a, b] = await Promise.all([s.claimDueDeliveries(at(1), 20, at(60_000)), s.claimDueDeliveries(at(1), 20, at(60_000))]);
    const ids = [...a, ...b].map((d) => d.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(ids.length, 20);
  });

  it('records success, failure with a retry time, and giving up; prunes finished rows only', async () => {
    const { store: s } = await fresh();
    const w = await s.createWebhook(webhook());
    const [ok, retry, dead] = [delivery(w.id), delivery(w.id), delivery(w.id)];
    await s.enqueueDeliveries([ok, retry, dead]);
    await s.claimDueDeliveries(at(0), 10, at(60_000));
    await s.finishDelivery(ok.id, { delivered: true, at: at(100) });
    await s.finishDelivery(retry.id, { delivered: false, error: `HTTP 500${'x'.repeat(2000)}`, retryAt: at(1100) });
    await s.finishDelivery(dead.id, { delivered: false, error: 'timed out', retryAt: null });
    const byId = new Map((await s.listDeliveries(w.id, 10)).map((d) => [d.id, d]));
    assert.deepEqual([byId.get(ok.id)!.deliveredAt, byId.get(ok.id)!.nextAttemptAt], [at(100), null]);
    assert.deepEqual(byId.get(retry.id)!.nextAttemptAt, at(1100));
    assert.equal(byId.get(retry.id)!.lastError!.length, 512);
    assert.deepEqual([byId.get(dead.id)!.deliveredAt, byId.get(dead.id)!.nextAttemptAt, byId.get(dead.id)!.lastError], [null, null, 'timed out']);
    assert.deepEqual((await s.claimDueDeliveries(at(2000), 10, at(62_000))).map((d) => d.id), [retry.id]);
    await s.finishDelivery(retry.id, { delivered: false, error: 'HTTP 503', retryAt: at(9000) });
    assert.equal(await s.pruneDeliveries(at(1)), 2, 'delivered and given up');
    assert.deepEqual((await s.listDeliveries(w.id, 10)).map((d) => d.id), [retry.id], 'a pending row is never pruned');
  });

  it("enqueues the others when one row's webhook was deleted meanwhile", async () => {
    const { store: s } = await fresh();
    const kept = await s.createWebhook(webhook());
    const gone = await s.createWebhook(webhook());
    await s.deleteWebhook(gone.id);
    await s.enqueueDeliveries([delivery(kept.id), delivery(gone.id)]);
    assert.equal((await s.listDeliveries(kept.id, 10)).length, 1);
    await s.enqueueDeliveries([]);
  });
});
