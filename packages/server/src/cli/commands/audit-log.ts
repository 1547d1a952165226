/** certfleet audit-log … (the hash-chained record of every CA and admin action) */
import type { Command } from 'commander';
import { api } from '../client.js';
import { table } from '../format.js';
import { positiveInt, print, server, withServer } from './common.js';

interface Entry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  details?: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

type Verification = { ok: true; entries: number; head: { seq: number; hash: string } | null } | { ok: false; entries: number; firstBroken: { seq: number; reason: string } };

/** Exit code of `audit-log verify` when the chain is broken (1 stays "the command failed"). */
const BROKEN = 2;

export function auditLogCommands(cmd: Command): void {
  const log = cmd.command('audit-log').description('the append-only, hash-chained audit log');

  withServer(log.command('list').description('entries, newest first'))
    .option('--target <target>', 'e.g. thing:pump-7, policy:p1, certificate:<id>')
    .option('--actor <actor>', 'e.g. token:<id>, system, init')
    .option('--limit <n>', 'at most this many entries', positiveInt, 100)
    .action(async (o: { data: string; json?: boolean; target?: string; actor?: string; limit: number }) => {
      const cfg = server(o);
      const q = new URLSearchParams();
      if (o.target) q.set('target', o.target);
      if (o.actor) q.set('actor', o.actor);
      const items: Entry[] = [];
      let next: string | undefined;
      do {
        q.set('limit', String(Math.min(1000, o.limit - items.length)));
        if (next) q.set('cursor', next);
        const page = await api<{ items: Entry[]; next?: string }>(cfg, 'GET', `/api/v1/audit-log?${q}`);
        items.push(...page.items);
        next = page.next;
      } while (next && items.length < o.limit);
      print(o.json, { items }, () => table(items, ['seq', 'at', 'actor', 'action', 'target']));
    });

  withServer(log.command('verify').description(`recompute the hash chain; exit ${BROKEN} when it is broken`)).action(async (o: { data: string; json?: boolean }) => {
    const v = await api<Verification>(server(o), 'POST', '/api/v1/audit-log/verify');
    print(o.json, v, () =>
      v.ok
        ? `audit log OK: ${v.entries} entries${v.head ? `, head ${v.head.seq} ${v.head.hash}` : ''}`
        : `audit log BROKEN at entry ${v.firstBroken.seq}: ${v.firstBroken.reason} (${v.entries} entries intact before it)`,
    );
    if (!v.ok) process.exitCode = BROKEN;
  });
}
