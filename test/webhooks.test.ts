/**
 * Webhooks end to end, as an operator uses them: `certfleet webhook create`
 * against a real server, a local HTTP receiver, a change made with the CLI
 * delivered signed; a receiver that fails and a server restarted in between
 * still get the event (the queue is in the database).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;
let receiver: Server;
const got: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const statuses: number[] = [];
const SECRET = 'e2e-webhook-secret';

async function waitFor(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

async function cli(...args: string[]): Promise<string> {
  const r = await certfleet([...args, '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await server?.stop();
  await new Promise((r) => receiver?.close(r));
  rmSync(data, { recursive: true, force: true });
});

const url = () => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/certfleet`;
const signed = (r: { headers: IncomingHttpHeaders; body: string }) => r.headers['x-certfleet-signature'] === `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`;

describe('certfleet webhook', () => {
  let webhookId: string;
  let certId: string;

  it('create and list', async () => {
    const created = JSON.parse(await cli('webhook', 'create', '--url', url(), '--events', 'certificate.status-changed', '--secret', SECRET, '--json')) as { id: string; secret: string };
    webhookId = created.id;
    assert.equal(created.secret, SECRET);
    const { items } = JSON.parse(await cli('webhook', 'list', '--json')) as { items: Array<{ id: string; url: string; events: string[] }> };
    assert.deepEqual(items.map((w) => [w.id, w.url, w.events]), [[webhookId, url(), ['certificate.status-changed']]]);
    assert.doesNotMatch(await cli('webhook', 'list'), new RegExp(SECRET), 'the secret is never listed');
  });

  it('delivers a change made with the CLI as a signed POST', async () => {
    await cli('thing', 'create', 'hooked-1');
    certId = (JSON.parse(await cli('cert', 'issue', '--thing', 'hooked-1', '--out', join(data, 'hooked-1'), '--json')) as { id: string }).id;
    await cli('cert', 'deactivate', certId);
    await waitFor('the delivery', () => got.length > 0);
    const r = got[0]!;
    assert.ok(signed(r), 'X-Certfleet-Signature verifies');
    assert.equal(r.headers['x-certfleet-event'], 'certificate.status-changed');
    const body = JSON.parse(r.body) as { type: string; data: { certificateId: string; from: string; to: string } };
    assert.deepEqual(body.data, { certificateId: certId, from: 'active', to: 'inactive' });
  });

  it('a failed delivery survives a server restart and is retried by the new process', async () => {
    const before = got.length;
    statuses.push(503);
    await cli('cert', 'activate', certId);
    await waitFor('the failed attempt', () => got.length === before + 1);
    await server.stop();
    server = await serve(data);
    await waitFor('the retry from the restarted server', () => got.length === before + 2, 30_000);
    const [failed, retried] = got.slice(before);
    assert.equal(retried!.body, failed!.body);
    assert.equal(retried!.headers['x-certfleet-delivery'], failed!.headers['x-certfleet-delivery']);
    assert.ok(signed(retried!));
    const deliveries = JSON.parse(await cli('webhook', 'deliveries', webhookId, '--json')) as { items: Array<{ attempts: number; deliveredAt: string | null }> };
    assert.deepEqual(deliveries.items.map((d) => [d.attempts, d.deliveredAt !== null]), [[2, true], [1, true]]);
  });

  it('delete', async () => {
    await cli('webhook', 'delete', webhookId);
    assert.deepEqual((JSON.parse(await cli('webhook', 'list', '--json')) as { items: unknown[] }).items, []);
    const again = await certfleet(['webhook', 'delete', webhookId, '--data', data]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /not-found|no webhook/);
  });
});
