/** certfleet group … (thing groups: a forest; policies attached to a group reach every group below it) */
import type { Command } from 'commander';
import { CertfleetError } from '../../errors.js';
import { api } from '../client.js';
import { table } from '../format.js';
import { attr, fields, listAll, print, seg, server, withServer } from './common.js';

interface Group {
  name: string;
  parent: string | null;
  description: string | null;
  attributes: Record<string, string>;
  createdAt: string;
}

interface Thing {
  name: string;
  attributes: Record<string, string>;
  createdAt: string;
}

type Opts = { data: string; json?: boolean };

const describe = (g: Group): string =>
  fields([
    ['group', g.name],
    ['parent', g.parent ?? '(root)'],
    ['description', g.description ?? ''],
    [
      'attributes',
      Object.entries(g.attributes)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '(none)',
    ],
    ['created', g.createdAt],
  ]);

export function groupCommands(cmd: Command): void {
  const group = cmd.command('group').description('thing groups');
  withServer(group.command('create <name>').description('create a thing group, optionally under a parent'))
    .option('--parent <group>', 'parent group')
    .option('--description <text>')
    .option('--attr <key=value>', 'attribute (repeatable)', attr, {})
    .action(async (name: string, o: Opts & { parent?: string; description?: string; attr: Record<string, string> }) => {
      const g = await api<Group>(server(o), 'POST', '/api/v1/thing-groups', {
        name,
        ...(o.parent ? { parent: o.parent } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        attributes: o.attr,
      });
      print(o.json, g, () => `created group ${g.name}${g.parent ? ` under ${g.parent}` : ''}`);
    });

  withServer(group.command('list').description('list thing groups')).action(async (o: Opts) => {
    const items = await listAll<Group>(server(o), '/api/v1/thing-groups');
    print(o.json, { items }, () => table(items.map((g) => ({ ...g, parent: g.parent ?? '' })), ['name', 'parent', 'description', 'createdAt']));
  });

  withServer(group.command('get <name>').description('show a thing group')).action(async (name: string, o: Opts) => {
    const g = await api<Group>(server(o), 'GET', `/api/v1/thing-groups/${seg(name)}`);
    print(o.json, g, () => describe(g));
  });

  withServer(group.command('move <name>').description('move a group under another parent, or make it a root'))
    .option('--parent <group>', 'new parent')
    .option('--root', 'make it a root group')
    .action(async (name: string, o: Opts & { parent?: string; root?: boolean }) => {
      if ((o.parent === undefined) === !o.root) throw new CertfleetError('bad-request', 'name exactly one of --parent GROUP or --root');
      const g = await api<Group>(server(o), 'PATCH', `/api/v1/thing-groups/${seg(name)}`, { parent: o.root ? null : o.parent });
      print(o.json, g, () => `moved group ${g.name} ${g.parent ? `under ${g.parent}` : 'to the root'}`);
    });

  withServer(group.command('delete <name>').description('delete a group without child groups')).action(async (name: string, o: Opts) => {
    await api(server(o), 'DELETE', `/api/v1/thing-groups/${seg(name)}`);
    print(o.json, { deleted: name }, () => `deleted group ${name}`);
  });

  withServer(group.command('add-thing <group> <thing>').description('add a thing to a group')).action(async (g: string, t: string, o: Opts) => {
    await api(server(o), 'PUT', `/api/v1/thing-groups/${seg(g)}/things/${seg(t)}`);
    print(o.json, { group: g, thing: t }, () => `added thing ${t} to group ${g}`);
  });

  withServer(group.command('remove-thing <group> <thing>').description('remove a thing from a group')).action(async (g: string, t: string, o: Opts) => {
    await api(server(o), 'DELETE', `/api/v1/thing-groups/${seg(g)}/things/${seg(t)}`);
    print(o.json, { group: g, thing: t }, () => `removed thing ${t} from group ${g}`);
  });

  withServer(group.command('members <group>').description('the things directly in a group')).action(async (g: string, o: Opts) => {
    const items = await listAll<Thing>(server(o), `/api/v1/thing-groups/${seg(g)}/things`);
    print(o.json, { items }, () => table(items.map((t) => ({ ...t, attributes: JSON.stringify(t.attributes) })), ['name', 'attributes', 'createdAt']));
  });
}
