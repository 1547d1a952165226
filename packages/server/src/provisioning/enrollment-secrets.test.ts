import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsr, parseName } from '@certfleet/pki';
import { CertfleetError, type ErrorCode } from '../errors.js';
import { SYSTEM } from '../registry/actor.js';
import { testNode, type TestNode } from '../testing/services.js';

function csr(subject: string): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return buildCsr({ subject: parseName(subject), publicKey, privateKey });
}

const rejects = (p: Promise<unknown>, code: ErrorCode, message?: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof CertfleetError && e.code === code && (message === undefined || message.test(e.message)));

describe('EST enrollment secrets', () => {
  let node: TestNode;
  before(async () => {
    node = await testNode();
    const { s } = node;
    await s.policies.create(SYSTEM, 'meter', { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] });
    await s.things.createGroup(SYSTEM, { name: 'meters' });
    await s.fleet.templates.create(SYSTEM, 'meter', { thing: { name: 'meter-${cert.subject.cn}', attributes: { line: '4' }, groups: ['meters'] }, policies: ['meter'] });
    await s.fleet.templates.create(SYSTEM, 'needs-serial', { parameters: { Serial: { type: 'string' } }, thing: { name: 'm-${parameters.Serial}' } });
    // No template may hand out a role: refused when saved, so EST never meets one.
    await rejects(s.fleet.templates.create(SYSTEM, 'gateway-maker', { thing: { name: '${cert.subject.cn}', attributes: { 'certfleet.role': 'gateway' } } }), 'bad-request', /reserved to operators/);
  });
  after(() => node.close());

  it('refuses requests that do not say one device or one batch, and templates EST cannot use', async () => {
    const secrets = node.s.est.secrets;
    await rejects(secrets.create(SYSTEM, {}), 'bad-request', /thing .* or batch/);
    await rejects(secrets.create(SYSTEM, { thing: 'a', count: 2 }), 'bad-request');
    await rejects(secrets.create(SYSTEM, { batch: 'bad label!' }), 'bad-request');
    await rejects(secrets.create(SYSTEM, { batch: 'b', expiresInHours: 0 }), 'bad-request');
    await rejects(secrets.create(SYSTEM, { batch: 'b', profile: 'root-ca' }), 'bad-request');
    await rejects(secrets.create(SYSTEM, { batch: 'b', template: 'ghost' }), 'not-found');
    await rejects(secrets.create(SYSTEM, { batch: 'b', template: 'needs-serial' }), 'bad-request', /Serial is required/);
    await rejects(secrets.create(SYSTEM, { batch: 'b', template: 'gateway-maker' }), 'not-found');
  });

  it('authenticates by user name and secret; anything else is 401', async () => {
    const [issued] = await node.s.est.secrets.create(SYSTEM, { thing: 'unit-dev-1' });
    assert.match(issued!.secret, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
    const record = await node.s.est.secrets.authenticate(issued!.username, issued!.secret);
    assert.equal(record.id, issued!.id);
    assert.notEqual(record.secretHash, issued!.secret);
    await rejects(node.s.est.secrets.authenticate(issued!.username, `${issued!.secret}x`), 'unauthorized');
    await rejects(node.s.est.secrets.authenticate('est-nobody', issued!.secret), 'unauthorized');
  });

  it('a batch secret with a template: the thing named from the CSR, its group and policy; spent once under concurrency', async () => {
    const { s } = node;
    const [issued] = await s.est.secrets.create(SYSTEM, { batch: 'line-4', template: 'meter' });
    const record = await s.est.secrets.authenticate(issued!.username, issued!.secret);
    const results = await Promise.allSettled([s.est.secrets.enroll(record, csr('CN=0042')), s.est.secrets.enroll(record, csr('CN=0042'))]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const won = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ certificateId: string; thingName: string }>).value;
    const lost = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as CertfleetError;
    assert.equal(lost.code, 'unauthorized');
    assert.equal(won.thingName, 'meter-0042');
    assert.deepEqual((await s.store.getThing('meter-0042'))?.attributes, { line: '4' });
    assert.deepEqual((await s.store.groupsOfThing('meter-0042')).map((g) => g.name), ['meters']);
    assert.deepEqual(await s.store.policiesOfTarget({ type: 'certificate', id: won.certificateId }), ['meter']);
    assert.equal(await s.store.countCertificates({ thing: 'meter-0042' }), 1, 'the loser stored nothing');
    await rejects(s.est.secrets.authenticate(issued!.username, issued!.secret), 'unauthorized', /already used/);
  });

  it('a batch secret without a template cannot take over an existing thing, and stays unspent', async () => {
    const { s } = node;
    await s.things.createThing(SYSTEM, 'taken-1');
    const [issued] = await s.est.secrets.create(SYSTEM, { batch: 'line-5' });
    const record = await s.est.secrets.authenticate(issued!.username, issued!.secret);
    await rejects(s.est.secrets.enroll(record, csr('CN=taken-1')), 'conflict');
    await rejects(s.est.secrets.enroll(record, csr('O=no cn')), 'bad-request');
    const done = await s.est.secrets.enroll(record, csr('CN=fresh-1'));
    assert.equal(done.thingName, 'fresh-1');
  });

  it('an expired secret is 401', async () => {
    let now = new Date();
    const n = await testNode({ now: () => now });
    try {
      const [issued] = await n.s.est.secrets.create(SYSTEM, { thing: 'soon', expiresInHours: 1 });
      now = new Date(now.getTime() + 3_600_000);
      await rejects(n.s.est.secrets.authenticate(issued!.username, issued!.secret), 'unauthorized', /expired/);
    } finally {
      await n.close();
    }
  });
});
