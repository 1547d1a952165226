import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertfleetError } from '../errors.js';
import { ConnectionLog } from './connection-log.js';
import { LiveConnection } from './live-connections.js';
import { FakeConnectionRecords } from './test-fixtures.js';

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
