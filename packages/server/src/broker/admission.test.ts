import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Admission, type AdmissionRefusal } from './admission.js';
import { chainOf, fleet, type Fleet } from './test-fixtures.js';

const DAY = 86_400_000;

function admission(f: Fleet, clock: { t: Date }, caCacheMs = 0): Admission {
  return new Admission({ cas: f.cas, certificates: f.certificates, now: () => clock.t, caCacheMs });
}

describe('Admission', () => {
  const cases: Array<{ name: string; chain: (f: Fleet) => Buffer[]; at?: (f: Fleet) => Date; want: AdmissionRefusal | { thingName: string | null } }> = [
    { name: 'admits a registered device that sends its intermediate', chain: (f) => chainOf(f.dev1, f.issuing), want: { thingName: 'dev-1' } },
    { name: 'admits a device that sends only its leaf (its issuing CA is registered)', chain: (f) => chainOf(f.dev1), want: { thingName: 'dev-1' } },
    { name: 'admits a device that sends the whole chain, root included', chain: (f) => chainOf(f.dev2, f.issuing, f.root), want: { thingName: 'dev-2' } },
    { name: 'no certificate', chain: () => [], want: 'no-certificate' },
    { name: 'an empty certificate', chain: () => [Buffer.alloc(0)], want: 'no-certificate' },
    { name: 'bytes that are not a certificate', chain: () => [Buffer.from('3003020101', 'hex')], want: 'untrusted-chain' },
    { name: 'a device of a CA certfleet does not know', chain: (f) => chainOf(f.foreign, f.foreignIssuing), want: 'untrusted-chain' },
    { name: 'a certificate that may not authenticate a TLS client (EKU serverAuth)', chain: (f) => chainOf(f.serverOnly), want: 'untrusted-chain' },
    { name: 'a valid chain but a certificate that is not registered', chain: (f) => chainOf(f.unknown, f.issuing), want: 'unknown-certificate' },
    { name: 'a revoked certificate', chain: (f) => chainOf(f.revoked), want: 'revoked-certificate' },
    { name: 'an inactive certificate', chain: (f) => chainOf(f.inactive), want: 'inactive-certificate' },
    { name: 'a certificate pending activation (JITR)', chain: (f) => chainOf(f.pending), want: 'pending-activation' },
    { name: 'an expired certificate', chain: (f) => chainOf(f.dev1), at: (f) => new Date(f.dev1.cert.notAfter().getTime() + 1000), want: 'expired' },
    { name: 'a certificate that is not valid yet', chain: (f) => chainOf(f.future), want: 'not-yet-valid' },
    {
      name: 'an expired certificate of an unknown CA is reported as expired (validity is checked first)',
      chain: (f) => chainOf(f.foreign),
      at: (f) => new Date(f.foreign.cert.notAfter().getTime() + DAY),
      want: 'expired',
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const f = fleet();
      const chain = c.chain(f);
      const result = await admission(f, { t: c.at?.(f) ?? new Date() }).admit(chain);
      if (typeof c.want === 'string') {
        assert.equal(result.ok, false, `expected refusal ${c.want}`);
        assert.equal(!result.ok && result.reason, c.want, !result.ok ? result.detail : '');
        assert.ok(!result.ok && result.detail.length > 0, 'a refusal explains itself');
      } else {
        assert.ok(result.ok, !result.ok ? `${result.reason}: ${result.detail}` : '');
        assert.equal(result.thingName, c.want.thingName);
        assert.equal(result.certificateId, createHash('sha256').update(chain[0]!).digest('hex'));
      }
    });
  }

  it('stops admitting when the issuing CA is deactivated at run time, even if the device sends it', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() });
    assert.ok((await a.admit(chainOf(f.dev1, f.issuing))).ok);
    f.cas.setStatus('issuing', 'inactive');
    for (const chain of [chainOf(f.dev1), chainOf(f.dev1, f.issuing), chainOf(f.dev1, f.issuing, f.root)]) {
      const r = await a.admit(chain);
      assert.equal(!r.ok && r.reason, 'untrusted-chain');
      assert.match(!r.ok ? r.detail : '', /CA "issuing" is inactive/);
    }
    f.cas.setStatus('issuing', 'active');
    assert.ok((await a.admit(chainOf(f.dev1))).ok, 'reactivating admits again');
  });

  it('stops admitting below a root that is deactivated (or revoked) while its intermediate stays active', async () => {
    for (const status of ['inactive', 'revoked'] as const) {
      const f = fleet();
      const a = admission(f, { t: new Date() });
      f.cas.setStatus('root', status);
      const r = await a.admit(chainOf(f.dev1, f.issuing));
      assert.equal(!r.ok && r.reason, 'untrusted-chain');
      assert.match(!r.ok ? r.detail : '', new RegExp(`CA "root" is ${status}`));
    }
  });

  it('trusts a registered intermediate whose root is not registered (external CA)', async () => {
    const f = fleet();
    f.cas.rows.splice(0, f.cas.rows.length, ...f.cas.rows.filter((r) => r.id === 'issuing').map((r) => ({ ...r, parentId: null, kind: 'external' as const })));
    assert.ok((await admission(f, { t: new Date() }).admit(chainOf(f.dev1))).ok);
  });

  it('reads the CA list at most once a second, and a change shows after that second', async () => {
    const f = fleet();
    const clock = { t: new Date() };
    const a = admission(f, clock, 1000);
    const burst = await Promise.all(Array.from({ length: 20 }, () => a.admit(chainOf(f.dev1))));
    assert.ok(burst.every((r) => r.ok));
    assert.equal(f.cas.reads, 1, 'concurrent connections share one read');
    f.cas.setStatus('issuing', 'inactive');
    clock.t = new Date(clock.t.getTime() + 999);
    assert.ok((await a.admit(chainOf(f.dev1))).ok, 'within the second the cached list is used');
    clock.t = new Date(clock.t.getTime() + 1);
    assert.equal((await a.admit(chainOf(f.dev1))).ok, false, 'after the second the CA list is read again');
    assert.equal(f.cas.reads, 2);
  });

  it('never caches longer than a second, whatever it is asked', async () => {
    const f = fleet();
    const clock = { t: new Date() };
    const a = admission(f, clock, 60_000);
    await a.admit(chainOf(f.dev1));
    f.cas.setStatus('issuing', 'inactive');
    clock.t = new Date(clock.t.getTime() + 1000);
    assert.equal((await a.admit(chainOf(f.dev1))).ok, false);
  });

  it('names the CN and every registered CA of the path, ancestors included', async () => {
    const f = fleet();
    const r = await admission(f, { t: new Date() }).admit(chainOf(f.dev1));
    assert.ok(r.ok);
    assert.equal(r.subjectCn, 'dev-1');
    assert.deepEqual(r.caIds, ['issuing', 'root'], 'the path ends at the issuing CA, an anchor itself; the root is its parent');
  });

  it('invalidate() makes the next admission read the CA list again', async () => {
    const f = fleet();
    const a = admission(f, { t: new Date() }, 1000);
    assert.ok((await a.admit(chainOf(f.dev1))).ok);
    f.cas.setStatus('issuing', 'inactive');
    assert.ok((await a.admit(chainOf(f.dev1))).ok, 'cached');
    a.invalidate();
    assert.equal((await a.admit(chainOf(f.dev1))).ok, false);
  });

  it('a store failure rejects (it is not a refusal of the device) and is not cached', async () => {
    const f = fleet();
    let fail = true;
    const cas = { listCas: () => (fail ? Promise.reject(new Error('database is locked')) : f.cas.listCas()) };
    const a = new Admission({ cas, certificates: f.certificates, now: () => new Date() });
    await assert.rejects(a.admit(chainOf(f.dev1)), /database is locked/);
    fail = false;
    assert.ok((await a.admit(chainOf(f.dev1))).ok);
  });
});
