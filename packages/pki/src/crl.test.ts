import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Certificate } from './certificate.js';
import { assembleCrl, type CrlEntry, type CrlRequest, isPreparedCrl, prepareCrl } from './crl.js';
import { parseCrl, verifyCrl } from './crl-parse.js';
import { PkiError } from './errors.js';
import { issuerInfoFromCertificate } from './issuer.js';
import { generateKeyPair, importSpki, type KeyAlgorithm, schemeForKey, signWith } from './keys.js';
import { parseName } from './name.js';
import { encodePem } from './pem.js';
import { PROFILES } from './profile.js';
import { REVOCATION_REASONS } from './revocation-reason.js';
import { CertificateTemplate } from './template.js';
import { makeChild, makeRoot, signPrepared, type TestCa } from './testing/hierarchy.js';

const URL = 'http://localhost:8080/crl/inter.crl';

/**
 * testing/openssl.ts keeps only stdout on success, and `openssl crl -verify`
 * says "verify OK" on stderr: this variant keeps both.
 */
function openssl(args: string[], files: Record<string, string | Buffer> = {}): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-crl-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const HOUR = 3_600_000;

/** A device certificate whose CRL distribution point is `crlUrl` (OpenSSL matches it against the IDP). */
function leaf(ca: TestCa, name: string, crlUrl = URL): Certificate {
  const { publicKey } = generateKeyPair('ec-p256');
  const template = new CertificateTemplate(issuerInfoFromCertificate('ca', ca.cert, { crl: crlUrl }), PROFILES.device);
  const spki = importSpki(publicKey.export({ format: 'der', type: 'spki' }));
  return signPrepared(template, { subject: parseName(name), publicKey: spki, now: new Date() }, ca.key);
}

function signCrl(ca: TestCa, req: Omit<CrlRequest, 'issuer'>): Buffer {
  const p = prepareCrl({ issuer: issuerInfoFromCertificate('ca', ca.cert), ...req });
  const scheme = schemeForKey(ca.key);
  return assembleCrl(p.tbs, scheme, signWith(scheme, p.tbs, ca.key));
}

const window = (): Pick<CrlRequest, 'thisUpdate' | 'nextUpdate'> => ({ thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 24 * HOUR) });

describe('CRLs signed by each CA key type pass openssl', () => {
  const algs: KeyAlgorithm[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'];
  for (const alg of algs) {
    it(`${alg}: crl -verify, crl -text, verify -crl_check`, () => {
      const root = makeRoot(alg);
      const inter = makeChild(root, PROFILES['intermediate-ca'], { alg, name: 'CN=Issuing CA,O=certfleet' });
      const revoked = leaf(inter, 'CN=revoked-device');
      const good = leaf(inter, 'CN=good-device');
      const der = signCrl(inter, {
        ...window(),
        crlNumber: 42n,
        entries: [
          { serial: revoked.serial(), revokedAt: new Date(Date.now() - HOUR), reason: REVOCATION_REASONS.keyCompromise },
          { serial: 'ff01', revokedAt: new Date(), reason: REVOCATION_REASONS.superseded },
          { serial: '0a', revokedAt: new Date() },
        ],
        idp: { url: URL },
      });
      const files = {
        'crl.der': der,
        'crl.pem': encodePem('X509 CRL', der),
        'chain.pem': root.cert.toPem() + inter.cert.toPem(),
        'root.pem': root.cert.toPem(),
        'inter.pem': inter.cert.toPem(),
        'revoked.pem': revoked.toPem(),
        'good.pem': good.toPem(),
      };
      const v = openssl(['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'chain.pem', '-noout', '-verify'], files);
      assert.match(v.out, /verify OK/);

      const text = openssl(['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-text'], files).out;
      for (const expected of [revoked.serial().toUpperCase(), 'Key Compromise', 'FF01', 'Superseded', 'Serial Number: 0A', 'CRL Number: \\s+42', 'Issuing Distribution Point: critical', 'URI:' + URL, 'Only User Certificates']) {
        assert.match(text, new RegExp(expected), `"${expected}" not in:\n${text}`);
      }

      const check = (cert: string) =>
        openssl(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', cert], files);
      const refused = check('revoked.pem');
      assert.equal(refused.ok, false);
      assert.match(refused.out, /certificate revoked/);
      const accepted = check('good.pem');
      assert.equal(accepted.ok, true, accepted.out);
      assert.match(accepted.out, /good.pem: OK/);
    });
  }
});

describe('CRL contents', () => {
  const root = makeRoot();
  const inter = makeChild(root, PROFILES['intermediate-ca']);
  const chain = root.cert.toPem() + inter.cert.toPem();

  it('every reason is written as openssl names it; unspecified writes no extension (§5.3.1)', () => {
    const names: Array<[number, string]> = [
      [0, ''],
      [1, 'Key Compromise'],
      [2, 'CA Compromise'],
      [3, 'Affiliation Changed'],
      [4, 'Superseded'],
      [5, 'Cessation Of Operation'],
      [6, 'Certificate Hold'],
      [9, 'Privilege Withdrawn'],
      [10, 'AA Compromise'],
    ];
    const der = signCrl(inter, { ...window(), crlNumber: 1n, entries: names.map(([reason], i) => ({ serial: (0x100 + i).toString(16), revokedAt: new Date(), reason })) });
    const text = openssl(['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-text'], { 'crl.der': der }).out;
    const blocks = text.split('Serial Number: ').slice(1);
    assert.equal(blocks.length, names.length);
    names.forEach(([, name], i) => {
      if (name) assert.match(blocks[i]!, new RegExp(`CRL Reason Code: \\s+${name}`));
      else assert.doesNotMatch(blocks[i]!, /CRL entry extensions/);
    });
    assert.deepEqual([...parseCrl(der).entries()].map((e) => e.reason ?? 0), names.map(([r]) => r));
  });

  it('an empty CRL has no revokedCertificates list (§5.1.2.6) and verifies', () => {
    const der = signCrl(inter, { ...window(), crlNumber: 0n, entries: [] });
    assert.match(openssl(['crl', '-inform', 'DER', '-in', 'c.der', '-CAfile', 'chain.pem', '-noout', '-verify'], { 'c.der': der, 'chain.pem': chain }).out, /verify OK/);
    assert.equal(parseCrl(der).count, 0);
  });

  it('dates from 2050 are GeneralizedTime; serials are canonicalised; generators are read once', () => {
    function* entries(): Generator<CrlEntry> {
      yield { serial: '00ab', revokedAt: new Date('2051-06-01T12:34:56.789Z'), reason: 4 };
      yield { serial: '80', revokedAt: new Date('1999-12-31T23:59:59Z') };
      yield { serial: '7f' + 'ee'.repeat(19), revokedAt: new Date('2049-12-31T23:59:59Z') };
    }
    const der = signCrl(inter, { thisUpdate: new Date('2049-12-31T00:00:00Z'), nextUpdate: new Date('2050-01-02T00:00:00Z'), crlNumber: 2n ** 100n, entries: entries() });
    const crl = parseCrl(der);
    assert.deepEqual(
      [...crl.entries()].map((e) => [e.serial, e.revokedAt.toISOString()]),
      [
        ['ab', '2051-06-01T12:34:56.000Z'],
        ['80', '1999-12-31T23:59:59.000Z'],
        ['7f' + 'ee'.repeat(19), '2049-12-31T23:59:59.000Z'],
      ],
    );
    assert.equal(crl.nextUpdate?.toISOString(), '2050-01-02T00:00:00.000Z');
    assert.equal(crl.crlNumber, 2n ** 100n);
    const text = openssl(['crl', '-inform', 'DER', '-in', 'c.der', '-noout', '-text'], { 'c.der': der }).out;
    assert.match(text, /Jun  1 12:34:56 2051 GMT/);
    assert.match(text, /Next Update: Jan  2 00:00:00 2050 GMT/);
  });

  it('parseCrl reads back what prepareCrl wrote, and verifyCrl checks the signature', () => {
    const entries = Array.from({ length: 50 }, (_, i) => ({ serial: randomBytes(16).toString('hex'), revokedAt: new Date(1_700_000_000_000 + i * 1000), reason: i % 2 }));
    const der = signCrl(inter, { thisUpdate: new Date('2026-01-01T00:00:00Z'), nextUpdate: new Date('2026-01-08T00:00:00Z'), crlNumber: 9n, entries, idp: { url: URL } });
    const crl = parseCrl(der);
    assert.equal(crl.version, 2);
    assert.ok(crl.issuerDer.equals(inter.cert.subjectDer));
    assert.ok(crl.authorityKeyIdentifier?.equals(inter.cert.subjectKeyIdentifier()!));
    assert.equal(crl.crlNumber, 9n);
    assert.equal(crl.distributionPoint, URL);
    assert.equal(crl.thisUpdate.toISOString(), '2026-01-01T00:00:00.000Z');
    assert.equal(crl.count, 50);
    assert.deepEqual(
      [...crl.entries()],
      entries.map((e) => ({ serial: e.serial.replace(/^(00)+/, ''), revokedAt: e.revokedAt, ...(e.reason ? { reason: e.reason } : {}) })),
    );
    assert.equal(verifyCrl(der, inter.cert.publicKey), true);
    assert.equal(verifyCrl(crl, root.cert.publicKey), false);
    const tampered = Buffer.from(der);
    tampered[der.indexOf(Buffer.from(entries[10]!.serial, 'hex').subarray(8))]! ^= 1;
    assert.equal(verifyCrl(tampered, inter.cert.publicKey), false);
  });

  it('a CRL over 16 MiB (4-octet lengths, past der.ts) verifies with openssl and parses', () => {
    const n = 380_000;
    const base = Math.floor(Date.now() / 1000) * 1000 - 400 * 24 * HOUR;
    const entries = Array.from({ length: n }, (_, i) => ({ serial: (0x10000000 + i).toString(16) + 'a'.repeat(24), revokedAt: new Date(base + i * 60_000), reason: i % 3 }));
    const der = signCrl(inter, { ...window(), crlNumber: 3n, entries });
    assert.ok(der.length > 0x1000000, `${der.length} bytes`);
    assert.equal(der[1], 0x84);
    const r = openssl(['crl', '-inform', 'DER', '-in', 'c.der', '-CAfile', 'chain.pem', '-noout', '-verify'], { 'c.der': der, 'chain.pem': chain });
    assert.match(r.out, /verify OK/);
    const crl = parseCrl(der);
    assert.equal(crl.count, n);
    assert.equal(verifyCrl(crl, inter.cert.publicKey), true);
    let last;
    for (last of crl.entries());
    assert.deepEqual(last, { serial: entries[n - 1]!.serial, revokedAt: entries[n - 1]!.revokedAt, reason: (n - 1) % 3 });
  });

  it('prepared CRLs are branded and frozen', () => {
    const p = prepareCrl({ issuer: issuerInfoFromCertificate('inter', inter.cert), ...window(), crlNumber: 1n, entries: [] });
    assert.equal(isPreparedCrl(p), true);
    assert.equal(isPreparedCrl({ ...p }), false);
    assert.ok(Object.isFrozen(p));
    assert.equal(p.issuerId, 'inter');
  });
});

describe('prepareCrl refuses', () => {
  const root = makeRoot();
  const issuer = issuerInfoFromCertificate('root', root.cert);
  const now = new Date();
  const entry = (e: Partial<CrlEntry>): CrlEntry => ({ serial: '01', revokedAt: now, ...e });
  const cases: Array<[string, Partial<CrlRequest>, RegExp]> = [
    ['a non-hex serial', { entries: [entry({ serial: 'xyz1' })] }, /not hex/],
    ['serial zero', { entries: [entry({ serial: '000' })] }, /positive/],
    ['an empty serial', { entries: [entry({ serial: '' })] }, /positive/],
    ['a serial over 20 octets', { entries: [entry({ serial: '01'.repeat(21) })] }, /20 octets/],
    ['a serial needing a 21st sign octet', { entries: [entry({ serial: '80'.repeat(20) })] }, /20 octets/],
    ['a serial listed twice, however spelt', { entries: [entry({ serial: '0a' }), entry({ serial: 'b' }), entry({ serial: 'A' })] }, /listed twice/],
    ['reason 7 (unassigned)', { entries: [entry({ reason: 7 })] }, /not a CRLReason/],
    ['removeFromCRL in a full CRL', { entries: [entry({ reason: 8 })] }, /delta/],
    ['an invalid revocation date', { entries: [entry({ revokedAt: new Date(NaN) })] }, /not a valid date/],
    ['nextUpdate before thisUpdate', { nextUpdate: new Date(now.getTime() - 1000) }, /nextUpdate/],
    ['a nextUpdate past year 9999', { nextUpdate: new Date('+010000-01-01T00:00:00Z') }, /year 10000/],
    ['a revocation date past year 9999', { entries: [entry({ revokedAt: new Date('+010000-01-01T00:00:00Z') })] }, /year 10000/],
    ['a negative cRLNumber', { crlNumber: -1n }, /cRLNumber/],
    ['a cRLNumber over 20 octets', { crlNumber: 2n ** 159n }, /cRLNumber/],
    ['an IDP URL that is not a URI', { idp: { url: 'not a url' } }, /URI/],
  ];
  for (const [name, override, re] of cases) {
    it(name, () => {
      const req: CrlRequest = { issuer, thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR), crlNumber: 1n, entries: [], ...override };
      assert.throws(() => prepareCrl(req), (err: unknown) => err instanceof PkiError && err.code === 'lint-failed' && re.test(err.message));
    });
  }
});

describe('parseCrl refuses malformed input', () => {
  const root = makeRoot();
  const der = signCrl(root, { ...window(), crlNumber: 1n, entries: [{ serial: '01', revokedAt: new Date() }] });
  const cases: Array<[string, Buffer]> = [
    ['empty input', Buffer.alloc(0)],
    ['garbage', Buffer.from('not a crl at all')],
    ['a truncated CRL', der.subarray(0, der.length - 1)],
    ['trailing bytes', Buffer.concat([der, Buffer.from([0])])],
    ['a certificate', root.cert.der],
  ];
  for (const [name, input] of cases) {
    it(name, () => assert.throws(() => parseCrl(input), (err: unknown) => err instanceof PkiError && err.code === 'malformed-der'));
  }

  it('answers or throws PkiError for 2,000 random corruptions, entries included', () => {
    const sample = signCrl(root, { ...window(), crlNumber: 5n, entries: [1, 2, 3].map((i) => ({ serial: `0${i}`, revokedAt: new Date(), reason: i })), idp: { url: URL } });
    let seed = 11;
    const rand = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(sample.subarray(0, i % 3 === 0 ? rand(sample.length) : sample.length));
      for (let k = 0; k < 1 + rand(3); k++) if (m.length > 0) m[rand(m.length)] = rand(256);
      try {
        const crl = parseCrl(m);
        for (const _ of crl.entries());
        verifyCrl(crl, root.cert.publicKey);
      } catch (err) {
        assert.ok(err instanceof PkiError, `${(err as Error).stack}\ninput ${m.toString('hex')}`);
      }
    }
  });
});
