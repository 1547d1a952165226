import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertfleetError } from '../errors.js';
import { ConnectionLog } from './connection-log.js';
import { LiveConnection } from './live-connections.js';
import { FakeConnectionRecords } from './test-fixtures.js';
import { describeOnBothDialects } from '../store/test-dialects.js';
import type { ConnectionWrite } from '../store/index.js';

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const conn = () => Object.assign(new LiveConnection({ certificateId: 'c1', thingName: 't', subjectCn: null, caIds: [] }, '192.0.2.1:1'), { clientId: 't' });

describe('ConnectionLog', () => {
  it('keeps the order of writes even when they are slow, and flush() waits for all', async () => {
    const store = new FakeConnectionRecords();
    store.delayMs = 20;
    const log = new ConnectionLog(store, 'n1', quiet);
    const c = conn();
    log.connected(c, new Date(1000));
    log.disconnected(c, new Date(2000), 'client-disconnect');
    assert.equal(store.rows.size, 0, 'nothing waits for the database');
    await log.flush();
    assert.deepEqual(store.rows.get(c.id), {
      id: c.id, certificateId: 'c1', clientId: 't', remoteAddress: '192.0.2.1:1', connectedAt: new Date(1000), nodeId: 'n1',
      disconnectedAt: new Date(2000), disconnectReason: 'client-disconnect',
    });
  });

  it('retries a write the database refused as unavailable, and gives up on other errors', async () => {
    const store = new FakeConnectionRecords();
    let failures = 1;
    const recordConnect = store.recordConnect.bind(store);
    store.recordConnect = async (c) => {
      if (failures-- > 0) throw new CertfleetError('unavailable', 'database unavailable (SQLITE_BUSY)');
      return recordConnect(c);
    };
    const errors: string[] = [];
    const log = new ConnectionLog(store, 'n1', { ...quiet, error: (_o, m) => void errors.push(m) });
    const c = conn();
    log.connected(c, new Date(1000));
    log.disconnected(conn(), new Date(1000), 'x'); // unknown id: given up, logged
    await log.flush();
    assert.ok(store.rows.has(c.id));
    assert.deepEqual(errors, ['connection record not written']);
  });
});

await describeOnBothDialects('ConnectionLog on the store', ({ fresh }) => {
  it('groups the writes of many connections into few transactions, in order', async () => {
    const { store } = await fresh();
    const batches: number[] = [];
    const batched = {
      recordConnect: store.recordConnect.bind(store),
      recordDisconnect: store.recordDisconnect.bind(store),
      closeOpenConnections: store.closeOpenConnections.bind(store),
      recordConnectionWrites: (writes: readonly ConnectionWrite[]) => {
        batches.push(writes.length);
        return store.recordConnectionWrites(writes);
      },
    };
    const log = new ConnectionLog(batched, 'n1', quiet);
    const cs = Array.from({ length: 40 }, (_, i) => Object.assign(conn(), { clientId: `c${i}` }));
    for (const c of cs) log.connected(c, new Date(1000));
    for (const c of cs.slice(0, 30)) log.disconnected(c, new Date(2000), 'client-disconnect');
    // Closed again later: the first close stays.
    log.disconnected(cs[0]!, new Date(3000), 'connection-lost');
    await log.flush();
    assert.deepEqual(batches, [71], 'everything queued in the same window is one transaction');
    const open = await store.openConnectionsByCertificate('c1');
    assert.deepEqual(open.map((r) => r.clientId).sort(), cs.slice(30).map((c) => c.clientId).sort());
    const { items } = await store.listConnections({ certificateId: 'c1', open: false, limit: 100 });
    assert.equal(items.length, 30);
    assert.ok(items.every((r) => r.disconnectReason === 'client-disconnect' && r.disconnectedAt?.getTime() === 2000));
  });

  it('writes a disconnect queued after a flush began, and flush() waits for it', async () => {
    const { store } = await fresh();
    const log = new ConnectionLog(store, 'n1', quiet);
    const c = conn();
    log.connected(c, new Date(1000));
    const flushed = log.flush();
    log.disconnected(c, new Date(2000), 'client-disconnect');
    await flushed;
    assert.deepEqual(await store.openConnectionsByCertificate('c1'), []);
  });

  it('logs a write that cannot apply and writes the rest of its batch', async () => {
    const { store } = await fresh();
    const errors: string[] = [];
    const log = new ConnectionLog(store, 'n1', { ...quiet, error: (o) => void errors.push(String(o.what)) });
    const ghost = conn();
    const c = conn();
    log.disconnected(ghost, new Date(1000), 'x');
    log.connected(c, new Date(1000));
    await log.flush();
    assert.deepEqual(errors, [`disconnect ${ghost.id}`]);
    assert.equal((await store.openConnectionsByCertificate('c1')).length, 1);
  });
});
