/** certfleet thing … */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CertfleetError } from '../../errors.js';
import { api } from '../client.js';
import { table } from '../format.js';
import { writeOut, type Issued } from './cert.js';
import { attr, fields, listAll, print, seg, server, withServer } from './common.js';

interface Thing {
  name: string;
  attributes: Record<string, string>;
  createdAt: string;
  updatedAt?: string;
}

interface ThingDetail extends Thing {
  /** Direct groups (depth 0) and their ancestors, nearest first. */
  groups: { name: string; depth: number }[];
  certificates: { id: string; status: string; notAfter: string; subject: string }[];
}

const attrs = (a: Record<string, string>): string =>
  Object.entries(a)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ') || '(none)';

function describe(t: ThingDetail): string {
  const direct = t.groups.filter((g) => g.depth === 0).map((g) => g.name);
  const inherited = t.groups.filter((g) => g.depth > 0).map((g) => `${g.name} (${g.depth} up)`);
  const head = fields([
    ['thing', t.name],
    ['attributes', attrs(t.attributes)],
    ['created', t.createdAt],
    ...(t.updatedAt ? [['updated', t.updatedAt] as const] : []),
    ['groups', direct.join(', ') || '(none)'],
    ...(inherited.length ? [['via groups', inherited.join(', ')] as const] : []),
  ]);
  const certs = t.certificates.length ? table(t.certificates, ['id', 'status', 'notAfter', 'subject']) : '(none)';
  return `${head}\n\ncertificates:\n${certs}`;
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
    const items = await listAll<Thing>(server(o), '/api/v1/things');
    print(o.json, { items }, () => table(items.map((t) => ({ ...t, attributes: JSON.stringify(t.attributes) })), ['name', 'attributes', 'createdAt']));
  });
  withServer(thing.command('get <name>').description('show a thing with its groups and certificates')).action(async (name: string, o: { data: string; json?: boolean }) => {
    const t = await api<ThingDetail>(server(o), 'GET', `/api/v1/things/${seg(name)}`);
    print(o.json, t, () => describe(t));
  });
  withServer(thing.command('update <name>').description("replace a thing's attributes (no --attr: remove them all)"))
    .option('--attr <key=value>', 'attribute (repeatable)', attr, {})
    .action(async (name: string, o: { data: string; json?: boolean; attr: Record<string, string> }) => {
      const t = await api<Thing>(server(o), 'PATCH', `/api/v1/things/${seg(name)}`, { attributes: o.attr });
      print(o.json, t, () => `updated thing ${t.name}: ${attrs(t.attributes)}`);
    });
  withServer(
    thing
      .command('replace <name>')
      .description(
        'replace a device: a new certificate (from --csr, or with a key made by the server) takes over the thing, its groups and the policies of the old certificates; ' +
          'the old ones (--replaces, or every active and inactive one) are revoked, all in one step',
      ),
  )
    .option('--csr <file>', 'PEM CSR of the new device (its key stays there)')
    .option('--key-algorithm <alg>', 'let the server make the key: ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072')
    .requiredOption('--out <dir>', 'directory for cert.pem, chain.pem, ca.pem (and key.pem with --key-algorithm)')
    .addOption(
      new Option('--reason <reason>', 'RFC 5280 reason for the old certificates')
        .choices(['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'])
        .default('superseded'),
    )
    .option('--replaces <id>', 'replace only this certificate (id or serial)')
    .action(async (name: string, o: { data: string; json?: boolean; csr?: string; keyAlgorithm?: string; out: string; reason: string; replaces?: string }) => {
      if ((o.csr === undefined) === (o.keyAlgorithm === undefined)) {
        throw new CertfleetError('bad-request', 'give either --csr FILE or --key-algorithm ALG');
      }
      const r = await api<Issued & { revoked: string[]; policies: string[] }>(server(o), 'POST', `/api/v1/things/${seg(name)}/replace-certificate`, {
        ...(o.csr !== undefined ? { csr: readFileSync(o.csr, 'utf8') } : { keyAlgorithm: o.keyAlgorithm }),
        reason: o.reason,
        ...(o.replaces !== undefined ? { replaces: o.replaces } : {}),
      });
      const files = writeOut(o.out, r);
      print(o.json, { id: r.id, serial: r.serial, revoked: r.revoked, policies: r.policies, files }, () =>
        [
          `issued ${r.id} for thing ${name}`,
          `serial ${r.serial}`,
          ...r.revoked.map((id) => `revoked ${id} (${o.reason})`),
          `policies ${r.policies.join(', ') || '(none)'}`,
          ...files,
        ].join('\n'),
      );
    });
  withServer(thing.command('delete <name>').description('delete a thing that holds no certificate')).action(async (name: string, o: { data: string; json?: boolean }) => {
    await api(server(o), 'DELETE', `/api/v1/things/${seg(name)}`);
    print(o.json, { deleted: name }, () => `deleted thing ${name}`);
  });
}
