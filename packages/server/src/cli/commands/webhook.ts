/** certfleet webhook … (admin) */
import type { Command } from 'commander';
import { api } from '../client.js';
import { table } from '../format.js';
import { positiveInt, print, seg, server, withServer } from './common.js';

interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  secret?: string;
}

interface Delivery {
  id: string;
  eventId: string;
  type: string;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

type Opts = { data: string; json?: boolean };

export function webhookCommands(cmd: Command): void {
  const webhook = cmd.command('webhook').description('webhooks: events POSTed to a URL, signed, retried until delivered (admin)');
  withServer(webhook.command('create').description('send the named events (or * for all) to a URL; the secret is printed once'))
    .requiredOption('--url <url>', 'http:// or https:// URL')
    .requiredOption('--events <names>', 'comma-separated event names, e.g. certificate.registered,thing.connected, or *')
    .option('--secret <secret>', 'shared secret the signature is made with (default: a random one, printed once)')
    .action(async (o: Opts & { url: string; events: string; secret?: string }) => {
      const w = await api<Webhook>(server(o), 'POST', '/api/v1/webhooks', {
        url: o.url,
        events: o.events.split(',').map((e) => e.trim()).filter(Boolean),
        ...(o.secret ? { secret: o.secret } : {}),
      });
      print(o.json, w, () => `created webhook ${w.id} -> ${w.url} (${w.events.join(',')})\nsecret: ${w.secret}`);
    });
  withServer(webhook.command('list').description('list webhooks (never their secrets)')).action(async (o: Opts) => {
    const { items } = await api<{ items: Webhook[] }>(server(o), 'GET', '/api/v1/webhooks');
    print(o.json, { items }, () => table(items.map((w) => ({ ...w, events: w.events.join(',') })), ['id', 'url', 'events', 'createdAt']));
  });
  withServer(webhook.command('delete <id>').description('delete a webhook and its pending deliveries')).action(async (id: string, o: Opts) => {
    await api<unknown>(server(o), 'DELETE', `/api/v1/webhooks/${seg(id)}`);
    print(o.json, { deleted: id }, () => `deleted webhook ${id}`);
  });
  withServer(webhook.command('deliveries <id>').description("a webhook's latest deliveries, newest first"))
    .option('--limit <n>', 'how many', positiveInt, 20)
    .action(async (id: string, o: Opts & { limit: number }) => {
      const { items } = await api<{ items: Delivery[] }>(server(o), 'GET', `/api/v1/webhooks/${seg(id)}/deliveries?limit=${o.limit}`);
      print(o.json, { items }, () =>
        table(
          items.map((d) => ({ ...d, status: d.deliveredAt ? 'delivered' : d.nextAttemptAt ? 'pending' : 'given up', lastError: d.lastError ?? '' })),
          ['id', 'type', 'status', 'attempts', 'nextAttemptAt', 'lastError', 'createdAt'],
        ),
      );
    });
}
