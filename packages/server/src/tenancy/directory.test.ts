import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TenantDirectory, tenantRoot, tenantsJson } from './directory.js';

describe('TenantDirectory', () => {
  const root = mkdtempSync(join(tmpdir(), 'certfleet-tenants-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const at = '2026-01-01T00:00:00.000Z';

  it('starts empty, adds, finds, removes, and keeps only the finished file', () => {
    const d = new TenantDirectory(root);
    assert.deepEqual(d.list(), []);
    d.add({ name: 'acme', sniHosts: ['a.example'], createdAt: at });
    d.add({ name: 'beta', sniHosts: ['b.example', 'b2.example'], createdAt: at });
    assert.deepEqual(new TenantDirectory(root).list().map((t) => t.name), ['acme', 'beta']);
    assert.deepEqual(d.get('beta')?.sniHosts, ['b.example', 'b2.example']);
    assert.equal(statSync(tenantsJson(root)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(root), ['tenants.json'], 'no temporary file left behind');
    assert.equal(d.remove('acme'), true);
    assert.equal(d.remove('acme'), false);
    assert.deepEqual(d.list().map((t) => t.name), ['beta']);
  });

  it('refuses a second tenant of the same name, or one claiming a host another tenant has', () => {
    const d = new TenantDirectory(root);
    assert.throws(() => d.add({ name: 'beta', sniHosts: ['c.example'], createdAt: at }), { code: 'conflict' });
    assert.throws(() => d.add({ name: 'gamma', sniHosts: ['c.example', 'b2.example'], createdAt: at }), { code: 'conflict', message: /b2\.example already selects tenant beta/ });
    assert.deepEqual(d.list().map((t) => t.name), ['beta']);
  });

  it('says plainly when the file is damaged', () => {
    writeFileSync(tenantsJson(root), '{"tenants": [');
    assert.throws(() => new TenantDirectory(root).list(), { code: 'invalid-state' });
    writeFileSync(tenantsJson(root), JSON.stringify({ tenants: [{ name: '../etc', sniHosts: ['x.example'] }] }));
    assert.throws(() => new TenantDirectory(root).list(), { code: 'bad-request' });
    assert.ok(readFileSync(tenantsJson(root), 'utf8'));
  });

  it('keeps each tenant in its own folder under tenants/', () => {
    assert.equal(tenantRoot('/data', 'acme'), join('/data', 'tenants', 'acme'));
    assert.throws(() => tenantRoot('/data', '../x'), { code: 'bad-request' });
  });
});
