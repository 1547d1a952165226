import { it } from 'node:test';
import assert from 'node:assert/strict';
import { caFixture, rejectsWith } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const KEY = 'ca.issuing';
const entry = (caId: string) => ({ actor: 'tok-1', action: 'ca.set-default-issuer', target: `ca:${caId}`, details: { to: caId } });

await describeOnBothDialects('default issuer', ({ fresh }) => {
  it('names an active CA with its audit entry; an inactive, revoked or missing CA changes nothing', async () => {
    const { store: s } = await fresh();
    const root = caFixture();
    const first = caFixture({ kind: 'intermediate', parentId: root.id });
    const second = caFixture({ kind: 'intermediate', parentId: root.id });
    const off = caFixture({ kind: 'intermediate', parentId: root.id, status: 'inactive' });
    const gone = caFixture({ kind: 'intermediate', parentId: root.id, status: 'revoked' });
    for (const c of [root, first, second, off, gone]) await s.insertCa(c);

    await s.putDefaultIssuer(KEY, first.id, entry(first.id));
    assert.equal(await s.getSetting(KEY), first.id);
    await s.putDefaultIssuer(KEY, second.id, entry(second.id));
    assert.equal(await s.getSetting(KEY), second.id);

    for (const id of [off.id, gone.id, 'ca-missing']) await rejectsWith(s.putDefaultIssuer(KEY, id, entry(id)), 'invalid-state');
    assert.equal(await s.getSetting(KEY), second.id);
    const log = (await s.listAuditLog({ limit: 10, order: 'asc' })).items.filter((e) => e.action === 'ca.set-default-issuer');
    assert.deepEqual(log.map((e) => e.target), [`ca:${first.id}`, `ca:${second.id}`], 'refused changes leave no audit entry');
  });
});
