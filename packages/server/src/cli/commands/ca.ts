/** certfleet ca … */
import type { Command } from 'commander';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { print, server, withServer } from './common.js';

interface Ca {
  id: string;
  name: string;
  kind: string;
  status: string;
  keyAlgorithm: string;
  subject: string;
  notAfter: string;
  parentId: string | null;
}

export function caCommands(cmd: Command): void {
  const ca = cmd.command('ca').description('certificate authorities');
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
  withServer(ca.command('list').description('list CAs')).action(async (o: { data: string; json?: boolean }) => {
    const { items } = await api<{ items: Ca[] }>(server(o), 'GET', '/api/v1/cas');
    print(o.json, { items }, () => table(items, ['id', 'name', 'kind', 'status', 'keyAlgorithm', 'notAfter', 'subject']));
  });
}
