/** certfleet ca … */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CertfleetError } from '../../errors.js';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { fields, print, seg, server, withServer } from './common.js';
import { issuerRotationCommands } from './issuer-rotation.js';

interface Ca {
  id: string;
  name: string;
  kind: string;
  status: string;
  keyAlgorithm: string;
  subject: string;
  notAfter: string;
  parentId: string | null;
  serial?: string;
  notBefore?: string;
  pathLen?: number | null;
  autoRegistration?: boolean;
  provisioningTemplate?: string | null;
  renewAfterExpiryDays?: number;
}

type Opts = { data: string; json?: boolean };

/** A PEM file's text, refused here, before anything is sent, when it cannot be read. */
export function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CertfleetError('bad-request', `cannot read ${file}: ${(err as Error).message}`);
  }
}

const describe = (c: Ca): string =>
  fields([
    ['ca', `${c.name} (${c.id})`],
    ['kind', c.kind],
    ['status', c.status],
    ['subject', c.subject],
    ['parent', c.parentId ?? '(none)'],
    ['serial', c.serial ?? ''],
    ['valid', `${c.notBefore ?? '?'} to ${c.notAfter}`],
    ['key', c.keyAlgorithm],
    ['path length', c.pathLen === undefined || c.pathLen === null ? '(unlimited)' : String(c.pathLen)],
    ['auto-registration', c.autoRegistration === undefined ? '' : c.autoRegistration ? 'on' : 'off'],
    ['template', c.provisioningTemplate ?? '(none)'],
    ['renew after expiry', c.renewAfterExpiryDays ? `up to ${c.renewAfterExpiryDays} days` : 'off'],
  ]);

const changed = (c: Ca): string =>
  `CA ${c.name}: status ${c.status}, auto-registration ${c.autoRegistration ? 'on' : 'off'}, template ${c.provisioningTemplate ?? '(none)'}` +
  (c.renewAfterExpiryDays ? `, renewal up to ${c.renewAfterExpiryDays} days after expiry` : ', no renewal after expiry');

export function caCommands(cmd: Command): void {
  const ca = cmd.command('ca').description('certificate authorities');
  issuerRotationCommands(ca);
  withServer(ca.command('create <name>').description('create a root CA, or an intermediate with --parent'))
    .option('--parent <ca>', 'parent CA id or name (makes an intermediate)')
    .option('--subject <dn>', 'e.g. "CN=Acme Device CA,O=Acme"')
    .option('--key-algorithm <alg>', 'ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072', 'ec-p256')
    .option('--days <n>', 'validity (default: 20 years for roots, 10 for intermediates)')
    .option('--path-len <n>', 'intermediates: how many CA levels may follow (default 0)')
    .action(async (name: string, o: { data: string; json?: boolean; parent?: string; subject?: string; keyAlgorithm: string; days?: string; pathLen?: string }) => {
      const c = await api<Ca>(server(o), 'POST', '/api/v1/cas', {
        name,
        keyAlgorithm: o.keyAlgorithm,
        ...(o.parent ? { parent: o.parent } : {}),
        ...(o.subject ? { subject: o.subject } : {}),
        ...(o.days ? { validityDays: parseDays(o.days) } : {}),
        ...(o.pathLen !== undefined ? { pathLen: Number(o.pathLen) } : {}),
      });
      print(o.json, c, () => `created ${c.kind} CA ${c.name} (${c.id}) ${c.subject}, valid until ${c.notAfter}`);
    });
  withServer(ca.command('registration-code').description('a single-use code (valid one hour, for this token) to prove possession of an outside CA key: sign a verification certificate with subject CN = code'))
    .action(async (o: Opts) => {
      const c = await api<{ registrationCode: string; expiresAt: string }>(server(o), 'GET', '/api/v1/cas/registration-code');
      print(o.json, c, () => `${c.registrationCode}\n(valid until ${c.expiresAt}: make a verification certificate with subject CN=${c.registrationCode}, signed with the CA key)`);
    });

  withServer(ca.command('register').description('register a CA made outside certfleet (certfleet never signs with it)'))
    .requiredOption('--cert <file>', 'the CA certificate (PEM)')
    .option('--verification-cert <file>', 'PEM signed with the CA key, subject CN = a registration code (required unless --mode sni-only)')
    .addOption(new Option('--mode <mode>', 'default: proof of possession; sni-only: without').choices(['default', 'sni-only']))
    .option('--name <name>', 'CA name (default ext-<fingerprint prefix>)')
    .option('--auto-register', 'register device certificates of this CA on first connection (JITP with --template, else JITR)')
    .option('--template <name>', 'provisioning template for just-in-time provisioning (a template name or a JIT template as JSON)')
    .option('--inactive', 'register it inactive (the broker admits nothing under it until activated)')
    .action(async (o: Opts & { cert: string; verificationCert?: string; mode?: string; name?: string; autoRegister?: boolean; template?: string; inactive?: boolean }) => {
      const c = await api<Ca & { registrationMode?: string }>(server(o), 'POST', '/api/v1/cas/register', {
        caCertificate: readPem(o.cert),
        ...(o.verificationCert ? { verificationCertificate: readPem(o.verificationCert) } : {}),
        ...(o.mode ? { mode: o.mode } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.autoRegister ? { autoRegistration: true } : {}),
        ...(o.template ? { provisioningTemplate: o.template } : {}),
        ...(o.inactive ? { status: 'inactive' } : {}),
      });
      print(o.json, c, () => `registered external CA ${c.name} (${c.id}) ${c.subject}, mode ${c.registrationMode ?? 'default'}, ${c.status}, auto-registration ${c.autoRegistration ? 'on' : 'off'}`);
    });

  withServer(ca.command('list').description('list CAs')).action(async (o: { data: string; json?: boolean }) => {
    const { items } = await api<{ items: Ca[] }>(server(o), 'GET', '/api/v1/cas');
    print(o.json, { items }, () => table(items, ['id', 'name', 'kind', 'status', 'keyAlgorithm', 'notAfter', 'subject']));
  });

  withServer(ca.command('get <ca>').description('show a CA by id or name')).action(async (id: string, o: Opts) => {
    const c = await api<Ca>(server(o), 'GET', `/api/v1/cas/${seg(id)}`);
    print(o.json, c, () => describe(c));
  });

  withServer(ca.command('update <ca>').description('change what happens to device certificates this CA signed (just-in-time registration and provisioning)'))
    .addOption(new Option('--auto-registration <on|off>', 'register device certificates of this CA on first connection').choices(['on', 'off']))
    .option('--template <name>', 'provisioning template applied on first connection')
    .option('--no-template', 'no provisioning template')
    .option('--crl-shards <n>', 'partition the CRL into N shards (only before the CA has issued certificates)')
    .option('--renew-after-expiry <duration>', 'let its device certificates renew up to e.g. 14d after expiry (0 turns it off)')
    .action(async (id: string, o: Opts & { autoRegistration?: 'on' | 'off'; template?: string | false; crlShards?: string; renewAfterExpiry?: string }) => {
      const body = {
        ...(o.autoRegistration ? { autoRegistration: o.autoRegistration === 'on' } : {}),
        ...(o.crlShards !== undefined ? { crlShards: Number(o.crlShards) } : {}),
        ...(o.template !== undefined ? { provisioningTemplate: o.template === false ? null : o.template } : {}),
        ...(o.renewAfterExpiry !== undefined ? { renewAfterExpiryDays: parseDays(o.renewAfterExpiry) } : {}),
      };
      if (Object.keys(body).length === 0) throw new CertfleetError('bad-request', 'nothing to change: give --auto-registration, --template, --no-template, --crl-shards or --renew-after-expiry');
      const c = await api<Ca>(server(o), 'PATCH', `/api/v1/cas/${seg(id)}`, body);
      print(o.json, c, () => changed(c));
    });

  for (const [op, status] of [
    ['activate', 'active'],
    ['deactivate', 'inactive'],
  ] as const) {
    withServer(ca.command(`${op} <ca>`).description(status === 'inactive' ? 'make a CA inactive: the broker stops admitting devices under it at once (reversible)' : 'make an inactive CA active again')).action(async (id: string, o: Opts) => {
      const c = await api<Ca>(server(o), 'PATCH', `/api/v1/cas/${seg(id)}`, { status });
      print(o.json, c, () => `CA ${c.name} is ${c.status}`);
    });
  }

  withServer(ca.command('revoke <ca>').description('revoke a CA (final): nothing under it is trusted any more'))
    .option('--reason <reason>', 'RFC 5280 reason', 'cACompromise')
    .action(async (id: string, o: Opts & { reason: string }) => {
      const c = await api<Ca>(server(o), 'POST', `/api/v1/cas/${seg(id)}/revoke`, { reason: o.reason });
      print(o.json, c, () => `CA ${c.name} is ${c.status}`);
    });
}
