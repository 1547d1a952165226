import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AUDIT_GENESIS_HASH, auditHash, type AuditInput, type Store } from './index.js';
import { T0, allBytes, at, caFixture, certificateFixture, rejectsWith, tokenFixture } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

let n = 0;
const audit = (action: string, target = 'x'): AuditInput => ({ actor: 'admin', action, target, details: { n: (n += 1) }, at: at(n) });

/** Appends `count` entries through appendAudit; returns nothing, the log is what matters. */
async function appendMany(store: Store, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await store.appendAudit({ actor: 'bench', action: 'noop', target: `t${i % 7}`, at: T0 });
}

await describeOnBothDialects('audit log', ({ fresh, dialect }) => {
  it('hashes as documented: netstrings of the stored fields, canonical details, 64 zeros before the first', async () => {
    const { store } = await fresh();
    const entry = await store.appendAudit({
      actor: 'tok-1', action: 'ca.create', target: 'ca:root', details: { b: [1, 'é', null], a: { d: true, c: 2.5 } }, at: T0,
    });
    const details = '{"a":{"c":2.5,"d":true},"b":[1,"é",null]}';
    const net = (s: string) => `${Buffer.byteLength(s)}:${s},`;
    const input = ['certfleet-audit-v1', '1', T0.toISOString(), 'tok-1', 'ca.create', 'ca:root', details, AUDIT_GENESIS_HASH].map(net).join('');
    assert.equal(entry.prevHash, '0'.repeat(64));
    assert.equal(entry.hash, createHash('sha256').update(input, 'utf8').digest('hex'));
    assert.equal(entry.hash, auditHash({ seq: 1, at: T0.toISOString(), actor: 'tok-1', action: 'ca.create', target: 'ca:root', details, prevHash: AUDIT_GENESIS_HASH }));
    const [stored] = (await store.listAuditLog({ limit: 1 })).items;
    assert.deepEqual(stored, entry);
    assert.deepEqual(stored?.details, { a: { c: 2.5, d: true }, b: [1, 'é', null] });
  });

  it('appends one entry per audited change, in the change’s transaction, and none for a refused change', async () => {
    const { store: s } = await fresh();
    const ca = caFixture();
    const cert = certificateFixture(ca.id);
    const token = tokenFixture();
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['ca.create', () => s.createCaWithKey(ca, { keyStore: 'sealed-file', sealed: allBytes() }, audit('ca.create'))],
      ['ca.insert', () => s.insertCa(caFixture(), audit('ca.insert'))],
      ['ca.status', () => s.setCaStatus(ca.id, 'active', audit('ca.status'))],
      ['ca.update', () => s.updateCa(ca.id, { autoRegistration: true }, audit('ca.update'))],
      ['token.create', () => s.insertToken(token, audit('token.create'))],
      ['token.revoke', () => s.revokeToken(token.id, T0, audit('token.revoke'))],
      ['thing.create', () => s.createThing({ name: 'pump' }, audit('thing.create'))],
      ['thing.update', () => s.updateThing('pump', { attributes: { a: 'b' } }, audit('thing.update'))],
      ['certificate.issue', () => s.insertCertificate(cert, audit('certificate.issue'))],
      ['certificate.attach', () => s.attachCertificateToThing(cert.id, 'pump', audit('certificate.attach'))],
      ['certificate.revoke', () => s.setCertificateStatus(cert.id, 'active', 'revoked', { actor: 'a', at: T0 }, audit('certificate.revoke'))],
      ['certificate.detach', () => s.detachCertificate(cert.id, audit('certificate.detach'))],
      ['group.create', () => s.createGroup({ name: 'g' }, audit('group.create'))],
      ['group.create2', () => s.createGroup({ name: 'h' }, audit('group.create2'))],
      ['group.move', () => s.setGroupParent('h', 'g', audit('group.move'))],
      ['group.add', () => s.addThingToGroup('h', 'pump', audit('group.add'))],
      ['group.remove', () => s.removeThingFromGroup('h', 'pump', audit('group.remove'))],
      ['policy.create', () => s.createPolicy('p', {}, audit('policy.create'))],
      ['policy.version', () => s.createPolicyVersion('p', { v: 2 }, {}, audit('policy.version'))],
      ['policy.default', () => s.setDefaultPolicyVersion('p', 2, audit('policy.default'))],
      ['policy.deleteVersion', () => s.deletePolicyVersion('p', 1, audit('policy.deleteVersion'))],
      ['policy.attach', () => s.attachPolicy('p', { type: 'group', id: 'h' }, audit('policy.attach'))],
      ['policy.detach', () => s.detachPolicy('p', { type: 'group', id: 'h' }, audit('policy.detach'))],
      ['policy.delete', () => s.deletePolicy('p', audit('policy.delete'))],
      ['group.delete', () => s.deleteGroup('h', audit('group.delete'))],
      ['thing.delete', () => s.deleteThing('pump', audit('thing.delete'))],
    ];
    for (const [, step] of steps) await step();
    // Refused changes: the transaction rolls back, entry included.
    await rejectsWith(s.createThing({ name: 'g-thing-dup' }).then(() => s.createThing({ name: 'g-thing-dup' }, audit('dup'))), 'conflict');
    await rejectsWith(s.deleteGroup('g', audit('gone')).then(() => s.deleteGroup('g', audit('gone'))), 'not-found');
    await rejectsWith(s.createThing({ name: 'x' }, { actor: '', action: 'a', target: 't' }), 'bad-request');
    assert.equal(await s.getThing('x'), undefined, 'bad audit input: no change either');
    const entries = (await s.listAuditLog({ limit: 100, order: 'asc' })).items;
    assert.deepEqual(entries.map((e) => e.action), [...steps.map(([action]) => action), 'gone']);
    assert.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => i + 1));
    assert.deepEqual(await s.verifyAuditLog(), { ok: true, entries: entries.length, head: { seq: entries.length, hash: entries.at(-1)?.hash } });
  });

  it('lists newest first by default, filters by target and actor, and pages with a cursor', async () => {
    const { store: s } = await fresh();
    await appendMany(s, 20);
    await s.appendAudit({ actor: 'alice', action: 'a', target: 't3' });
    const all = await s.listAuditLog({ limit: 5 });
    assert.deepEqual(all.items.map((e) => e.seq), [21, 20, 19, 18, 17]);
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.listAuditLog({ limit: 2, target: 't3', order: 'asc', ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((e) => e.seq));
      cursor = page.next;
    } while (cursor !== undefined);
    assert.deepEqual(seen, [4, 11, 18, 21]);
    assert.deepEqual((await s.listAuditLog({ limit: 10, actor: 'alice' })).items.map((e) => e.seq), [21]);
    await rejectsWith(s.listAuditLog({ limit: 2, cursor: all.next ?? '', order: 'asc' }), 'bad-request', /cursor/);
  });

  it('never forks under concurrent appends', async () => {
    const { store: s } = await fresh();
    await Promise.all(Array.from({ length: 40 }, (_, i) => s.createThing({ name: `t${i}` }, audit('thing.create', `thing:t${i}`))));
    const result = await s.verifyAuditLog();
    assert.equal(result.ok, true);
    assert.equal(result.entries, 40);
  });

  it('finds an edited entry (hash-mismatch) and a re-hashed edit (prev-mismatch on the next), across pages', async () => {
    const { store: s, exec } = await fresh();
    await appendMany(s, 1205);
    assert.deepEqual(await s.verifyAuditLog().then((r) => [r.ok, r.entries]), [true, 1205]);
    await exec(`update audit_log set details = '{"forged":true}' where seq = 1100`);
    assert.deepEqual(await s.verifyAuditLog(), { ok: false, entries: 1099, firstBroken: { seq: 1100, reason: 'hash-mismatch' } });
    // A forger who also recomputes the row's hash breaks the link to the next entry.
    const [row] = await exec('select at, actor, action, target, details, prev_hash from audit_log where seq = 1100');
    const r = row as Record<string, string>;
    const forged = auditHash({ seq: 1100, at: r.at ?? '', actor: r.actor ?? '', action: r.action ?? '', target: r.target ?? '', details: r.details ?? '', prevHash: r.prev_hash ?? '' });
    await exec('update audit_log set hash = ? where seq = 1100', [forged]);
    assert.deepEqual(await s.verifyAuditLog(), { ok: false, entries: 1100, firstBroken: { seq: 1101, reason: 'prev-mismatch' } });
  });

  it('finds a deleted entry as a gap at the next seq', async () => {
    const { store: s, exec } = await fresh();
    await appendMany(s, 10);
    await exec('delete from audit_log where seq = 4');
    assert.deepEqual(await s.verifyAuditLog(), { ok: false, entries: 3, firstBroken: { seq: 5, reason: 'gap' } });
    await exec('delete from audit_log where seq = 1');
    assert.deepEqual(await s.verifyAuditLog(), { ok: false, entries: 0, firstBroken: { seq: 2, reason: 'gap' } });
  });

  it(`verifies an empty log, and refuses details JSON cannot hold (${dialect})`, async () => {
    const { store: s } = await fresh();
    assert.deepEqual(await s.verifyAuditLog(), { ok: true, entries: 0, head: null });
    const bad: unknown[] = [{ big: 1n }, { f: () => 1 }, { n: Number.NaN }, { m: new Map() }, { deep: JSON.parse('['.repeat(40) + ']'.repeat(40)) }];
    for (const details of bad) {
      await rejectsWith(s.appendAudit({ actor: 'a', action: 'b', target: 'c', details: details as Record<string, unknown> }), 'bad-request');
    }
    await rejectsWith(s.appendAudit({ actor: 'a', action: 'b', target: 'c', details: { s: 'x'.repeat(70_000) } }), 'bad-request', /65536 bytes/);
    assert.equal((await s.verifyAuditLog()).entries, 0);
  });
});
