/** certfleet ca cross-sign | dependents | retire | set-default | default: issuer rotation. */
import type { Command } from 'commander';
import { api } from '../client.js';
import { table } from '../format.js';
import { print, seg, server, withServer } from './common.js';

type Opts = { data: string; json?: boolean };

export function issuerRotationCommands(ca: Command): void {
  withServer(ca.command('cross-sign <ca>').description("cross-sign a CA (a new root) with an older root, so devices trusting only the old root accept the new CA's certificates"))
    .requiredOption('--by <ca>', 'the old root, id or name')
    .action(async (id: string, o: Opts & { by: string }) => {
      const x = await api<{ id: string; serial: string; notAfter: string; certificatePem: string }>(server(o), 'POST', `/api/v1/cas/${seg(id)}/cross-sign`, { by: o.by });
      print(o.json, x, () => `cross certificate ${x.id} (serial ${x.serial}), valid until ${x.notAfter}`);
    });
  withServer(ca.command('dependents <ca>').description('active certificates that still depend on a CA (issued by it or a CA below it)'))
    .option('--limit <n>', 'how many to list', '100')
    .action(async (id: string, o: Opts & { limit: string }) => {
      const d = await api<{ count: number; items: Array<{ id: string; thingName: string | null; subject: string; notAfter: string; issuerId: string }> }>(server(o), 'GET', `/api/v1/cas/${seg(id)}/dependents?limit=${seg(o.limit)}`);
      print(o.json, d, () => `${d.count} active certificates depend on ${id}${d.items.length ? `\n${table(d.items, ['id', 'thingName', 'subject', 'issuerId', 'notAfter'])}` : ''}`);
    });
  withServer(ca.command('set-default <ca>').description('make an active intermediate CA the default issuer: new certificates, EST and fleet provisioning are issued from it'))
    .action(async (id: string, o: Opts) => {
      const r = await api<{ ca: { id: string; name: string }; previous: string | null }>(server(o), 'PUT', '/api/v1/cas/default-issuer', { caId: id });
      print(o.json, r, () => `CA ${r.ca.name} (${r.ca.id}) is the default issuer${r.previous && r.previous !== r.ca.id ? ` (was ${r.previous})` : ''}`);
    });
  withServer(ca.command('default').description('the default issuer'))
    .action(async (o: Opts) => {
      const r = await api<{ ca: { id: string; name: string; status: string; notAfter: string } }>(server(o), 'GET', '/api/v1/cas/default-issuer');
      print(o.json, r, () => `${r.ca.name} (${r.ca.id}), ${r.ca.status}, valid until ${r.ca.notAfter}`);
    });
  withServer(ca.command('retire <ca>').description('retire a CA (inactive); refused while active certificates depend on it'))
    .option('--force', 'retire it even so')
    .action(async (id: string, o: Opts & { force?: boolean }) => {
      const r = await api<{ ca: { name: string; status: string }; dependents: number }>(server(o), 'POST', `/api/v1/cas/${seg(id)}/retire`, { force: o.force ?? false });
      print(o.json, r, () => `CA ${r.ca.name} is ${r.ca.status}${r.dependents > 0 ? ` (forced: ${r.dependents} active certificates still depended on it)` : ''}`);
    });
}
