import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { children, nullValue, oid, printable, readElement, seq, Tag, tlv, utf8 } from './der.js';
import { PkiError, type PkiErrorCode } from './errors.js';
import { generateKeyPair, importSpki } from './keys.js';
import { decodeName, encodeName, formatName, parseName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { PROFILES } from './profile.js';
import { issuerInfoFromCertificate } from './issuer.js';
import { CertificateTemplate } from './template.js';
import { makeChild, makeRoot, signPrepared } from './testing/hierarchy.js';
import { openssl } from './testing/openssl.js';

const hasCode = (code: PkiErrorCode) => (err: unknown) => err instanceof PkiError && err.code === code;
const at = (type: string, value: string): NameAttribute => ({ type, value });
const CN = (v: string) => at(OID.commonName, v);
const O = (v: string) => at(OID.organization, v);

/** A Name from raw attribute values, one RDN each, as another implementation might write it. */
const rawName = (...atvs: Array<[string, Buffer]>): Buffer => seq(...atvs.map(([t, v]) => tlv(Tag.Set, seq(oid(t), v))));

/** The string tag of each attribute value, in order. */
function valueTags(der: Buffer): number[] {
  return children(der, readElement(der, 0)).flatMap((rdn) =>
    children(der, rdn).map((atv) => children(der, atv)[1]!.tag),
  );
}

describe('encodeName / decodeName round trip', () => {
  const cases: Array<[string, NameAttribute[]]> = [
    ['one CN', [CN('dev-1')]],
    [
      'every attribute a profile copies',
      [at(OID.country, 'DE'), O('Acme'), at(OID.organizationalUnit, 'Line 2'), CN('dev-1'), at(OID.serialNumber, 'SN-0042')],
    ],
    ['Japanese', [O('日本語の会社'), CN('デバイス一号')]],
    ['Korean', [O('한국어'), CN('장치-1')]],
    ['characters outside the BMP', [CN('🔒 lock')]],
    ['escapable characters kept verbatim', [CN('a,b+c"d\\e #f ')]],
  ];
  for (const [name, attrs] of cases) {
    it(name, () => assert.deepEqual(decodeName(encodeName(attrs)), attrs));
  }

  it('countryName and serialNumber are PrintableString, the rest UTF8String (RFC 5280 App. A, §4.1.2.6)', () => {
    const der = encodeName([at(OID.country, 'DE'), O('Acme'), CN('日本'), at(OID.serialNumber, '42')]);
    assert.deepEqual(valueTags(der), [Tag.PrintableString, Tag.Utf8String, Tag.Utf8String, Tag.PrintableString]);
  });

  it('decodes BMPString and PrintableString values written by others', () => {
    const der = rawName([OID.commonName, tlv(0x1e, Buffer.from('65e5672c', 'hex'))], [OID.organization, printable('Acme')]);
    assert.deepEqual(decodeName(der), [CN('日本'), O('Acme')]);
  });

  const refused: Array<[string, Buffer]> = [
    ['a BMPString of odd length', rawName([OID.commonName, tlv(0x1e, Buffer.from('65e567', 'hex'))])],
    ['an unsupported string type (NumericString)', rawName([OID.commonName, tlv(0x12, Buffer.from('123'))])],
    ['an RDN that is not a SET', seq(seq(seq(oid(OID.commonName), utf8('abc'))))],
    ['an attribute with a third element', seq(tlv(Tag.Set, seq(oid(OID.commonName), utf8('abc'), nullValue)))],
    ['a truncated Name', rawName([OID.commonName, utf8('abc')]).subarray(0, 10)],
  ];
  for (const [name, der] of refused) {
    it(`refuses ${name} with a PkiError`, () => assert.throws(() => decodeName(der), hasCode('malformed-der')));
  }
});

describe('encodeName lints', () => {
  const cases: Array<[string, NameAttribute[], boolean]> = [
    ['a CN of 64 characters', [CN('x'.repeat(64))], true],
    ['a CN of 65 characters', [CN('x'.repeat(65))], false],
    ['a CN of 64 non-ASCII characters (counted as characters, not bytes)', [CN('語'.repeat(64))], true],
    ['a CN of 65 non-ASCII characters', [CN('語'.repeat(65))], false],
    ['an empty CN', [CN('')], false],
    ['country US', [at(OID.country, 'US')], true],
    ['country of three letters', [at(OID.country, 'USA')], false],
    ['country of one letter', [at(OID.country, 'U')], false],
    ['country outside PrintableString', [at(OID.country, '日本')], false],
    ['country with a PrintableString-excluded character', [at(OID.country, 'D@')], false],
    ['serialNumber outside PrintableString', [at(OID.serialNumber, 'a_b')], false],
  ];
  for (const [name, attrs, ok] of cases) {
    it(`${ok ? 'accepts' : 'refuses'} ${name}`, () => {
      if (ok) assert.deepEqual(decodeName(encodeName(attrs)), attrs);
      else assert.throws(() => encodeName(attrs), hasCode('lint-failed'));
    });
  }
});

describe('formatName prints RFC 4514, most specific RDN first', () => {
  it('reverses the DER order', () => {
    assert.equal(formatName([at(OID.country, 'DE'), O('Acme'), CN('dev-1')]), 'CN=dev-1,O=Acme,C=DE');
  });

  // RFC 4514 §2.4: escape , + " \ < > ; anywhere, # and space at the start, space at the end.
  const cases: Array<[string, string]> = [
    ['plain', 'CN=plain'],
    ['a,b', 'CN=a\\,b'],
    ['a+b', 'CN=a\\+b'],
    ['say "hi"', 'CN=say \\"hi\\"'],
    ['back\\slash', 'CN=back\\\\slash'],
    ['a;b<c>d', 'CN=a\\;b\\<c\\>d'],
    ['#1', 'CN=\\#1'],
    ['a#1', 'CN=a#1'],
    [' lead', 'CN=\\ lead'],
    ['trail ', 'CN=trail\\ '],
    ['  ', 'CN=\\ \\ '],
    [' ', 'CN=\\ '],
    ['in the middle', 'CN=in the middle'],
  ];
  for (const [value, expected] of cases) {
    it(JSON.stringify(value), () => assert.equal(formatName([CN(value)]), expected));
  }
});

describe('parseName', () => {
  const same: Array<[string, string]> = [
    ['CN=a,O=b', '/O=b/CN=a'],
    ['CN=dev-1, O=Acme Corp, C=DE', '/C=DE/O=Acme Corp/CN=dev-1'],
    ['cn=a,o=b', '/O=b/CN=a'],
    ['CN=a\\,b,O=c', '/O=c/CN=a,b'],
    ['2.5.4.3=a,O=b', '/O=b/CN=a'],
  ];
  for (const [comma, slash] of same) {
    it(`${comma} and ${slash} give the same attributes`, () => {
      assert.deepEqual(parseName(comma), parseName(slash));
    });
  }

  it('CN=a,O=b is O then CN in DER order', () => assert.deepEqual(parseName('CN=a,O=b'), [O('b'), CN('a')]));

  it('reads back what formatName prints', () => {
    const attrs = [at(OID.country, 'DE'), O('Acme, Inc.'), at(OID.organizationalUnit, '#2 + "3"'), CN(' dev;1')];
    assert.deepEqual(parseName(formatName(attrs)), attrs);
  });

  const refused: Array<[string, string]> = [
    ['an unknown attribute', 'XX=a'],
    ['a component without =', 'CN=a,b'],
    ['an empty type', '=a'],
  ];
  for (const [name, s] of refused) it(`refuses ${name}`, () => assert.throws(() => parseName(s), hasCode('lint-failed')));
});

describe('formatName agrees with openssl -nameopt RFC2253', () => {
  const root = makeRoot();
  const inter = makeChild(root, PROFILES['intermediate-ca']);
  const template = new CertificateTemplate(issuerInfoFromCertificate('inter', inter.cert), PROFILES.device);
  const cases: Array<[string, NameAttribute[]]> = [
    ['a plain ASCII name', parseName('CN=device-1,OU=Line 2,O=Acme Corp,C=DE')],
    ['with a serialNumber', [O('Acme'), at(OID.serialNumber, 'SN-0042'), CN('dev-42')]],
    ['with characters to escape', [O('Acme, Inc.'), CN('#1 "quoted" a+b;c<d>e\\f ')]],
    ['with a leading space', [CN(' lead')]],
  ];
  for (const [name, subject] of cases) {
    it(name, () => {
      const { publicKey } = generateKeyPair('ec-p256');
      const cert = signPrepared(
        template,
        { subject, publicKey: importSpki(publicKey.export({ format: 'der', type: 'spki' })), now: new Date() },
        inter.key,
      );
      const r = openssl(['x509', '-in', 'c.pem', '-noout', '-subject', '-nameopt', 'RFC2253'], { 'c.pem': cert.toPem() });
      assert.equal(r.ok, true, r.out);
      assert.equal(r.out.trim(), `subject=${formatName(subject)}`);
      assert.equal(cert.subject(), formatName(subject));
    });
  }
});
