import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertfleetError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';
import { EventBus } from './bus.js';
import type { EventEnvelope } from './envelope.js';
import { retryDelayMs, signature, WebhookWorker, type Send } from './webhook-worker.js';
import { checkEventNames, checkWebhookUrl, Webhooks } from './webhooks.js';

const ADMIN = { id: 'token:test' };

describe('webhook rules', () => {
  const delays: Array<[number, number]> = [[1, 1000], [2, 2000], [3, 4000], [12, 2_048_000], [13, 3_600_000], [24, 3_600_000]];
  for (const [failed, ms] of delays) {
    it(`waits ${ms} ms after ${failed} failed attempt(s)`, () => {
      assert.equal(retryDelayMs(failed, () => 0), ms);
      const jittered = retryDelayMs(failed, () => 0.999);
      assert.ok(jittered >= ms && jittered <= Math.min(ms * 1.1, 3_600_000), String(jittered));
    });
  }

  it('signs the exact body with HMAC-SHA256', () => {
    assert.equal(signature('k', '{"a":1}'), `sha256=${createHmac('sha256', 'k').update('{"a":1}').digest('hex')}`);
  });

  const badUrls = ['ftp://example.com/x', 'not a url', '', 'file:///etc/passwd', `https://x/${'a'.repeat(2048)}`, 42];
  for (const url of badUrls) {
    it(`refuses the url ${JSON.stringify(url).slice(0, 40)}`, () => {
      assert.throws(() => checkWebhookUrl(url), (e: unknown) => e instanceof CertfleetError && e.code === 'bad-request');
    });
  }

  const badEvents: unknown[] = [[], ['nope'], ['*', 'thing.connected'], 'thing.connected', [1]];
  for (const events of badEvents) {
    it(`refuses the events ${JSON.stringify(events)}`, () => {
      assert.throws(() => checkEventNames(events), (e: unknown) => e instanceof CertfleetError && e.code === 'bad-request');
    });
  }
});

interface Received { headers: IncomingHttpHeaders; body: string; at: number }

/** A receiver on an ephemeral port that answers with the statuses queued, then 200. */
class Receiver {
  readonly got: Received[] = [];
  readonly statuses: number[] = [];
  server!: Server;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.got.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
        res.statusCode = this.statuses.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

const verifies = (r: Received, secret: string) => r.headers['x-certfleet-signature'] === `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`;

describe('webhook delivery', () => {
  let dir: string;
  let receiver: Receiver;
  const open: Array<{ store: Store; hooks: Webhooks }> = [];

  async function node(path = join(dir, 'certfleet.db')) {
    const store = await openStore(path);
    const bus = new EventBus();
    const hooks = new Webhooks({ store, bus, now: () => new Date(), cacheMs: 0 });
    hooks.startDispatching();
    open.push({ store, hooks });
    return { store, bus, hooks };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'certfleet-webhooks-'));
    receiver = await new Receiver().start();
  });
  after(async () => {
    for (const o of open) {
      await o.hooks.stop();
      await o.store.close();
    }
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('POSTs each matching event once, as signed JSON {id, type, at, data}, and records it delivered', async () => {
    const { store, bus, hooks } = await node(join(dir, 'a.db'));
    const secret = 'a-shared-secret-of-some-length';
    const { webhook } = await hooks.create(ADMIN, { url: receiver.url, events: ['certificate.registered'], secret });
    const other = await hooks.create(ADMIN, { url: `${receiver.url}?other`, events: ['thing.connected'] });
    hooks.startWorker();
    const before = receiver.got.length;
    bus.emit('certificate.registered', { certificateId: 'ab'.repeat(32), caId: 'ca-1', status: 'pending-activation' });
    await waitFor('the delivery', () => receiver.got.length > before);
    const r = receiver.got.at(-1)!;
    assert.ok(verifies(r, secret), 'X-Certfleet-Signature verifies with the secret');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-certfleet-event'], 'certificate.registered');
    const body = JSON.parse(r.body) as EventEnvelope;
    assert.deepEqual(Object.keys(body).sort(), ['at', 'data', 'id', 'type']);
    assert.deepEqual(body.data, { certificateId: 'ab'.repeat(32), caId: 'ca-1', status: 'pending-activation' });
    assert.equal(body.type, 'certificate.registered');
    assert.ok(!Number.isNaN(Date.parse(body.at)));
    await waitFor('the delivered row', async () => (await store.listDeliveries(webhook.id, 10))[0]?.deliveredAt != null);
    const [row] = await store.listDeliveries(webhook.id, 10);
    assert.equal(row!.id, r.headers['x-certfleet-delivery']);
    assert.deepEqual(await store.listDeliveries(other.webhook.id, 10), [], 'a webhook gets only the events it named');
    assert.equal(receiver.got.length, before + 1);
  });

  it('retries after a 500, about a second later, with the same body and delivery id', async () => {
    const { store, bus, hooks } = await node(join(dir, 'b.db'));
    const { webhook, secret } = await hooks.create(ADMIN, { url: receiver.url, events: ['*'] });
    hooks.startWorker();
    receiver.statuses.push(500);
    const before = receiver.got.length;
    bus.emit('ca.status-changed', { caId: 'ca-9', to: 'inactive' });
    await waitFor('two attempts', () => receiver.got.length >= before + 2);
    const [first, second] = receiver.got.slice(before);
    assert.equal(second!.body, first!.body);
    assert.equal(second!.headers['x-certfleet-delivery'], first!.headers['x-certfleet-delivery']);
    assert.ok(verifies(second!, secret));
    assert.ok(second!.at - first!.at >= 900, `retried after ${second!.at - first!.at} ms`);
    await waitFor('the delivered row', async () => (await store.listDeliveries(webhook.id, 10))[0]?.deliveredAt != null);
    assert.equal((await store.listDeliveries(webhook.id, 10))[0]!.attempts, 2);
  });

  it('an event enqueued while no worker runs is delivered by the next worker, after a restart', async () => {
    const path = join(dir, 'c.db');
    const first = await node(path);
    const secret = 'restart-secret-123';
    const { webhook } = await first.hooks.create(ADMIN, { url: receiver.url, events: ['thing.disconnected'], secret });
    const before = receiver.got.length;
    // No worker on this node: the event only reaches the queue.
    first.bus.emit('thing.disconnected', { thingName: 'pump-7', certificateId: 'cd'.repeat(32), clientId: 'pump-7', remote: '192.0.2.1:5000', reason: 'keepalive-timeout' });
    await first.hooks.idle();
    assert.equal((await first.store.listDeliveries(webhook.id, 10)).length, 1, 'durable before any attempt');
    await first.hooks.stop();
    await first.store.close();
    open.splice(open.findIndex((o) => o.store === first.store), 1);
    assert.equal(receiver.got.length, before);

    const second = await node(path);
    second.hooks.startWorker();
    await waitFor('the delivery after the restart', () => receiver.got.length > before);
    const r = receiver.got.at(-1)!;
    assert.ok(verifies(r, secret));
    assert.equal((JSON.parse(r.body) as EventEnvelope<'thing.disconnected'>).data.reason, 'keepalive-timeout');
  });

  it('gives up after maxAttempts, keeping the last error', async () => {
    const { store, hooks } = await node(join(dir, 'd.db'));
    const { webhook } = await hooks.create(ADMIN, { url: 'https://unreachable.invalid/hook', events: ['*'] });
    let t = Date.parse('2030-01-01T00:00:00Z');
    const sent: string[] = [];
    const send: Send = async (url) => {
      sent.push(url);
      throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
    };
    const worker = new WebhookWorker({ store, now: () => new Date(t), send, maxAttempts: 3, pollMs: 20, random: () => 0 });
    await store.enqueueDeliveries([{ id: 'd-1', webhookId: webhook.id, event: '{"type":"policy.changed"}', nextAttemptAt: new Date(t), createdAt: new Date(t) }]);
    worker.start();
    const row = async () => (await store.listDeliveries(webhook.id, 1))[0]!;
    for (const [attempt, wait] of [[1, 1000], [2, 2000]] as const) {
      await waitFor(`attempt ${attempt}`, async () => (await row()).attempts === attempt && (await row()).nextAttemptAt?.getTime() === t + wait);
      assert.equal((await row()).lastError, 'fetch failed: ENOTFOUND');
      t += wait;
    }
    await waitFor('giving up', async () => (await row()).attempts === 3 && (await row()).nextAttemptAt === null);
    await worker.stop();
    assert.equal(sent.length, 3);
    assert.equal((await row()).deliveredAt, null);
  });
});
