import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testNode, type TestNode } from '../testing/services.js';
import type { CertfleetEvents } from '../events/bus.js';

const DAY = 86_400_000;
let node: TestNode;
let clock = Date.parse('2031-03-01T00:00:00.000Z');
const events: Array<CertfleetEvents['audit.finding']> = [];

before(async () => {
  node = await testNode({ now: () => new Date(clock) });
  node.s.bus.on('audit.finding', (e) => {
    events.push(e);
  });
});
after(() => node.close());

describe('stored audit findings', () => {
  it('at the 30-day threshold: a certificate expiring in 29 days is a finding, one expiring in 31 days is not', async () => {
    await node.s.store.createThing({ name: 'd29' });
    await node.s.store.createThing({ name: 'd31' });
    const in29 = await node.s.issuance.withGeneratedKey({ thing: 'd29', validityDays: 29 });
    const in31 = await node.s.issuance.withGeneratedKey({ thing: 'd31', validityDays: 31 });
    const { run } = await node.s.auditFindings.run('test', { expiringWithinDays: 30 });
    const open = (await node.s.auditFindings.list({ limit: 100, reasonCode: 'device-certificate-expiring', resolved: false })).items;
    assert.deepEqual(open.map((f) => f.resource), [in29.record.id]);
    assert.ok(!open.some((f) => f.resource === in31.record.id));
    assert.equal(open[0]!.severity, 'medium');
    assert.deepEqual(open[0]!.firstSeen, new Date(clock));
    assert.ok(run.newFindings >= 1);
    assert.ok(events.some((e) => e.resource === in29.record.id && e.runId === run.id), 'a new finding is an event');
  });

  it('a finding found again keeps its first-seen time and is no new event; one no longer found is resolved', async () => {
    const firstSeen = new Date(clock);
    const before = events.length;
    clock += 2 * DAY; // the 31-day certificate now expires in 29 days
    const { run } = await node.s.auditFindings.run('test', { expiringWithinDays: 30 });
    const open = (await node.s.auditFindings.list({ limit: 100, reasonCode: 'device-certificate-expiring', resolved: false })).items;
    assert.equal(open.length, 2);
    const old = open.find((f) => +f.firstSeen === +firstSeen);
    assert.ok(old, 'the first finding kept its first-seen time');
    assert.deepEqual(old.lastSeen, new Date(clock));
    assert.equal(events.slice(before).filter((e) => e.reasonCode === 'device-certificate-expiring').length, 1, 'only the newly found one is an event');
    assert.equal(run.resolvedFindings, 0);

    clock += 30 * DAY; // both expired: expiring findings resolve, expired ones open
    await node.s.auditFindings.run('test', { expiringWithinDays: 30 });
    const resolved = (await node.s.auditFindings.list({ limit: 100, reasonCode: 'device-certificate-expiring', resolved: true })).items;
    assert.equal(resolved.length, 2);
    assert.ok(resolved.every((f) => +f.resolvedAt! === clock));
    assert.equal((await node.s.auditFindings.list({ limit: 100, reasonCode: 'device-certificate-expired', resolved: false })).items.length, 2);
    assert.equal((await node.s.auditFindings.latestRun())?.trigger, 'test');
  });
});
