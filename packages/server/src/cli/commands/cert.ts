/** certfleet cert … */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { writePrivate } from '../../config/data-dir.js';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { readPem } from './ca.js';
import { fields, print, seg, server, withServer } from './common.js';

interface CertView {
  id: string;
  serial: string;
  thing: string | null;
  status: string;
  profile: string;
  subject: string;
  notAfter: string;
  certificatePem?: string;
}

interface CertDetail extends CertView {
  issuerId: string;
  issuer: string;
  issuerName: string | null;
  fingerprintSha256: string;
  notBefore: string;
  keyAlgorithm: string;
  revokedAt: string | null;
  revocationReason: string | null;
  policies: string[];
  history: { status: string; reason: string | null; actor: string; at: string }[];
  certificatePem: string;
}

type Opts = { data: string; json?: boolean };

function describe(c: CertDetail): string {
  const head = fields([
    ['certificate', c.id],
    ['subject', c.subject],
    ['issuer', `${c.issuer}${c.issuerName ? ` (CA ${c.issuerName})` : ''}`],
    ['serial', c.serial],
    ['sha-256', c.fingerprintSha256],
    ['valid', `${c.notBefore} to ${c.notAfter}`],
    ['key', c.keyAlgorithm],
    ['profile', c.profile],
    ['status', `${c.status}${c.revokedAt ? ` since ${c.revokedAt}${c.revocationReason ? ` (${c.revocationReason})` : ''}` : ''}`],
    ['thing', c.thing ?? '(none)'],
    ['policies', c.policies.join(', ') || '(none)'],
  ]);
  const history = c.history.length ? table(c.history.map((h) => ({ ...h, reason: h.reason ?? '' })), ['at', 'status', 'reason', 'actor']) : '(none)';
  return `${head}\n\nhistory:\n${history}`;
}

export interface Issued {
  id: string;
  serial: string;
  certificatePem: string;
  chainPem: string;
  caPem: string;
  privateKeyPem?: string;
  certificate: CertView;
}

/** Writes cert.pem, chain.pem, ca.pem (and key.pem, mode 0600, when the server made the key). */
export function writeOut(out: string, issued: Issued): string[] {
  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cert.pem'), issued.certificatePem);
  writeFileSync(join(dir, 'chain.pem'), issued.chainPem);
  writeFileSync(join(dir, 'ca.pem'), issued.caPem);
  const files = ['cert.pem', 'chain.pem', 'ca.pem'];
  if (issued.privateKeyPem) {
    writePrivate(join(dir, 'key.pem'), issued.privateKeyPem);
    files.splice(1, 0, 'key.pem');
  }
  return files.map((f) => join(dir, f));
}

interface IssueOpts {
  data: string;
  json?: boolean;
  thing?: string;
  out: string;
  profile?: string;
  days?: string;
  san: string[];
  issuer?: string;
}

const common = (o: IssueOpts) => ({
  ...(o.thing ? { thing: o.thing } : {}),
  ...(o.profile ? { profile: o.profile } : {}),
  ...(o.days ? { validityDays: parseDays(o.days) } : {}),
  ...(o.issuer ? { issuer: o.issuer } : {}),
  ...(o.san.length ? { sans: o.san } : {}),
});

const collect = (v: string, acc: string[]) => [...acc, v];

export function certCommands(cmd: Command): void {
  const cert = cmd.command('cert').description('certificates');
  const issueOpts = (c: Command) =>
    withServer(c)
      .option('--thing <name>', 'thing the certificate belongs to (its name becomes the CN)')
      .requiredOption('--out <dir>', 'directory for cert.pem, key.pem, chain.pem, ca.pem')
      .option('--profile <name>', 'device or server', 'device')
      .option('--days <n>', 'validity, e.g. 365 or 30d')
      .option('--san <name>', 'subjectAltName dns:…, ip:…, uri:… (repeatable)', collect, [])
      .option('--issuer <ca>', 'issuing CA id or name');

  issueOpts(cert.command('issue').description('issue a certificate with a server-generated key (development phase)'))
    .option('--key-algorithm <alg>', 'ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072', 'ec-p256')
    .option('--cn <name>', 'subject CN when there is no thing')
    .action(async (o: IssueOpts & { keyAlgorithm: string; cn?: string }) => {
      const issued = await api<Issued>(server(o), 'POST', '/api/v1/certificates/generate', {
        ...common(o),
        keyAlgorithm: o.keyAlgorithm,
        ...(o.cn ? { commonName: o.cn } : {}),
      });
      const files = writeOut(o.out, issued);
      print(o.json, { id: issued.id, serial: issued.serial, files }, () => `issued ${issued.id}\nserial ${issued.serial}\n${files.join('\n')}`);
    });

  issueOpts(cert.command('sign').description('sign a CSR; the private key stays where it was made'))
    .requiredOption('--csr <file>', 'PEM CSR')
    .action(async (o: IssueOpts & { csr: string }) => {
      const issued = await api<Issued>(server(o), 'POST', '/api/v1/certificates', { csr: readFileSync(o.csr, 'utf8'), ...common(o) });
      const files = writeOut(o.out, issued);
      print(o.json, { id: issued.id, serial: issued.serial, files }, () => `issued ${issued.id}\nserial ${issued.serial}\n${files.join('\n')}`);
    });

  withServer(cert.command('register').description('register a device certificate made elsewhere, under the registered CA that signed it'))
    .requiredOption('--cert <file>', 'the device certificate (PEM)')
    .option('--ca-cert <file>', 'the registered CA that signed it (PEM), when several could have')
    .option('--thing <name>', 'attach it to this thing')
    .addOption(new Option('--status <status>', 'default active').choices(['active', 'inactive', 'pending-activation']))
    .action(async (o: Opts & { cert: string; caCert?: string; thing?: string; status?: string }) => {
      const c = await api<CertView>(server(o), 'POST', '/api/v1/certificates/register', {
        certificatePem: readPem(o.cert),
        ...(o.caCert ? { caCertificatePem: readPem(o.caCert) } : {}),
        ...(o.thing ? { thing: o.thing } : {}),
        ...(o.status ? { status: o.status } : {}),
      });
      print(o.json, c, () => `registered ${c.id}\nserial ${c.serial}\nstatus ${c.status}${c.thing ? `\nthing ${c.thing}` : ''}`);
    });

  withServer(cert.command('list').description('list certificates'))
    .option('--expiring-within <duration>', 'e.g. 30d: notAfter within that (expired included)')
    .option('--status <status>', 'active, inactive, revoked, pending-activation, pending-transfer')
    .option('--thing <name>')
    .action(async (o: { data: string; json?: boolean; expiringWithin?: string; status?: string; thing?: string }) => {
      const q = new URLSearchParams({ limit: '1000' });
      if (o.expiringWithin) q.set('expiringWithinDays', String(parseDays(o.expiringWithin)));
      if (o.status) q.set('status', o.status);
      if (o.thing) q.set('thing', o.thing);
      const items: CertView[] = [];
      let next: string | undefined;
      do {
        if (next) q.set('cursor', next);
        const page = await api<{ items: CertView[]; next?: string }>(server(o), 'GET', `/api/v1/certificates?${q}`);
        items.push(...page.items);
        next = page.next;
      } while (next);
      print(o.json, { items }, () => table(items, ['id', 'thing', 'status', 'profile', 'notAfter', 'subject']));
    });

  withServer(cert.command('get <id>').description('show a certificate (by id or serial): subject, issuer, validity, status, thing, policies, history'))
    .option('--pem', 'print only the PEM')
    .action(async (id: string, o: Opts & { pem?: boolean }) => {
      const c = await api<CertDetail>(server(o), 'GET', `/api/v1/certificates/${seg(id)}`);
      if (o.pem) process.stdout.write(c.certificatePem);
      else print(o.json, c, () => describe(c));
    });

  for (const [op, status] of [
    ['activate', 'active'],
    ['deactivate', 'inactive'],
  ] as const) {
    const c = withServer(cert.command(`${op} <id>`).description(`${op} a certificate (${status === 'inactive' ? 'the broker stops admitting it' : 'the broker admits it again'})`));
    if (status === 'inactive') c.option('--reason <text>', 'why, for the history');
    c.action(async (id: string, o: Opts & { reason?: string }) => {
      const v = await api<CertView>(server(o), 'POST', `/api/v1/certificates/${seg(id)}/status`, { status, ...(o.reason ? { reason: o.reason } : {}) });
      print(o.json, v, () => `certificate ${v.id} is ${v.status}`);
    });
  }

  withServer(cert.command('revoke <id>').description('revoke with an RFC 5280 reason (final, except certificateHold)'))
    .addOption(
      new Option('--reason <reason>', 'RFC 5280 reason')
        .choices(['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn'])
        .default('unspecified'),
    )
    .option('--comment <text>', 'why, for the history')
    .action(async (id: string, o: Opts & { reason: string; comment?: string }) => {
      const v = await api<CertView>(server(o), 'POST', `/api/v1/certificates/${seg(id)}/revoke`, { reason: o.reason, ...(o.comment ? { comment: o.comment } : {}) });
      print(o.json, v, () => `revoked certificate ${v.id} (${o.reason})`);
    });

  withServer(cert.command('release <id>').description('lift a certificateHold')).action(async (id: string, o: Opts) => {
    const v = await api<CertView>(server(o), 'POST', `/api/v1/certificates/${seg(id)}/release`);
    print(o.json, v, () => `certificate ${v.id} is ${v.status}`);
  });

  withServer(cert.command('attach <id>').description('attach a certificate to a thing'))
    .requiredOption('--thing <name>')
    .action(async (id: string, o: Opts & { thing: string }) => {
      const v = await api<CertView>(server(o), 'POST', `/api/v1/certificates/${seg(id)}/attach`, { thing: o.thing });
      print(o.json, v, () => `attached certificate ${v.id} to thing ${v.thing}`);
    });

  withServer(cert.command('detach <id>').description('detach a certificate from its thing')).action(async (id: string, o: Opts) => {
    const v = await api<CertView>(server(o), 'POST', `/api/v1/certificates/${seg(id)}/detach`);
    print(o.json, v, () => `detached certificate ${v.id}`);
  });
}
