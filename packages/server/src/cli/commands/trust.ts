/** certfleet trust …: the versioned trust bundle (trust-anchor rollover). */
import type { Command } from 'commander';
import { api } from '../client.js';
import { fields, print, seg, server, withServer } from './common.js';

interface Status {
  version: number;
  roots: string[];
  things: number;
  acknowledged: number;
  pending: number;
}

type Opts = { data: string; json?: boolean };

export function trustCommands(cmd: Command): void {
  const trust = cmd.command('trust').description('the trust bundle: roots devices trust, versioned, with acknowledgements');
  withServer(trust.command('add-root <ca>').description('publish a root into the trust bundle (version + 1); every device gets it retained')).action(async (ca: string, o: Opts) => {
    const b = await api<{ version: number; roots: string[] }>(server(o), 'POST', '/api/v1/trust-bundle/roots', { caId: ca });
    print(o.json, b, () => `trust bundle version ${b.version}: ${b.roots.join(', ')}`);
  });
  withServer(trust.command('remove-root <ca>').description('remove a root; refused while devices have not acknowledged a bundle with its successor'))
    .option('--force', 'remove it even so')
    .action(async (ca: string, o: Opts & { force?: boolean }) => {
      const b = await api<{ version: number; roots: string[]; pendingAtRemoval: number }>(server(o), 'DELETE', `/api/v1/trust-bundle/roots/${seg(ca)}${o.force ? '?force=true' : ''}`);
      print(o.json, b, () => `trust bundle version ${b.version}: ${b.roots.join(', ')}${b.pendingAtRemoval > 0 ? ` (forced: ${b.pendingAtRemoval} things had not acknowledged)` : ''}`);
    });
  withServer(trust.command('status').description('current version, roots, and how many devices acknowledged it')).action(async (o: Opts) => {
    const st = await api<Status>(server(o), 'GET', '/api/v1/trust-bundle');
    print(o.json, st, () =>
      fields([
        ['version', String(st.version)],
        ['roots', st.roots.join(', ')],
        ['things', String(st.things)],
        ['acknowledged', String(st.acknowledged)],
        ['pending', String(st.pending)],
      ]),
    );
  });
}
