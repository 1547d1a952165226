/** certfleet campaign … (operator): rotation campaigns. */
import { InvalidArgumentError, type Command } from 'commander';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { fields, positiveInt, print, seg, server, withServer } from './common.js';

interface Campaign {
  id: string;
  status: string;
  selection: Record<string, unknown>;
  ratePerMinute: number;
  graceSeconds: number;
  issuerId: string | null;
  deadlineAt?: string | null;
  createdAt: string;
  counts?: Record<string, number>;
}

type Opts = { data: string; json?: boolean };

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** `7d`, `12h`, `2w`, `3600s`, `90` (days) → seconds. */
function graceSeconds(v: string): number {
  const s = /^(\d+)\s*s$/i.exec(v.trim());
  if (s) return Number(s[1]);
  try {
    return parseDays(v) * 86_400;
  } catch {
    throw new InvalidArgumentError(`wants a duration like 7d, 12h or 3600s, got ${v}`);
  }
}

function describe(c: Campaign): string {
  const counts = c.counts ? Object.entries(c.counts).map(([k, n]) => `${k} ${n}`).join(', ') : '';
  return fields([
    ['campaign', c.id],
    ['status', c.status],
    ['selection', JSON.stringify(c.selection)],
    ['rate', `${c.ratePerMinute} devices/minute`],
    ['grace', `${c.graceSeconds} s`],
    ['issuer', c.issuerId ?? "each old certificate's"],
    ['deadline', c.deadlineAt ?? '(none)'],
    ['created', c.createdAt],
    ...(counts ? ([['items', counts]] as const) : []),
  ]);
}

export function campaignCommands(cmd: Command): void {
  const campaign = cmd.command('campaign').description('rotation campaigns: devices asked to renew, at a throttled rate, old certificates retired after a grace period');
  withServer(campaign.command('create').description('start a campaign over the selected certificates (selection parts combine)'))
    .option('--expiring-within <duration>', 'certificates expiring within e.g. 30d')
    .option('--ca <id>', 'certificates issued by this CA (id or name)')
    .option('--group <name>', "certificates of this thing group's members")
    .option('--cert <id>', 'this certificate (repeatable)', collect, [])
    .option('--rate <n>', 'devices notified per minute', positiveInt, 60)
    .option('--grace <duration>', 'how long an old certificate stays after its device confirmed the new one', graceSeconds, 7 * 86_400)
    .option('--issuer <caId>', "CA the new certificates come from (default: each old certificate's issuer)")
    .option('--deadline <duration>', 'give up on devices that have not confirmed after e.g. 30d (their items fail, old certificates stay)')
    .action(async (o: Opts & { expiringWithin?: string; ca?: string; group?: string; cert: string[]; rate: number; grace: number; issuer?: string; deadline?: string }) => {
      const c = await api<Campaign>(server(o), 'POST', '/api/v1/campaigns', {
        ...(o.expiringWithin ? { expiringWithinDays: parseDays(o.expiringWithin) } : {}),
        ...(o.ca ? { caId: o.ca } : {}),
        ...(o.group ? { group: o.group } : {}),
        ...(o.cert.length ? { certificateIds: o.cert } : {}),
        ratePerMinute: o.rate,
        graceSeconds: o.grace,
        ...(o.issuer ? { issuer: o.issuer } : {}),
        ...(o.deadline ? { deadlineDays: parseDays(o.deadline) } : {}),
      });
      print(o.json, c, () => describe(c));
    });
  withServer(campaign.command('list').description('list campaigns')).action(async (o: Opts) => {
    const { items } = await api<{ items: Campaign[] }>(server(o), 'GET', '/api/v1/campaigns?limit=1000');
    print(o.json, { items }, () => table(items.map((c) => ({ ...c, selection: JSON.stringify(c.selection) })), ['id', 'status', 'selection', 'ratePerMinute', 'createdAt']));
  });
  withServer(campaign.command('show <id>').description('a campaign and its items per state'))
    .option('--items <state>', 'also list the items in this state (pending, notified, issued, confirmed, retired, failed)')
    .action(async (id: string, o: Opts & { items?: string }) => {
      const c = await api<Campaign>(server(o), 'GET', `/api/v1/campaigns/${seg(id)}`);
      if (!o.items) return print(o.json, c, () => describe(c));
      const { items } = await api<{ items: Array<Record<string, unknown>> }>(server(o), 'GET', `/api/v1/campaigns/${seg(id)}/items?state=${seg(o.items)}&limit=1000`);
      print(o.json, { ...c, items }, () => `${describe(c)}\n\n${table(items, ['certificateId', 'thingName', 'state', 'reason', 'newCertificateId'])}`);
    });
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    withServer(campaign.command(`${action} <id>`).description(`${action} a campaign`)).action(async (id: string, o: Opts) => {
      const c = await api<Campaign>(server(o), 'POST', `/api/v1/campaigns/${seg(id)}/${action}`);
      print(o.json, c, () => describe(c));
    });
  }
}
