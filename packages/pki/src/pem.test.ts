import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PkiError } from './errors.js';
import { decodePem, decodePemBlocks, encodePem } from './pem.js';

const isPemError = (err: unknown): boolean => err instanceof PkiError && err.code === 'malformed-pem';
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));

describe('PEM round trip (RFC 7468)', () => {
  // Lengths around the 48-byte (64 base64 characters) line boundary and the base64 padding cases.
  for (const n of [1, 2, 3, 47, 48, 49, 300]) {
    it(`${n} bytes`, () => {
      const pem = encodePem('CERTIFICATE', bytes(n));
      for (const line of pem.split('\n').slice(1, -2)) assert.ok(line.length <= 64, `line of ${line.length} characters`);
      assert.deepEqual(decodePem(pem, 'CERTIFICATE'), bytes(n));
    });
  }

  it('accepts CRLF line endings and surrounding text', () => {
    const pem = encodePem('CERTIFICATE REQUEST', bytes(100)).replace(/\n/g, '\r\n');
    assert.deepEqual(decodePem(`explanatory text\r\n${pem}trailer\r\n`, 'CERTIFICATE REQUEST'), bytes(100));
  });
});

describe('several blocks', () => {
  const text = encodePem('CERTIFICATE', bytes(10)) + encodePem('PRIVATE KEY', bytes(20)) + encodePem('CERTIFICATE', bytes(30));

  it('decodePemBlocks returns them in order', () => {
    assert.deepEqual(
      decodePemBlocks(text).map((b) => [b.label, b.der.length]),
      [
        ['CERTIFICATE', 10],
        ['PRIVATE KEY', 20],
        ['CERTIFICATE', 30],
      ],
    );
  });

  it('decodePem picks the one block with the label', () => assert.deepEqual(decodePem(text, 'PRIVATE KEY'), bytes(20)));
  it('decodePem accepts any of several labels', () => assert.deepEqual(decodePem(text, 'EC PRIVATE KEY', 'PRIVATE KEY'), bytes(20)));
});

describe('refusals are malformed-pem', () => {
  const good = encodePem('CERTIFICATE', bytes(30));
  const cases: Array<[string, () => unknown]> = [
    ['empty text', () => decodePemBlocks('')],
    ['text with no block', () => decodePemBlocks('just some text\n')],
    ['a DER buffer read as text', () => decodePemBlocks(bytes(64).toString('latin1'))],
    ['a BEGIN without END', () => decodePemBlocks(good.replace(/-----END[^\n]*\n/, ''))],
    ['a mismatched END label', () => decodePemBlocks(good.replace('END CERTIFICATE', 'END PRIVATE KEY'))],
    ['a character outside base64', () => decodePemBlocks(good.replace(/\n(.)/, '\n!'))],
    ['base64 of a length not a multiple of 4', () => decodePemBlocks(good.replace(/\n(.)/, '\n'))],
    ['padding in the middle', () => decodePemBlocks(good.replace(/\n(..)/, '\n=='))],
    ['an empty body', () => decodePemBlocks('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')],
    ['no block with the wanted label', () => decodePem(good, 'CERTIFICATE REQUEST')],
    ['two blocks with the wanted label', () => decodePem(good + good, 'CERTIFICATE')],
  ];
  for (const [name, fn] of cases) it(name, () => assert.throws(fn, isPemError));
});
