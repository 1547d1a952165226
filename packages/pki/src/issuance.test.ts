import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OID } from './oids.js';
import { PROFILES, withPathLen } from './profile.js';
import { validateChain } from './chain.js';
import { makeChild, makeRoot } from './testing/hierarchy.js';
import { openssl } from './testing/openssl.js';
import type { KeyAlgorithm } from './keys.js';

const ALGS: KeyAlgorithm[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048', 'rsa-3072'];

describe('issued hierarchies pass openssl verify -x509_strict', () => {
  for (const alg of ALGS) {
    it(`${alg} root, intermediate and device`, () => {
      const root = makeRoot(alg);
      const inter = makeChild(root, PROFILES['intermediate-ca'], { alg, name: 'CN=Test Issuing CA,O=certfleet' });
      const device = makeChild(inter, PROFILES.device, { alg, name: 'CN=device-1', sans: [{ type: 'uri', value: 'urn:device:1' }] });
      const r = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'], {
        'root.pem': root.cert.toPem(),
        'inter.pem': inter.cert.toPem(),
        'leaf.pem': device.cert.toPem(),
      });
      assert.equal(r.ok, true, r.out);
      assert.match(r.out, /leaf.pem: OK/);
      const path = validateChain(device.cert, { intermediates: [inter.cert], roots: [root.cert], at: new Date(), purpose: OID.clientAuth });
      assert.equal(path.length, 3);
    });
  }

  it('server certificates carry serverAuth and their SANs', () => {
    const root = makeRoot();
    const inter = makeChild(root, PROFILES['intermediate-ca']);
    const server = makeChild(inter, PROFILES.server, { name: 'CN=localhost', sans: [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' }] });
    const r = openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'localhost', '-verify_ip', '127.0.0.1', '-CAfile', 'r.pem', '-untrusted', 'i.pem', 's.pem'], {
      'r.pem': root.cert.toPem(),
      'i.pem': inter.cert.toPem(),
      's.pem': server.cert.toPem(),
    });
    assert.equal(r.ok, true, r.out);
    assert.deepEqual(server.cert.subjectAltNames(), [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]);
    assert.deepEqual(server.cert.extKeyUsage(), [OID.serverAuth]);
  });
});

describe('the certificate carries what the profile says', () => {
  const root = makeRoot();
  const inter = makeChild(root, PROFILES['intermediate-ca']);
  const device = makeChild(inter, PROFILES.device, { name: 'CN=dev-7,O=Acme', validityDays: 30 });

  const cases: Array<[string, () => unknown, unknown]> = [
    ['serial is 128 bits', () => device.cert.serial().length, 32],
    ['subject', () => device.cert.subject(), 'CN=dev-7,O=Acme'],
    ['issuer is the intermediate', () => device.cert.issuer(), 'CN=intermediate-ca'],
    ['not a CA', () => device.cert.basicConstraints()?.ca, false],
    ['keyUsage', () => device.cert.keyUsage(), ['digitalSignature']],
    ['extKeyUsage', () => device.cert.extKeyUsage(), [OID.clientAuth]],
    ['intermediate pathLen 0', () => inter.cert.basicConstraints()?.pathLen, 0],
    ['AKI is the issuer SKI', () => device.cert.authorityKeyIdentifier()?.equals(inter.cert.subjectKeyIdentifier()!), true],
    ['validity is 30 days', () => Math.round((device.cert.notAfter().getTime() - Date.now()) / 86_400_000), 30],
  ];
  for (const [name, actual, expected] of cases) it(name, () => assert.deepEqual(actual(), expected));
});

describe('chain validation refuses', () => {
  const root = makeRoot();
  const inter = makeChild(root, PROFILES['intermediate-ca']);
  const device = makeChild(inter, PROFILES.device);
  const otherRoot = makeRoot('ec-p256', 'CN=Test Root');
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['an untrusted root with the same name', () => validateChain(device.cert, { intermediates: [inter.cert], roots: [otherRoot.cert], at: new Date() }), /no trusted issuer|issuer/],
    ['a missing intermediate', () => validateChain(device.cert, { roots: [root.cert], at: new Date() }), /no trusted issuer/],
    ['an expired leaf', () => validateChain(device.cert, { intermediates: [inter.cert], roots: [root.cert], at: new Date(Date.now() + 400 * 86_400_000) }), /expired/],
    ['a leaf before its validity', () => validateChain(device.cert, { intermediates: [inter.cert], roots: [root.cert], at: new Date(Date.now() - 2 * 86_400_000) }), /not valid until/],
    ['the wrong purpose', () => validateChain(device.cert, { intermediates: [inter.cert], roots: [root.cert], at: new Date(), purpose: OID.serverAuth }), /purpose/],
    [
      'a leaf signed by an end entity',
      () => {
        const fake = makeChild(device, PROFILES.device);
        return validateChain(fake.cert, { intermediates: [inter.cert, device.cert], roots: [root.cert], at: new Date() });
      },
      /not a CA/,
    ],
    [
      'a CA below a pathLen 0 intermediate',
      () => {
        const sub = makeChild(inter, withPathLen(PROFILES['intermediate-ca'], null));
        return sub;
      },
      /pathLenConstraint 0/,
    ],
  ];
  for (const [name, fn, re] of cases) it(name, () => assert.throws(fn, re));
});
