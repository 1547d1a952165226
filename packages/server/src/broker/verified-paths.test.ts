import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertificateTemplate, importSpki, issuerInfoFromCertificate, parseName, PROFILES } from '@certfleet/pki';
import { signPrepared } from '../../../pki/src/testing/hierarchy.js';
import { Admission } from './admission.js';
import { chainOf, fleet, type Fleet } from './test-fixtures.js';
import { pathKey, VerifiedPaths, type VerifiedPath } from './verified-paths.js';

const path = (subject: string): VerifiedPath => ({
  notBefore: new Date(0),
  notAfter: new Date(1),
  pathValidFrom: 0,
  pathValidUntil: 1,
  subject,
  subjectCn: null,
  caIds: [],
  issuerIds: [],
});

/** Admission re-reading the CA list on every call, as after every change: only the path cache can carry an answer over. */
const admission = (f: Fleet, clock: { t: Date }) => new Admission({ cas: f.cas, certificates: f.certificates, now: () => clock.t, caCacheMs: 0 });

describe('VerifiedPaths', () => {
  it('keeps at most its limit, dropping the least recently used', () => {
    const cache = new VerifiedPaths(2);
    cache.set('a', path('a'));
    cache.set('b', path('b'));
    assert.equal(cache.get('a')?.subject, 'a', 'a is now the most recent');
    cache.set('c', path('c'));
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a')?.subject, 'a');
    assert.equal(cache.get('c')?.subject, 'c');
    assert.equal(cache.size, 2);
  });

  it('keeps nothing with a limit of 0', () => {
    const cache = new VerifiedPaths(0);
    cache.set('a', path('a'));
    assert.equal(cache.size, 0);
  });

  it('keys a leaf apart from the same leaf with other hints', () => {
    const leaf = 'ab'.repeat(32);
    assert.equal(pathKey(leaf, []), leaf);
    assert.notEqual(pathKey(leaf, [Buffer.from([1])]), pathKey(leaf, [Buffer.from([2])]));
    assert.equal(pathKey(leaf, [Buffer.from([1, 2])]), pathKey(leaf, [Buffer.from([1, 2])]));
  });
});

describe('Admission with validated paths kept', () => {
  it('still reads the certificate status on every connect', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() });
    assert.ok((await a.admit(chainOf(f.dev1, f.issuing))).ok);
    f.certificates.setStatus(f.dev1, 'revoked');
    const r = await a.admit(chainOf(f.dev1, f.issuing));
    assert.equal(!r.ok && r.reason, 'revoked-certificate');
    f.certificates.setStatus(f.dev1, 'inactive');
    assert.equal((await a.admit(chainOf(f.dev1, f.issuing))).ok, false);
    f.certificates.setStatus(f.dev1, 'active');
    assert.ok((await a.admit(chainOf(f.dev1, f.issuing))).ok);
  });

  it('compares validity with the clock on every connect', async () => {
    const f = fleet();
    const clock = { t: new Date() };
    const a = admission(f, clock);
    assert.ok((await a.admit(chainOf(f.dev1))).ok);
    clock.t = new Date(f.dev1.cert.notAfter().getTime() + 1000);
    const r = await a.admit(chainOf(f.dev1));
    assert.equal(!r.ok && r.reason, 'expired');
  });

  it('refuses a path through an issuer outside its validity, though the leaf is inside its own', async () => {
    const f = fleet();
    // A leaf that starts ten days before its issuing CA does (as an external CA might sign): five days back, only the issuer is not valid.
    const issuerStart = f.issuing.cert.notBefore().getTime();
    const template = new CertificateTemplate({ ...issuerInfoFromCertificate('issuing', f.issuing.cert), notBefore: new Date(0) }, PROFILES.device);
    const early = {
      cert: signPrepared(template, { subject: parseName('CN=dev-early'), publicKey: importSpki(f.dev2.cert.spki), now: new Date(issuerStart - 10 * 86_400_000) }, f.issuing.key),
      key: f.dev2.key,
    };
    f.certificates.add(early, 'issuing', 'dev-early');
    const clock = { t: new Date() };
    const a = admission(f, clock);
    assert.ok((await a.admit(chainOf(early))).ok);
    clock.t = new Date(issuerStart - 5 * 86_400_000);
    const r = await a.admit(chainOf(early));
    assert.equal(!r.ok && r.reason, 'untrusted-chain', !r.ok ? r.detail : 'admitted');
  });

  it('forgets every path when a CA changes status, and validates again once it is back', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() });
    assert.ok((await a.admit(chainOf(f.dev1))).ok);
    f.cas.setStatus('root', 'revoked');
    const r = await a.admit(chainOf(f.dev1));
    assert.equal(!r.ok && r.reason, 'untrusted-chain');
    f.cas.setStatus('root', 'active');
    assert.ok((await a.admit(chainOf(f.dev1))).ok);
  });

  it('takes a CA registered at run time into account: an intermediate registered inactive closes the path a device sent it for', async () => {
    const f = fleet();
    const issuingRow = f.cas.rows.find((r) => r.id === 'issuing')!;
    f.cas.rows.splice(f.cas.rows.indexOf(issuingRow), 1);
    const a = admission(f, { t: new Date() });
    const first = await a.admit(chainOf(f.dev1, f.issuing));
    assert.ok(first.ok, 'the unregistered intermediate it sent is a hint up to the registered root');
    assert.deepEqual(first.caIds, ['root']);
    f.cas.rows.push({ ...issuingRow, status: 'inactive' });
    const r = await a.admit(chainOf(f.dev1, f.issuing));
    assert.equal(!r.ok && r.reason, 'untrusted-chain');
  });

  it('validates each set of hints on its own', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() });
    assert.ok((await a.admit(chainOf(f.dev1, f.issuing))).ok);
    // The same leaf with garbage hints: validated again (and still fine, hints are only hints).
    const r = await a.admit([f.dev1.cert.der, Buffer.from('3003020101', 'hex')]);
    assert.ok(r.ok);
    assert.deepEqual(r.caIds, ['issuing', 'root']);
  });

  it('answers a reconnect the same way as the first connect', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() });
    const first = await a.admit(chainOf(f.dev2, f.issuing));
    const again = await a.admit(chainOf(f.dev2, f.issuing));
    assert.deepEqual(again, first);
    assert.ok(again.ok && again.subjectCn === 'dev-2' && again.thingName === 'dev-2');
  });

  it('offers an unregistered certificate for auto-registration on a cached path too', async () => {
    const f = fleet();
    const offered: string[][] = [];
    const a = new Admission({
      cas: f.cas,
      certificates: f.certificates,
      now: () => new Date(),
      caCacheMs: 0,
      autoRegister: async (u) => {
        offered.push([...u.issuerIds]);
        assert.equal(u.leaf.fingerprint(), f.unknown.cert.fingerprint());
        return { refused: 'no template' };
      },
    });
    for (let i = 0; i < 2; i++) {
      const r = await a.admit(chainOf(f.unknown, f.issuing));
      assert.equal(!r.ok && r.reason, 'provisioning-failed');
    }
    assert.deepEqual(offered, [['issuing'], ['issuing']]);
  });
});
