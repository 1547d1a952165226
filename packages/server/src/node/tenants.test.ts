import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dataDir } from '../config/data-dir.js';
import { tenantsJson } from '../tenancy/directory.js';
import { initDataDir } from './init.js';
import { Tenancy } from './tenants.js';

describe('Tenancy', () => {
  let root: string;
  let tenancy: Tenancy;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'certfleet-tenancy-'));
    await initDataDir({ data: root });
    tenancy = new Tenancy({ root: dataDir(root), database: dataDir(root).database, publicBase: () => 'http://localhost:8080/', apiPort: () => 8443 });
  });
  after(async () => {
    await tenancy.closeAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('makes each tenant its own data set: database, master key, CAs, token, cli.json with its server name', async () => {
    const [a, b] = await Promise.all([tenancy.create('acme', ['a.example', 'A2.example']), tenancy.create('beta', ['b.example'])]);
    assert.deepEqual(a.sniHosts, ['a.example', 'a2.example']);
    assert.equal(a.publicUrl, 'http://localhost:8080/tenants/acme');
    for (const t of [a, b]) {
      const dir = dataDir(join(root, 'tenants', t.name));
      for (const f of [dir.database, dir.masterKey, dir.tlsCert, dir.caFile]) assert.ok(existsSync(f), f);
      const cli = JSON.parse(readFileSync(t.cliJson, 'utf8')) as Record<string, string>;
      assert.deepEqual(cli, { url: 'https://localhost:8443', token: t.adminToken, caFile: dir.caFile, servername: t.sniHosts[0] });
    }
    assert.notEqual(readFileSync(dataDir(join(root, 'tenants', 'acme')).masterKey, 'hex'), readFileSync(dataDir(root).masterKey, 'hex'));
    const sa = tenancy.stack('acme')!.services;
    const sb = tenancy.stack('beta')!.services;
    assert.deepEqual((await sa.store.listCas()).map((c) => c.subject), ['CN=certfleet acme Root CA,O=certfleet', 'CN=certfleet acme Issuing CA,O=certfleet']);
    // A token is a token of its own tenant only.
    await sa.tokens.authenticate(a.adminToken);
    await assert.rejects(sb.tokens.authenticate(a.adminToken), { code: 'unauthorized' });
    // Server names route to the stack; others, and none, to the default tenant.
    assert.equal(tenancy.route('A2.EXAMPLE')?.name, 'acme');
    assert.equal(tenancy.route('b.example')?.name, 'beta');
    assert.equal(tenancy.route('c.example'), undefined);
  });

  it('refuses a taken name or host, one creation at a time, leaving nothing behind', async () => {
    const results = await Promise.allSettled([tenancy.create('gamma', ['g.example']), tenancy.create('gamma', ['g2.example'])]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    await assert.rejects(tenancy.create('delta', ['x.example', 'b.example']), { code: 'conflict', message: /b\.example already selects tenant beta/ });
    assert.equal(existsSync(join(root, 'tenants', 'delta')), false);
    await assert.rejects(tenancy.create('Delta', ['d.example']), { code: 'bad-request' });
    await assert.rejects(tenancy.create('delta', ['10.0.0.1']), { code: 'bad-request' });
    assert.deepEqual(tenancy.list().map((t) => t.name), ['acme', 'beta', 'gamma']);
  });

  it('deletes a tenant: unrouted and unlisted at once, its data kept unless purged', async () => {
    await tenancy.delete('gamma', false);
    assert.equal(tenancy.route('g.example'), undefined);
    assert.ok(existsSync(join(root, 'tenants', 'gamma', 'certfleet.db')));
    await assert.rejects(tenancy.create('gamma', ['g.example']), { code: 'conflict', message: /earlier tenant gamma/ });
    await tenancy.delete('beta', true);
    assert.equal(existsSync(join(root, 'tenants', 'beta')), false);
    await assert.rejects(tenancy.delete('beta', false), { code: 'not-found' });
    assert.deepEqual((JSON.parse(readFileSync(tenantsJson(root), 'utf8')) as { tenants: Array<{ name: string }> }).tenants.map((t) => t.name), ['acme']);
  });

  it('opens every listed tenant again, as serve does at start', async () => {
    const again = new Tenancy({ root: dataDir(root), database: dataDir(root).database, publicBase: () => 'http://localhost:9090', apiPort: () => 9443 });
    await tenancy.closeAll();
    try {
      await again.openAll();
      assert.equal(again.route('a.example')?.name, 'acme');
      assert.equal((JSON.parse(readFileSync(join(root, 'tenants', 'acme', 'cli.json'), 'utf8')) as { url: string }).url, 'https://localhost:9443');
      assert.equal(await again.stack('acme')!.services.store.getSetting('http.public-url'), 'http://localhost:9090/tenants/acme');
    } finally {
      await again.closeAll();
    }
  });
});
