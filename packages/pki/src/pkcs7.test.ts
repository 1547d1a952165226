import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PkiError } from './errors.js';
import { certsOnlyPkcs7 } from './pkcs7.js';
import { PROFILES } from './profile.js';
import { makeChild, makeRoot } from './testing/hierarchy.js';
import { openssl } from './testing/openssl.js';

describe('certsOnlyPkcs7 (RFC 7030 §4.1.3)', () => {
  const root = makeRoot('ec-p256', 'CN=PKCS7 Root');
  const inter = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=PKCS7 Issuing CA' });
  const rsaRoot = makeRoot('rsa-2048', 'CN=PKCS7 RSA Root');
  const cases: Array<[string, typeof root.cert[]]> = [
    ['one root', [root.cert]],
    ['a chain, in the order given', [inter.cert, root.cert]],
    ['three certificates of mixed key types', [root.cert, rsaRoot.cert, inter.cert]],
  ];
  for (const [name, certs] of cases) {
    it(`${name}: openssl pkcs7 -print_certs lists them`, () => {
      const der = certsOnlyPkcs7(certs);
      const r = openssl(['pkcs7', '-inform', 'DER', '-in', 'p7.der', '-print_certs', '-noout'], { 'p7.der': der });
      assert.equal(r.ok, true, r.out);
      const subjects = [...r.out.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]!.replace(/\s/g, ''));
      assert.deepEqual(subjects, certs.map((c) => c.subject().replace(/\s/g, '')));
      // The PEM openssl prints back is byte-identical to the input certificates.
      const pem = openssl(['pkcs7', '-inform', 'DER', '-in', 'p7.der', '-print_certs'], { 'p7.der': der }).out;
      assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, certs.length);
      for (const c of certs) assert.ok(pem.replace(/\r/g, '').includes(c.toPem().trim()), c.subject());
    });
  }

  it('is a SignedData v1 with no content and no signers (RFC 5652 §5.1), as openssl cms reads it', () => {
    const r = openssl(['cms', '-cmsout', '-inform', 'DER', '-in', 'p7.der', '-print', '-noout'], { 'p7.der': certsOnlyPkcs7([inter.cert, root.cert]) });
    assert.equal(r.ok, true, r.out);
    const expected = [
      /contentType: pkcs7-signedData \(1\.2\.840\.113549\.1\.7\.2\)/,
      /d\.signedData: \n\s+version: 1\n/,
      /digestAlgorithms:\n\s+<EMPTY>/,
      /eContentType: pkcs7-data .*\n\s+eContent: <ABSENT>/,
      /crls:\n\s+<ABSENT>/,
      /signerInfos:\n\s+<EMPTY>/,
    ];
    for (const re of expected) assert.match(r.out, re);
    assert.equal(r.out.match(/d\.certificate:/g)?.length, 2);
  });

  it('refuses an empty list', () => {
    assert.throws(() => certsOnlyPkcs7([]), (e: unknown) => e instanceof PkiError && e.code === 'lint-failed');
  });
});
