/** certfleet tenant …: tenants selected by TLS SNI, each an isolated data set (admin, default tenant only). */
import type { Command } from 'commander';
import { api, clientConfig, type ClientConfig } from '../client.js';
import { table } from '../format.js';
import { print, seg, withServer } from './common.js';

/** Tenants are managed from the node's own (default) tenant, whatever --tenant says. */
const server = (o: { data?: string }): ClientConfig => clientConfig(o.data, '');

interface Tenant {
  name: string;
  sniHosts: string[];
  createdAt: string;
  publicUrl: string;
  adminToken?: string;
  cliJson?: string;
}

const collect = (v: string, acc: string[]): string[] => [...acc, ...v.split(',').map((h) => h.trim()).filter(Boolean)];

export function tenantCommands(cmd: Command): void {
  const tenant = cmd.command('tenant').description('tenants: isolated data sets selected by the TLS server name (SNI) devices and operators send');
  withServer(tenant.command('create <name>').description("create and start a tenant; its admin token is printed once and written to DATA/tenants/NAME/cli.json"))
    .requiredOption('--sni <host...>', 'host names that select the tenant (repeatable or comma-separated)', collect, [])
    .action(async (name: string, o: { data: string; json?: boolean; sni: string[] }) => {
      const t = await api<Tenant>(server(o), 'POST', '/api/v1/tenants', { name, sniHosts: o.sni });
      print(o.json, t, () =>
        [
          `created tenant ${t.name} (SNI ${t.sniHosts.join(', ')}); CRLs and OCSP under ${t.publicUrl}`,
          `admin token (shown once; also in ${t.cliJson}): ${t.adminToken}`,
          `use it with: certfleet --tenant ${t.name} …`,
        ].join('\n'),
      );
    });
  withServer(tenant.command('list').description('list tenants')).action(async (o: { data: string; json?: boolean }) => {
    const { items } = await api<{ items: Tenant[] }>(server(o), 'GET', '/api/v1/tenants');
    print(o.json, { items }, () => table(items.map((t) => ({ ...t, sniHosts: t.sniHosts.join(',') })), ['name', 'sniHosts', 'createdAt', 'publicUrl']));
  });
  withServer(tenant.command('delete <name>').description('stop a tenant: its SNI hosts select the default tenant from now on; its data stays unless --purge'))
    .option('--purge', 'also remove its data dir')
    .action(async (name: string, o: { data: string; json?: boolean; purge?: boolean }) => {
      await api<undefined>(server(o), 'DELETE', `/api/v1/tenants/${seg(name)}${o.purge ? '?purge=true' : ''}`);
      print(o.json, { name, deleted: true, purged: o.purge ?? false }, () => `deleted tenant ${name}${o.purge ? ' and its data' : ''}`);
    });
}
