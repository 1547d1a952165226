/** certfleet audit run */
import type { Command } from 'commander';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { print, server, withServer } from './common.js';

interface Forecast {
  from: string;
  total: number[];
  atRisk: Array<{ thing: string | null; certificateId: string; notAfter: string; lastSeen: string | null }>;
}

interface Report {
  runAt: string;
  summary: Record<string, number>;
  findings: Array<{ severity: string; reasonCode: string; resourceType: string; resource: string; message: string; mitigations: string[] }>;
}

export function auditCommands(cmd: Command): void {
  const audit = cmd.command('audit').description('fleet audits');
  withServer(audit.command('run').description('audit expiry, revoked CAs, cloned identities, weak keys, permissive policies, silent devices'))
    .option('--expiring-within <duration>', 'expiry window', '30d')
    .option('--max-age <duration>', 'also flag certificates older than this')
    .option('--not-seen <duration>', 'flag devices silent this long', '30d')
    .action(async (o: { data: string; json?: boolean; expiringWithin: string; maxAge?: string; notSeen: string }) => {
      const r = await api<Report>(server(o), 'POST', '/api/v1/audits/run', {
        expiringWithinDays: parseDays(o.expiringWithin),
        notSeenDays: parseDays(o.notSeen),
        ...(o.maxAge ? { maxAgeDays: parseDays(o.maxAge) } : {}),
      });
      print(o.json, r, () => {
        const head = `${r.findings.length} findings (${Object.entries(r.summary).map(([k, v]) => `${v} ${k}`).join(', ')})`;
        return r.findings.length === 0 ? head : `${head}\n${table(r.findings.map((f) => ({ ...f, mitigations: f.mitigations.join(',') })), ['severity', 'reasonCode', 'resourceType', 'resource', 'message', 'mitigations'])}`;
      });
    });

  withServer(cmd.command('forecast').description('certificates expiring per week for the next 52 weeks, and the devices at risk'))
    .option('--weeks <n>', 'how many weeks', '52')
    .option('--renewal-window <duration>', 'devices renew this long before expiry', '28d')
    .option('--offline <duration>', 'a device silent this long cannot renew', '7d')
    .action(async (o: { data: string; json?: boolean; weeks: string; renewalWindow: string; offline: string }) => {
      const q = new URLSearchParams({ weeks: o.weeks, renewalWindowDays: String(parseDays(o.renewalWindow)), offlineDays: String(parseDays(o.offline)) });
      const f = await api<Forecast>(server(o), 'GET', `/api/v1/forecast?${q}`);
      print(o.json, f, () => {
        const start = new Date(f.from).getTime();
        const rows = f.total.map((n, i) => ({ week: new Date(start + i * 7 * 86_400_000).toISOString().slice(0, 10), expiring: n, bar: '#'.repeat(Math.min(60, n)) })).filter((r) => r.expiring > 0);
        const risk = f.atRisk.length === 0 ? 'no device at risk' : `${f.atRisk.length} devices at risk:\n${table(f.atRisk, ['thing', 'certificateId', 'notAfter', 'lastSeen'])}`;
        return `${rows.length === 0 ? 'nothing expires in the window' : table(rows, ['week', 'expiring', 'bar'])}\n\n${risk}`;
      });
    });
}
