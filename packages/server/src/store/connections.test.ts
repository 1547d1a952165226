import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { NewConnection } from './records.js';
import { T0, at, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const connection = (overrides: Partial<NewConnection> = {}): NewConnection => ({
  id: randomUUID(),
  certificateId: uniqueName('cert'),
  clientId: 'dev-1',
  remoteAddress: '192.0.2.7:50123',
  connectedAt: T0,
  nodeId: 'node-a',
  ...overrides,
});

await describeOnBothDialects('connections', ({ fresh }) => {
  it('records a connection open, then closed with its reason; the first close wins', async () => {
    const { store: s } = await fresh();
    const c = connection();
    await s.recordConnect(c);
    assert.deepEqual(await s.openConnectionsByCertificate(c.certificateId), [{ ...c, disconnectedAt: null, disconnectReason: null }]);
    await s.recordDisconnect(c.id, at(5000), 'certificate-revoked');
    await s.recordDisconnect(c.id, at(9000), 'connection-lost');
    assert.deepEqual(await s.openConnectionsByCertificate(c.certificateId), []);
    const { items } = await s.listConnections({ certificateId: c.certificateId, limit: 10 });
    assert.deepEqual(items, [{ ...c, disconnectedAt: at(5000), disconnectReason: 'certificate-revoked' }]);
  });

  it('refuses a duplicate id, an unknown id and missing fields', async () => {
    const { store: s } = await fresh();
    const c = connection();
    await s.recordConnect(c);
    await rejectsWith(s.recordConnect(c), 'conflict');
    await rejectsWith(s.recordDisconnect(randomUUID(), at(1), 'x'), 'not-found');
    await rejectsWith(s.recordConnect(connection({ certificateId: '' })), 'bad-request');
    await rejectsWith(s.recordConnect(connection({ connectedAt: new Date(Number.NaN) })), 'bad-request');
    await rejectsWith(s.recordDisconnect(c.id, at(1), ''), 'bad-request');
  });

  it('keeps a client id from the wire storable: NUL replaced, length bounded', async () => {
    const { store: s } = await fresh();
    const c = connection({ clientId: `a\u0000b${'x'.repeat(1000)}` });
    await s.recordConnect(c);
    const [row] = await s.openConnectionsByCertificate(c.certificateId);
    assert.equal(row?.clientId.slice(0, 3), 'a\ufffdb');
    assert.equal(row?.clientId.length, 256);
  });

  it('lists newest first, filtered by certificate and by open or closed, page by page', async () => {
    const { store: s } = await fresh();
    const certificateId = uniqueName('cert');
    const mine = [0, 1, 2, 3, 4].map((i) => connection({ certificateId, connectedAt: at(i * 1000), clientId: `c${i}` }));
    // Two in the same millisecond: the id breaks the tie, so paging loses neither.
    mine.push(connection({ certificateId, connectedAt: at(4000), clientId: 'c4-bis' }));
    for (const c of mine) await s.recordConnect(c);
    await s.recordConnect(connection({ connectedAt: at(2500) }));
    await s.recordDisconnect(mine[1]!.id, at(1500), 'client-disconnect');

    const expected = [...mine].sort((a, b) => b.connectedAt.getTime() - a.connectedAt.getTime() || (a.id < b.id ? 1 : -1)).map((c) => c.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.listConnections({ certificateId, limit: 4, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((c) => c.id));
      cursor = page.next;
    } while (cursor !== undefined);
    assert.deepEqual(seen, expected);

    const open = await s.listConnections({ certificateId, open: true, limit: 100 });
    assert.deepEqual(open.items.map((c) => c.id), expected.filter((id) => id !== mine[1]!.id));
    const closed = await s.listConnections({ certificateId, open: false, limit: 100 });
    assert.deepEqual(closed.items.map((c) => c.id), [mine[1]!.id]);
    assert.equal((await s.listConnections({ limit: 100 })).items.length, 7, 'without a filter: every certificate');
    await rejectsWith(s.listConnections({ limit: 10, cursor: 'nope' }), 'bad-request');
    await rejectsWith(s.listConnections({ limit: 0 }), 'bad-request');
  });

  it('closes only the rows its own node left open, as after a crash', async () => {
    const { store: s } = await fresh();
    const a1 = connection({ nodeId: 'node-a' });
    const a2 = connection({ nodeId: 'node-a' });
    const b1 = connection({ nodeId: 'node-b' });
    for (const c of [a1, a2, b1]) await s.recordConnect(c);
    await s.recordDisconnect(a2.id, at(100), 'client-disconnect');
    assert.equal(await s.closeOpenConnections('node-a', at(60_000), 'node-restart'), 1);
    assert.equal(await s.closeOpenConnections('node-a', at(61_000), 'node-restart'), 0);
    const byId = new Map((await s.listConnections({ limit: 10 })).items.map((c) => [c.id, c]));
    assert.deepEqual([byId.get(a1.id)?.disconnectReason, byId.get(a1.id)?.disconnectedAt], ['node-restart', at(60_000)]);
    assert.equal(byId.get(a2.id)?.disconnectReason, 'client-disconnect');
    assert.equal(byId.get(b1.id)?.disconnectedAt, null, 'another node keeps its open connections');
  });

  it('applies a batch of connects and disconnects in order, in one transaction, reporting what cannot apply', async () => {
    const { store: s } = await fresh();
    const existing = connection();
    await s.recordConnect(existing);
    const a = connection();
    const b = connection({ certificateId: a.certificateId });
    const failures = await s.recordConnectionWrites([
      { kind: 'connect', connection: a },
      { kind: 'connect', connection: b },
      { kind: 'disconnect', id: a.id, at: at(2000), reason: 'client-disconnect' },
      { kind: 'connect', connection: existing },
      { kind: 'disconnect', id: randomUUID(), at: at(3000), reason: 'x' },
      { kind: 'connect', connection: connection({ certificateId: '' }) },
      { kind: 'disconnect', id: a.id, at: at(4000), reason: 'connection-lost' },
      { kind: 'disconnect', id: b.id, at: at(5000), reason: '' },
    ]);
    assert.deepEqual(failures.map((f) => [f.index, f.error.code]), [[3, 'conflict'], [4, 'not-found'], [5, 'bad-request'], [7, 'bad-request']]);
    const { items } = await s.listConnections({ certificateId: a.certificateId, limit: 10 });
    const byId = new Map(items.map((c) => [c.id, c]));
    assert.deepEqual(byId.get(a.id), { ...a, disconnectedAt: at(2000), disconnectReason: 'client-disconnect' }, 'connect before disconnect; the first close wins');
    assert.deepEqual(byId.get(b.id), { ...b, disconnectedAt: null, disconnectReason: null });
    assert.equal((await s.listConnections({ certificateId: existing.certificateId, limit: 10 })).items.length, 1);
    assert.deepEqual(await s.recordConnectionWrites([]), []);
  });
});
