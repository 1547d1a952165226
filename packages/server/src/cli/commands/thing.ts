/** certfleet thing … */
import type { Command } from 'commander';
import { api } from '../client.js';
import { table } from '../format.js';
import { print, server, withServer } from './common.js';

interface Thing {
  name: string;
  attributes: Record<string, string>;
  createdAt: string;
}

function attr(v: string, acc: Record<string, string>): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq < 1) throw new Error(`--attr wants key=value, got ${v}`);
  return { ...acc, [v.slice(0, eq)]: v.slice(eq + 1) };
}

export function thingCommands(cmd: Command): void {
  const thing = cmd.command('thing').description('things (devices)');
  withServer(thing.command('create <name>').description('register a thing'))
    .option('--attr <key=value>', 'attribute (repeatable)', attr, {})
    .action(async (name: string, o: { data: string; json?: boolean; attr: Record<string, string> }) => {
      const t = await api<Thing>(server(o), 'POST', '/api/v1/things', { name, attributes: o.attr });
      print(o.json, t, () => `created thing ${t.name}`);
    });
  withServer(thing.command('list').description('list things')).action(async (o: { data: string; json?: boolean }) => {
    const items: Thing[] = [];
    let next: string | undefined;
    do {
      const page = await api<{ items: Thing[]; next?: string }>(server(o), 'GET', `/api/v1/things?limit=1000${next ? `&cursor=${encodeURIComponent(next)}` : ''}`);
      items.push(...page.items);
      next = page.next;
    } while (next);
    print(o.json, { items }, () => table(items.map((t) => ({ ...t, attributes: JSON.stringify(t.attributes) })), ['name', 'attributes', 'createdAt']));
  });
  withServer(thing.command('get <name>').description('show a thing')).action(async (name: string, o: { data: string; json?: boolean }) => {
    const t = await api<Thing>(server(o), 'GET', `/api/v1/things/${encodeURIComponent(name)}`);
    print(o.json, t, () => JSON.stringify(t, null, 2));
  });
}
