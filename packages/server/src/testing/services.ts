/** A fully wired node on a throwaway SQLite database, for tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTING_ISSUER, SETTING_ROOT } from '../registry/authorities.js';
import type { Scope } from '../registry/tokens.js';
import { openServices, type Services } from '../services.js';
import { openWithRetry } from '../store/test-dialects.js';

export interface TestNode {
  readonly s: Services;
  readonly dir: string;
  readonly rootId: string;
  readonly issuingId: string;
  token(...scopes: Scope[]): Promise<string>;
  close(): Promise<void>;
}

export async function testNode(opts: { database?: string; schema?: string; now?: () => Date } = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-test-'));
  // PostgreSQL opens retry under load, as the store's own tests do (see store/test-dialects.ts).
  const open = () =>
    openServices({
      database: opts.database ?? join(dir, 'certfleet.db'),
      masterKeyFile: join(dir, 'master.key'),
      createMasterKey: true,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.schema ? { schema: opts.schema } : {}),
    });
  const s = opts.database?.startsWith('postgres') ? await openWithRetry(open) : await open();
  const root = await s.authorities.createRoot({ name: 'root', subject: 'CN=Test Root CA' });
  const issuing = await s.authorities.createIntermediate({ name: 'issuing', subject: 'CN=Test Issuing CA', parentId: root.id });
  await s.store.putSetting(SETTING_ROOT, root.id);
  await s.store.putSetting(SETTING_ISSUER, issuing.id);
  return {
    s,
    dir,
    rootId: root.id,
    issuingId: issuing.id,
    token: async (...scopes) => (await s.tokens.create('test', scopes.length ? scopes : ['admin'])).token,
    close: async () => {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
