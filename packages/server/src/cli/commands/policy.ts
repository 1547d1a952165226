/** certfleet policy … (documents are checked on the server; the CLI only makes sure it sends JSON) */
import type { Command } from 'commander';
import { CertfleetError } from '../../errors.js';
import { api } from '../client.js';
import { table } from '../format.js';
import { fields, listAll, positiveInt, print, readJsonObject, seg, server, withServer } from './common.js';

interface Policy {
  name: string;
  defaultVersion: number;
  versions: { version: number; isDefault: boolean; createdAt: string }[];
  document: unknown;
  createdAt: string;
  updatedAt: string;
}

interface PolicyVersion {
  name: string;
  version: number;
  isDefault: boolean;
  document: unknown;
  createdAt: string;
}

interface Attachment {
  policy: string;
  targetType: 'certificate' | 'group';
  target: string;
  createdAt: string;
}

type Opts = { data: string; json?: boolean };


/** `--cert ID` or `--group G`, exactly one. */
function target(o: { cert?: string; group?: string }): { certificate: string } | { group: string } {
  if ((o.cert === undefined) === (o.group === undefined)) throw new CertfleetError('bad-request', 'name exactly one of --cert ID or --group GROUP');
  return o.cert !== undefined ? { certificate: o.cert } : { group: o.group! };
}

const targetText = (a: { targetType: string; target: string }) => `${a.targetType} ${a.target}`;
const document = (d: unknown) => JSON.stringify(d, null, 2);

export function policyCommands(cmd: Command): void {
  const policy = cmd.command('policy').description('policies: what devices may do over MQTT');

  withServer(policy.command('create <name>').description('create a policy (version 1, the default)'))
    .requiredOption('--file <file>', 'JSON policy document (- reads stdin)')
    .action(async (name: string, o: Opts & { file: string }) => {
      const p = await api<Policy>(server(o), 'POST', '/api/v1/policies', { name, document: readJsonObject(o.file, '{ "statements": [...] }') });
      print(o.json, p, () => `created policy ${p.name} (version ${p.defaultVersion}, the default)`);
    });

  withServer(policy.command('list').description('list policies')).action(async (o: Opts) => {
    const items = await listAll<{ name: string; defaultVersion: number; updatedAt: string }>(server(o), '/api/v1/policies');
    print(o.json, { items }, () => table(items, ['name', 'defaultVersion', 'updatedAt']));
  });

  withServer(policy.command('get <name>').description('show a policy: its default document, or one version'))
    .option('--version <v>', 'a version instead of the default', positiveInt)
    .action(async (name: string, o: Opts & { version?: number }) => {
      if (o.version !== undefined) {
        const v = await api<PolicyVersion>(server(o), 'GET', `/api/v1/policies/${seg(name)}/versions/${seg(o.version)}`);
        print(o.json, v, () => `${fields([['policy', v.name], ['version', `${v.version}${v.isDefault ? ' (default)' : ''}`], ['created', v.createdAt]])}\n\n${document(v.document)}`);
        return;
      }
      const p = await api<Policy>(server(o), 'GET', `/api/v1/policies/${seg(name)}`);
      const versions = p.versions.map((v) => `${v.version}${v.isDefault ? '*' : ''}`).join(', ');
      print(o.json, p, () => `${fields([['policy', p.name], ['default version', String(p.defaultVersion)], ['versions', versions], ['updated', p.updatedAt]])}\n\n${document(p.document)}`);
    });

  withServer(policy.command('delete <name>').description('delete a policy that is attached to nothing')).action(async (name: string, o: Opts) => {
    await api(server(o), 'DELETE', `/api/v1/policies/${seg(name)}`);
    print(o.json, { deleted: name }, () => `deleted policy ${name}`);
  });

  const version = policy.command('version').description('policy versions (at most 5 are kept)');
  withServer(version.command('create <name>').description('add a version of a policy'))
    .requiredOption('--file <file>', 'JSON policy document (- reads stdin)')
    .option('--set-default', 'make it the version devices are evaluated against')
    .action(async (name: string, o: Opts & { file: string; setDefault?: boolean }) => {
      const v = await api<PolicyVersion>(server(o), 'POST', `/api/v1/policies/${seg(name)}/versions`, { document: readJsonObject(o.file, '{ "statements": [...] }'), setDefault: o.setDefault ?? false });
      print(o.json, v, () => `created version ${v.version} of policy ${v.name}${v.isDefault ? ', now the default' : ''}`);
    });
  withServer(version.command('delete').description('delete a version that is not the default'))
    .argument('<name>')
    .argument('<version>', 'version number', positiveInt)
    .action(async (name: string, v: number, o: Opts) => {
      await api(server(o), 'DELETE', `/api/v1/policies/${seg(name)}/versions/${seg(v)}`);
      print(o.json, { policy: name, deletedVersion: v }, () => `deleted version ${v} of policy ${name}`);
    });

  withServer(policy.command('set-default').description('make a version the default'))
    .argument('<name>')
    .argument('<version>', 'version number', positiveInt)
    .action(async (name: string, v: number, o: Opts) => {
      const p = await api<Policy>(server(o), 'PUT', `/api/v1/policies/${seg(name)}/default-version`, { version: v });
      print(o.json, p, () => `policy ${p.name}: version ${p.defaultVersion} is the default`);
    });

  for (const op of ['attach', 'detach'] as const) {
    withServer(policy.command(`${op} <name>`).description(`${op} a policy ${op === 'attach' ? 'to' : 'from'} a certificate or a thing group`))
      .option('--cert <id>', 'certificate id (SHA-256 fingerprint)')
      .option('--group <group>', 'thing group (reaches every group below it)')
      .action(async (name: string, o: Opts & { cert?: string; group?: string }) => {
        const a = await api<Attachment>(server(o), 'POST', `/api/v1/policies/${seg(name)}/${op}`, target(o));
        print(o.json, a, () => `${op === 'attach' ? 'attached' : 'detached'} policy ${name} ${op === 'attach' ? 'to' : 'from'} ${targetText(a)}`);
      });
  }

  withServer(policy.command('attachments <name>').description('where a policy is attached')).action(async (name: string, o: Opts) => {
    const items = await listAll<Attachment>(server(o), `/api/v1/policies/${seg(name)}/attachments`);
    print(o.json, { items }, () => table(items, ['targetType', 'target', 'createdAt']));
  });
}
