import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testNode, type TestNode } from '../testing/services.js';
import { runAudit, type Finding } from './audits.js';

let node: TestNode;
let clock = Date.now();
const DAY = 86_400_000;

before(async () => {
  node = await testNode({ now: () => new Date(clock) });
});
after(() => node.close());

const audit = (opts = {}) => runAudit({ cas: node.s.store, certificates: node.s.store, policies: node.s.store, connections: node.s.store, now: () => new Date(clock) }, opts);
const codes = (f: Finding[]) => f.map((x) => x.reasonCode);

describe('audits', () => {
  it('a fresh node has nothing to report', async () => {
    assert.deepEqual(await audit(), []);
  });

  it('finds expiring and expired device certificates, with mitigations', async () => {
    await node.s.store.createThing({ name: 'd1' });
    const soon = await node.s.issuance.withGeneratedKey({ thing: 'd1', validityDays: 10 });
    let f = await audit();
    const expiring = f.find((x) => x.resource === soon.record.id);
    assert.equal(expiring?.reasonCode, 'device-certificate-expiring');
    assert.ok(expiring?.mitigations.includes('renew-certificate'));
    clock += 11 * DAY;
    f = await audit();
    assert.equal(f.find((x) => x.resource === soon.record.id)?.reasonCode, 'device-certificate-expired');
    assert.ok(codes(f).includes('device-never-seen') === false, 'not yet past the silence window');
    clock += 30 * DAY;
    assert.ok(codes(await audit()).includes('device-never-seen'));
  });

  it('finds revoked CAs whose certificates are still active', async () => {
    const ca = await node.s.authorities.createIntermediate({ name: 'to-revoke', parentId: node.rootId });
    await node.s.issuance.withGeneratedKey({ commonName: 'under-ca', issuer: 'to-revoke' });
    await node.s.revoker.revokeCa({ id: 'test' }, ca.id, 'keyCompromise');
    const f = await audit();
    const revoked = f.find((x) => x.resource === ca.id);
    assert.equal(revoked?.reasonCode, 'revoked-intermediate-active-certificates');
    assert.equal(revoked?.severity, 'critical');
    assert.equal(f[0]?.severity, 'critical', 'most severe first');
  });

  it('finds policies that allow every topic or every client id', async () => {
    await node.s.policies.create({ id: 'test' }, 'open', { statements: [{ effect: 'allow', actions: ['publish'], resources: ['#'] }] });
    await node.s.policies.create({ id: 'test' }, 'anyone', { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${client.id}'] }] });
    await node.s.policies.create({ id: 'test' }, 'tight', { statements: [{ effect: 'allow', actions: ['publish'], resources: ['things/${thing.name}/#'] }] });
    const f = (await audit()).filter((x) => x.reasonCode === 'permissive-policy').map((x) => x.resource).sort();
    assert.deepEqual(f, ['anyone', 'open']);
  });

  it('finds one certificate connected from two addresses at once', async () => {
    const c = await node.s.issuance.withGeneratedKey({ commonName: 'cloned' });
    const at = new Date(clock - 60_000);
    await node.s.store.recordConnect({ id: 'c1', certificateId: c.record.id, clientId: 'x', remoteAddress: '10.0.0.1:1000', connectedAt: at, nodeId: 'n' });
    await node.s.store.recordConnect({ id: 'c2', certificateId: c.record.id, clientId: 'x', remoteAddress: '10.0.0.2:1000', connectedAt: new Date(at.getTime() + 1000), nodeId: 'n' });
    const f = await audit();
    assert.ok(f.some((x) => x.reasonCode === 'conflicting-connections' && x.resource === c.record.id));
  });
});
