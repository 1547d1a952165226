import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testNode, type TestNode } from '../testing/services.js';
import { forecast } from './forecast.js';

let node: TestNode;
const now = Date.now();
before(async () => {
  node = await testNode({ now: () => new Date(now) });
});
after(() => node.close());

const run = () => forecast({ certificates: node.s.store, cas: node.s.store, groups: node.s.store, connections: node.s.store, now: () => new Date(now) });

describe('expiry forecast', () => {
  it('counts expiries per week, per CA and per group, and lists offline devices near expiry', async () => {
    await node.s.store.createThing({ name: 'near' });
    await node.s.store.createThing({ name: 'online' });
    await node.s.store.createGroup({ name: 'plant-a' });
    await node.s.store.addThingToGroup('plant-a', 'near');
    const near = await node.s.issuance.withGeneratedKey({ thing: 'near', validityDays: 10 });
    const online = await node.s.issuance.withGeneratedKey({ thing: 'online', validityDays: 12 });
    await node.s.issuance.withGeneratedKey({ commonName: 'later', validityDays: 100 });
    await node.s.store.recordConnect({ id: 'c1', certificateId: online.record.id, clientId: 'online', remoteAddress: '10.0.0.9:1', connectedAt: new Date(now - 1000), nodeId: 'n' });

    const f = await run();
    assert.equal(f.total.length, 52);
    assert.equal(f.total[1], 2, 'two expire in the second week (days 7-13)');
    assert.equal(f.total[14], 1, 'day 100 is in week 14');
    assert.equal(f.byCa['issuing']?.[1], 2);
    assert.equal(f.byGroup['plant-a']?.[1], 1);
    assert.deepEqual(f.atRisk.map((r) => r.thing), ['near'], 'the connected device can renew; the silent one cannot');
    assert.equal(f.atRisk[0]?.certificateId, near.record.id);
    assert.equal(f.atRisk[0]?.lastSeen, null);
  });
});
