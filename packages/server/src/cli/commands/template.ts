/** certfleet template … (provisioning templates for fleet provisioning by claim; checked on the server) */
import type { Command } from 'commander';
import { api } from '../client.js';
import { table } from '../format.js';
import { fields, listAll, print, readJsonObject, seg, server, withServer } from './common.js';

interface Template {
  name: string;
  template: { policies?: string[]; thing?: { name?: string; override?: string } } & Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

type Opts = { data: string; json?: boolean };


const summary = (t: Template) => ({
  name: t.name,
  thing: t.template.thing?.name ?? '',
  override: t.template.thing?.override ?? '',
  policies: (t.template.policies ?? []).join(','),
  updatedAt: t.updatedAt,
});

export function templateCommands(cmd: Command): void {
  const template = cmd.command('template').description('provisioning templates: what a device provisioned by claim becomes');

  withServer(template.command('create <name>').description('create a provisioning template'))
    .requiredOption('--file <file>', 'JSON template (- reads stdin)')
    .action(async (name: string, o: Opts & { file: string }) => {
      const t = await api<Template>(server(o), 'POST', '/api/v1/provisioning-templates', { name, template: readJsonObject(o.file, '{ "thing": { "name": … }, … }') });
      print(o.json, t, () => `created provisioning template ${t.name}`);
    });

  withServer(template.command('update <name>').description('replace a provisioning template'))
    .requiredOption('--file <file>', 'JSON template (- reads stdin)')
    .action(async (name: string, o: Opts & { file: string }) => {
      const t = await api<Template>(server(o), 'PUT', `/api/v1/provisioning-templates/${seg(name)}`, { template: readJsonObject(o.file, '{ "thing": { "name": … }, … }') });
      print(o.json, t, () => `replaced provisioning template ${t.name}`);
    });

  withServer(template.command('list').description('list provisioning templates')).action(async (o: Opts) => {
    const items = await listAll<Template>(server(o), '/api/v1/provisioning-templates');
    print(o.json, { items }, () => table(items.map(summary), ['name', 'thing', 'override', 'policies', 'updatedAt']));
  });

  withServer(template.command('get <name>').description('show a provisioning template')).action(async (name: string, o: Opts) => {
    const t = await api<Template>(server(o), 'GET', `/api/v1/provisioning-templates/${seg(name)}`);
    print(o.json, t, () => `${fields([['template', t.name], ['created', t.createdAt], ['updated', t.updatedAt]])}\n\n${JSON.stringify(t.template, null, 2)}`);
  });

  withServer(template.command('delete <name>').description('delete a provisioning template (its claims can no longer provision)')).action(async (name: string, o: Opts) => {
    await api(server(o), 'DELETE', `/api/v1/provisioning-templates/${seg(name)}`);
    print(o.json, { deleted: name }, () => `deleted provisioning template ${name}`);
  });
}
