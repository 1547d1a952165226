/** certfleet est … (one-time EST enrollment secrets) */
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { api } from '../client.js';
import { fields, listAll, positiveInt, print, seg, server, withServer } from './common.js';

interface IssuedSecret {
  id: string;
  username: string;
  secret: string;
  thing?: string;
  batch?: string;
  expiresAt: string;
}

interface SecretView {
  id: string;
  username: string;
  thing: string | null;
  batch: string | null;
  template: string | null;
  status: string;
  expiresAt: string;
  certificateId: string | null;
}

type Opts = { data: string; json?: boolean };

/** `72h`, `3d`: whole hours. */
export function hours(v: string): number {
  const m = /^(\d{1,5})(h|d)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`wants a duration in hours or days, e.g. 72h or 3d; got ${v}`);
  const n = Number(m[1]) * (m[2] === 'd' ? 24 : 1);
  if (n < 1 || n > 8760) throw new InvalidArgumentError('from 1h to 365d');
  return n;
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
const csvField = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

export function secretsCsv(secrets: readonly IssuedSecret[]): string {
  const rows = [['id', 'username', 'secret', 'thing', 'batch', 'expiresAt'], ...secrets.map((s) => [s.id, s.username, s.secret, s.thing ?? '', s.batch ?? '', s.expiresAt])];
  return rows.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

export function estCommands(cmd: Command): void {
  const est = cmd.command('est').description('EST (RFC 7030) enrollment');
  const secret = est.command('secret').description('one-time enrollment secrets for simpleenroll over HTTP Basic');

  withServer(secret.command('create').description('make secrets: one bound to a thing (--thing), or --count N for a batch of devices not named yet'))
    .option('--thing <name>', 'the certificate goes on this thing (created if missing)')
    .option('--count <n>', 'how many secrets (a batch)', positiveInt)
    .option('--batch <label>', 'label of the batch')
    .option('--expires-in <duration>', 'validity, e.g. 72h or 3d', hours, 72)
    .option('--template <name>', 'provisioning template applied to the thing at enrollment')
    .option('--profile <profile>', 'device or server', 'device')
    .option('--out <file.csv>', 'write id,username,secret,thing,batch,expiresAt to this file (mode 0600)')
    .action(async (o: Opts & { thing?: string; count?: number; batch?: string; expiresIn: number; template?: string; profile: string; out?: string }) => {
      const body = {
        ...(o.thing ? { thing: o.thing } : {}),
        ...(o.count !== undefined ? { count: o.count } : {}),
        ...(o.batch ? { batch: o.batch } : {}),
        expiresInHours: o.expiresIn,
        ...(o.template ? { template: o.template } : {}),
        profile: o.profile,
      };
      const r = await api<{ secrets: IssuedSecret[] }>(server(o), 'POST', '/api/v1/enrollment-secrets', body);
      // The secrets exist nowhere else: the file is private to the operator.
      if (o.out) writeFileSync(o.out, secretsCsv(r.secrets), { mode: 0o600 });
      print(o.json, r, () =>
        o.out
          ? `${r.secrets.length} secret(s) written to ${o.out}; they expire ${r.secrets[0]?.expiresAt ?? ''}`
          : r.secrets.map((s) => fields([['id', s.id], ['username', s.username], ['secret', s.secret], ['thing', s.thing ?? '-'], ['expires', s.expiresAt]])).join('\n\n'),
      );
    });

  withServer(secret.command('list').description('list enrollment secrets (never the secrets themselves)'))
    .option('--batch <label>', 'only this batch')
    .action(async (o: Opts & { batch?: string }) => {
      const items = await listAll<SecretView>(server(o), '/api/v1/enrollment-secrets', o.batch ? { batch: o.batch } : {});
      print(o.json, { items }, () =>
        items.length === 0 ? 'no enrollment secrets' : items.map((s) => [s.id, s.username, s.status, s.thing ?? s.batch ?? '-', s.expiresAt, s.certificateId ?? ''].join('  ')).join('\n'),
      );
    });

  withServer(secret.command('revoke').description('revoke an unused enrollment secret').argument('<id>'))
    .action(async (id: string, o: Opts) => {
      const r = await api<SecretView>(server(o), 'DELETE', `/api/v1/enrollment-secrets/${seg(id)}`);
      print(o.json, r, () => `revoked ${r.id} (${r.username})`);
    });
}
