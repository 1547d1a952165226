/** certfleet token … */
import type { Command } from 'commander';
import { api } from '../client.js';
import { parseDays, table } from '../format.js';
import { print, server, withServer } from './common.js';

interface Token {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  token?: string;
}

export function tokenCommands(cmd: Command): void {
  const token = cmd.command('token').description('operator API tokens (admin)');
  withServer(token.command('create').description('create a token; its secret is printed once'))
    .requiredOption('--scope <scopes>', 'admin, operator, auditor, provisioner (comma-separated)')
    .option('--name <name>', 'what the token is for', 'cli')
    .option('--expires <duration>', 'e.g. 30d')
    .action(async (o: { data: string; json?: boolean; scope: string; name: string; expires?: string }) => {
      const t = await api<Token>(server(o), 'POST', '/api/v1/tokens', {
        name: o.name,
        scopes: o.scope.split(',').map((x) => x.trim()).filter(Boolean),
        ...(o.expires ? { expiresInDays: parseDays(o.expires) } : {}),
      });
      print(o.json, t, () => `created token ${t.id} (${t.scopes.join(',')})${t.expiresAt ? `, expires ${t.expiresAt}` : ''}\n${t.token}`);
    });
  withServer(token.command('list').description('list tokens (never their secrets)')).action(async (o: { data: string; json?: boolean }) => {
    const { items } = await api<{ items: Token[] }>(server(o), 'GET', '/api/v1/tokens');
    print(o.json, { items }, () => table(items.map((t) => ({ ...t, scopes: t.scopes.join(',') })), ['id', 'name', 'scopes', 'createdAt', 'expiresAt', 'revokedAt', 'lastUsedAt']));
  });
  withServer(token.command('revoke <id>').description('revoke a token at once')).action(async (id: string, o: { data: string; json?: boolean }) => {
    const t = await api<Token>(server(o), 'POST', `/api/v1/tokens/${encodeURIComponent(id)}/revoke`);
    print(o.json, t, () => `revoked token ${t.id}`);
  });
}
