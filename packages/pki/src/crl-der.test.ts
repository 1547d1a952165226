import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bigTlv, decodeTime, headerSize, readBigElement, TimeEncoder, toSeconds } from './crl-der.js';
import { readElement, time } from './der.js';
import { PkiError } from './errors.js';
import { findDuplicateSerial } from './crl-duplicates.js';

describe('TimeEncoder writes exactly what der.time() writes', () => {
  const dates = [
    '1949-12-31T23:59:59Z',
    '1950-01-01T00:00:00Z',
    '1970-01-01T00:00:00Z',
    '1999-12-31T23:59:59.999Z',
    '2026-03-14T15:09:26.535Z',
    '2049-12-31T23:59:59Z',
    '2050-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '0001-01-01T00:00:00Z',
  ];
  const enc = new TimeEncoder();
  for (const iso of dates) {
    it(iso, () => {
      const d = new Date(iso);
      const sec = toSeconds(d, 'd');
      const out = Buffer.alloc(enc.size(sec));
      assert.equal(enc.write(out, 0, sec), out.length);
      assert.equal(out.toString('hex'), time(d).toString('hex'));
      // and decodeTime reads it back, to the second
      assert.equal(decodeTime(out, readElement(out, 0)).getTime(), sec * 1000);
    });
  }
});

describe('decodeTime refuses what RFC 5280 §4.1.2.5 does not allow', () => {
  const cases: Array<[string, number, string]> = [
    ['fractional seconds', 0x18, '20260101000000.5Z'],
    ['a local time', 0x17, '260101000000'],
    ['an offset', 0x17, '260101000000+0100'],
    ['no seconds', 0x17, '2601010000Z'],
    ['February 30th', 0x17, '260230000000Z'],
    ['hour 24', 0x18, '20260101240000Z'],
    ['a wrong tag', 0x04, '260101000000Z'],
  ];
  for (const [name, tag, text] of cases) {
    it(name, () => {
      const der = Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'ascii')]);
      assert.throws(() => decodeTime(der, readElement(der, 0)), PkiError);
    });
  }
});

describe('lengths beyond der.ts (4 octets)', () => {
  const cases: Array<[number, number]> = [
    [0x7f, 2],
    [0x80, 3],
    [0xffff, 4],
    [0xffffff, 5],
    [0x1000000, 6],
  ];
  for (const [len, size] of cases) {
    it(`${len} content octets: a ${size}-octet header that reads back`, () => {
      assert.equal(headerSize(len), size);
      const el = bigTlv(0x04, Buffer.alloc(len));
      assert.deepEqual(readBigElement(el, 0), { tag: 0x04, start: 0, contentStart: size, end: size + len });
    });
  }
  it('refuses a non-minimal 4-octet length and an overrun', () => {
    assert.throws(() => readBigElement(Buffer.from([0x30, 0x84, 0, 0, 0, 1, 0]), 0), /non-minimal/);
    assert.throws(() => readBigElement(Buffer.from([0x30, 0x84, 1, 0, 0, 0, 0]), 0), /overruns/);
  });
});

describe('findDuplicateSerial', () => {
  /** INTEGER contents laid out as in a CRL: a length octet, then the bytes. */
  function layout(serials: string[]): [Buffer, Uint32Array] {
    const parts = serials.map((s) => Buffer.concat([Buffer.from([s.length / 2]), Buffer.from(s, 'hex')]));
    const offsets = new Uint32Array(serials.length);
    let p = 0;
    parts.forEach((b, i) => {
      offsets[i] = p + 1;
      p += b.length;
    });
    return [Buffer.concat(parts), offsets];
  }
  const cases: Array<[string, string[], number]> = [
    ['none', ['01', '02', '0102', '0201'], -1],
    ['a repeat', ['01', '02', '03', '02'], 3],
    ['a prefix is not a repeat', ['0102', '01', '010200'], -1],
    ['many distinct', Array.from({ length: 70_000 }, (_, i) => (i + 1).toString(16).padStart(6, '0')), -1],
  ];
  for (const [name, serials, expected] of cases) {
    it(name, () => {
      const [buf, offsets] = layout(serials);
      assert.equal(findDuplicateSerial(buf, offsets), expected);
    });
  }
});
