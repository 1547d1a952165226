import { it } from 'node:test';
import assert from 'node:assert/strict';
import { T0, at, caFixture, certificateFixture, rejectsWith } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';
import { findingId } from './findings.js';

const DAY = 86_400_000;
const f = (resource: string, severity = 'medium', reasonCode = 'device-certificate-expiring') => ({ severity, reasonCode, resourceType: 'certificate', resource, message: `m ${resource}`, mitigations: ['notify'] });
const run = (id: string, t: Date) => ({ id, startedAt: t, finishedAt: t, trigger: 'test', options: {} });

await describeOnBothDialects('audit findings store', ({ fresh }) => {
  it('upserts findings per run, keeps first seen, resolves what a later run no longer finds, and reopens', async () => {
    const { store: s } = await fresh();
    const r1 = await s.recordAuditRun(run('r1', T0), [f('a'), f('b', 'high'), f('a')]);
    assert.equal(r1.run.findings, 2, 'the same (reason, resource) once');
    assert.deepEqual([...r1.newFindingIds].sort(), [findingId(f('a')), findingId(f('b'))].sort());
    const r2 = await s.recordAuditRun(run('r2', at(DAY)), [f('a'), f('c')]);
    assert.deepEqual(r2.newFindingIds, [findingId(f('c'))]);
    assert.equal(r2.run.resolvedFindings, 1);
    const a = (await s.listFindings({ limit: 10, ids: [findingId(f('a'))] })).items[0]!;
    assert.deepEqual([a.firstSeen, a.lastSeen, a.resolvedAt, a.lastRunId], [T0, at(DAY), null, 'r2']);
    const b = (await s.listFindings({ limit: 10, resolved: true })).items;
    assert.deepEqual(b.map((x) => [x.resource, x.resolvedAt]), [['b', at(DAY)]]);
    assert.deepEqual((await s.listFindings({ limit: 10, severity: 'high' })).items.map((x) => x.resource), ['b']);
    const r3 = await s.recordAuditRun(run('r3', at(2 * DAY)), [f('b', 'high')]);
    assert.deepEqual(r3.newFindingIds, [findingId(f('b'))], 'found again after being resolved: new');
    const reopened = (await s.listFindings({ limit: 10, ids: [findingId(f('b'))] })).items[0]!;
    assert.deepEqual([reopened.firstSeen, reopened.resolvedAt], [at(2 * DAY), null]);
    assert.equal((await s.latestAuditRun())?.id, 'r3');
    const page = await s.listFindings({ limit: 1 });
    assert.ok(page.next);
    assert.equal((await s.listFindings({ limit: 10, cursor: page.next })).items.length, 2);
    await rejectsWith(s.listFindings({ limit: 1, cursor: 'nope' }), 'bad-request');
  });

  it('reads weak keys, active counts per issuer, and silent devices in one statement each', async () => {
    const { store: s } = await fresh();
    const ca = caFixture();
    await s.insertCa(ca);
    await s.createThing({ name: 'quiet' });
    await s.createThing({ name: 'chatty' });
    const weak = certificateFixture(ca.id, { keyAlgorithm: 'rsa-1024' });
    await s.insertCertificate(weak);
    await s.insertCertificate(certificateFixture(ca.id, { keyAlgorithm: 'rsa-2048', status: 'revoked' }));
    const quiet = certificateFixture(ca.id, { thingName: 'quiet', profile: 'device', createdAt: T0 });
    const chatty = certificateFixture(ca.id, { thingName: 'chatty', profile: 'device', createdAt: T0 });
    await s.insertCertificate(quiet);
    await s.insertCertificate(chatty);
    assert.deepEqual((await s.activeRsaCertificates({ limit: 10 })).items.map((r) => r.id), [weak.id]);
    assert.equal((await s.activeCountsByIssuer([ca.id])).get(ca.id), 3);
    await s.recordConnect({ id: 'k1', certificateId: chatty.id, clientId: 'chatty', remoteAddress: '10.0.0.1:1', connectedAt: at(40 * DAY), nodeId: 'n' });
    const silent = (await s.silentDevices(at(35 * DAY), at(45 * DAY), { limit: 10 })).items;
    assert.deepEqual(silent, [{ certificateId: quiet.id, thingName: 'quiet', lastSeen: null }]);
    await s.recordDisconnect('k1', at(41 * DAY), 'gone');
    const later = (await s.silentDevices(at(50 * DAY), at(80 * DAY), { limit: 10 })).items;
    assert.deepEqual(later.map((x) => [x.thingName, x.lastSeen]).sort(), [['chatty', at(41 * DAY)], ['quiet', null]]);
  });
});
