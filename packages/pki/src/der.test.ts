import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { children, decodeOid, oid, readElement, Tag, time, tlv, uintBytes } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';

const isDerError = (err: unknown): boolean => err instanceof PkiError && err.code === 'malformed-der';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('tlv writes definite, minimal lengths (X.690 §8.1.3, §10.1)', () => {
  const cases: Array<[number, string]> = [
    [0, '0400'],
    [127, '047f'],
    [128, '048180'],
    [255, '0481ff'],
    [256, '04820100'],
    [65535, '0482ffff'],
    [65536, '0483010000'],
  ];
  for (const [len, header] of cases) {
    it(`${len} content bytes`, () => {
      const body = Buffer.alloc(len, 0xab);
      const der = tlv(Tag.OctetString, body);
      assert.equal(hex(der.subarray(0, header.length / 2)), header);
      assert.equal(der.length, header.length / 2 + len);
      // The reader agrees with the writer.
      const el = readElement(der, 0);
      assert.deepEqual(el, { tag: Tag.OctetString, start: 0, contentStart: header.length / 2, end: der.length });
    });
  }

  it('concatenates several contents', () => {
    assert.equal(hex(tlv(Tag.Sequence, Buffer.from([1]), Buffer.from([2, 3]))), '3003010203');
  });
});

describe('OIDs', () => {
  for (const [name, dotted] of Object.entries(OID)) {
    it(`${name} (${dotted}) round-trips`, () => {
      const der = oid(dotted);
      assert.equal(decodeOid(der, readElement(der, 0)), dotted);
    });
  }

  // Known encodings, the last from X.690 §8.19.5's example (2.999.3): the
  // first subidentifier 2*40+999 = 1079 needs two base-128 octets.
  const known: Array<[string, string]> = [
    ['1.2.840.10045.2.1', '06072a8648ce3d0201'],
    ['2.5.29.17', '0603551d11'],
    ['1.3.101.112', '06032b6570'],
    ['2.999.3', '0603883703'],
  ];
  for (const [dotted, der] of known) {
    it(`${dotted} encodes as ${der}`, () => {
      assert.equal(hex(oid(dotted)), der);
      assert.equal(decodeOid(Buffer.from(der, 'hex'), readElement(Buffer.from(der, 'hex'), 0)), dotted);
    });
  }

  const bad: Array<[string, string]> = [
    ['a single arc', '1'],
    ['a non-number', '1.2.x'],
    ['a negative arc', '1.-2.3'],
    ['first arc above 2', '3.1'],
    ['second arc of 40 under arc 1', '1.40'],
  ];
  for (const [name, dotted] of bad) it(`refuses ${name} (${dotted})`, () => assert.throws(() => oid(dotted), isDerError));

  const badDer: Array<[string, string]> = [
    ['an empty OID', '0600'],
    ['a truncated last arc', '06022a86'],
    ['a non-minimal arc (leading 0x80)', '06032a8001'],
  ];
  for (const [name, der] of badDer) {
    it(`decodeOid refuses ${name}`, () => {
      const buf = Buffer.from(der, 'hex');
      assert.throws(() => decodeOid(buf, readElement(buf, 0)), isDerError);
    });
  }
});

describe('time() follows RFC 5280 §4.1.2.5', () => {
  const cases: Array<[string, number, string]> = [
    ['2024-02-29T12:34:56.789Z', Tag.UtcTime, '240229123456Z'],
    ['1950-01-01T00:00:00Z', Tag.UtcTime, '500101000000Z'],
    ['2049-12-31T23:59:59Z', Tag.UtcTime, '491231235959Z'],
    ['2050-01-01T00:00:00Z', Tag.GeneralizedTime, '20500101000000Z'],
    ['1949-12-31T23:59:59Z', Tag.GeneralizedTime, '19491231235959Z'],
    ['9999-12-31T23:59:59Z', Tag.GeneralizedTime, '99991231235959Z'],
  ];
  for (const [iso, tag, text] of cases) {
    it(`${iso} is ${tag === Tag.UtcTime ? 'UTCTime' : 'GeneralizedTime'} ${text}`, () => {
      const der = time(new Date(iso));
      assert.equal(der[0], tag);
      assert.equal(der[1], text.length);
      assert.equal(der.subarray(2).toString('ascii'), text);
    });
  }
});

describe('uintBytes', () => {
  const cases: Array<[string, string, string]> = [
    ['small value', '01', '020101'],
    ['zero', '00', '020100'],
    ['zero of several bytes', '000000', '020100'],
    ['high bit gets a 0x00', '80', '02020080'],
    ['high bit after stripped zeros', '000080ff', '02030080ff'],
    ['leading zeros stripped', '00007f01', '02027f01'],
    ['16-byte serial with high bit', 'ff'.repeat(16), '0211' + '00' + 'ff'.repeat(16)],
  ];
  for (const [name, magnitude, der] of cases) {
    it(name, () => assert.equal(hex(uintBytes(Buffer.from(magnitude, 'hex'))), der));
  }
});

describe('readElement accepts DER only', () => {
  const bad: Array<[string, string]> = [
    ['an empty buffer', ''],
    ['a lone tag', '30'],
    ['indefinite length', '30800500' + '0000'],
    ['long form for a short length', '3081050500000000' + '00'],
    ['a leading zero length octet', '3082000505000000' + '0000'],
    ['a length of more than 3 octets', '308400000001' + '00'],
    ['a truncated length', '3082ff'],
    ['content running past the buffer', '3005050000'],
    ['a high tag number', '1f0100'],
  ];
  for (const [name, h] of bad) {
    it(`refuses ${name}`, () => {
      const buf = Buffer.from(h, 'hex');
      assert.throws(() => readElement(buf, 0), isDerError);
    });
  }

  it('refuses content running past the given limit', () => {
    const buf = Buffer.from('0403aabbcc00', 'hex');
    assert.throws(() => readElement(buf, 0, 4), isDerError);
    assert.equal(readElement(buf, 0, 5).end, 5);
  });

  it('refuses a child that overruns its parent', () => {
    // SEQUENCE of length 3 holding an OCTET STRING that claims 3 content bytes.
    const buf = Buffer.from('30030403aabbcc', 'hex');
    assert.throws(() => children(buf, readElement(buf, 0)), isDerError);
  });

  it('reads nested elements at offsets', () => {
    const buf = Buffer.from('3006020101020102', 'hex');
    const parts = children(buf, readElement(buf, 0));
    assert.deepEqual(
      parts.map((e) => [e.tag, e.start, e.contentStart, e.end]),
      [
        [Tag.Integer, 2, 4, 5],
        [Tag.Integer, 5, 7, 8],
      ],
    );
  });
});
