/** certfleet audit run */
import type { Command } from 'commander';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { print, server, withServer } from './common.js';

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
}
