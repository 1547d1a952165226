/** certfleet audit run | findings | export | schedule, certfleet forecast */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { api } from '../client.js';
import { CertfleetError } from '../../errors.js';
import { parseDays, table } from '../format.js';
import { print, server, withServer } from './common.js';
import { CSV_COLUMNS, csvField } from '../../lifecycle/findings.js';

interface Forecast {
  from: string;
  total: number[];
  atRisk: Array<{ thing: string | null; certificateId: string; notAfter: string; lastSeen: string | null }>;
}

interface StoredFinding {
  id: string;
  severity: string;
  reasonCode: string;
  resourceType: string;
  resource: string;
  message: string;
  mitigations: string[];
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
}

interface Report {
  runAt: string;
  runId: string;
  newFindings: number;
  resolvedFindings: number;
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

  withServer(audit.command('findings').description('stored findings (open unless --resolved or --all)'))
    .option('--severity <s>', 'critical, high, medium or low')
    .option('--reason <code>', 'a reason code, e.g. device-certificate-expiring')
    .option('--resolved', 'only resolved findings')
    .option('--all', 'open and resolved')
    .option('--limit <n>', 'page size', '100')
    .action(async (o: { data: string; json?: boolean; severity?: string; reason?: string; resolved?: boolean; all?: boolean; limit: string }) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.severity ? { severity: o.severity } : {}), ...(o.reason ? { reason: o.reason } : {}), ...(o.all ? {} : { resolved: String(o.resolved ?? false) }) });
      const page = await api<{ items: StoredFinding[]; next?: string }>(server(o), 'GET', `/api/v1/audits/findings?${q}`);
      print(o.json, page, () => (page.items.length === 0 ? 'no findings' : table(page.items.map((f) => ({ ...f, resolvedAt: f.resolvedAt ?? '' })), ['severity', 'reasonCode', 'resourceType', 'resource', 'firstSeen', 'lastSeen', 'resolvedAt', 'message'])));
    });

  withServer(audit.command('export').description('every stored finding, as CSV or JSON'))
    .option('--format <f>', 'csv or json', 'csv')
    .option('--severity <s>', 'critical, high, medium or low')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (o: { data: string; format: string; severity?: string; out?: string }) => {
      const q = new URLSearchParams({ format: 'json', ...(o.severity ? { severity: o.severity } : {}) });
      const items = await api<StoredFinding[]>(server(o), 'GET', `/api/v1/audits/findings/export?${q}`);
      const text =
        o.format === 'json'
          ? JSON.stringify(items, null, 2) + '\n'
          : [CSV_COLUMNS.join(','), ...items.map((f) => CSV_COLUMNS.map((c) => csvField(c === 'mitigations' ? f.mitigations.join(' ') : String(f[c] ?? ''))).join(','))].join('\r\n') + '\r\n';
      if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
    });

  withServer(audit.command('schedule').description('show or set how often the server runs the audit'))
    .option('--every <duration>', 'e.g. 24h, 12h, 7d; 0 turns it off')
    .action(async (o: { data: string; json?: boolean; every?: string }) => {
      const hours = o.every === undefined ? undefined : parseHours(o.every);
      const r = await api<{ intervalHours: number }>(server(o), hours === undefined ? 'GET' : 'PUT', '/api/v1/audits/schedule', hours === undefined ? undefined : { intervalHours: hours });
      print(o.json, r, () => (r.intervalHours > 0 ? `the audit runs every ${r.intervalHours} h` : 'the scheduled audit is off'));
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

/** `24h`, `7d`, `0`: hours. */
function parseHours(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([hd]?)$/.exec(v.trim());
  if (!m) throw new CertfleetError('bad-request', `"${v}" is not a duration such as 24h or 7d`);
  return Number(m[1]) * (m[2] === 'd' ? 24 : 1);
}
