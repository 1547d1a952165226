import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PkiError } from './errors.js';
import { isReasonCode, parseReason, reasonName, REVOCATION_REASONS } from './revocation-reason.js';

describe('CRLReason names and codes (RFC 5280 §5.3.1)', () => {
  const table: Array<[string, number]> = [
    ['unspecified', 0],
    ['keyCompromise', 1],
    ['cACompromise', 2],
    ['affiliationChanged', 3],
    ['superseded', 4],
    ['cessationOfOperation', 5],
    ['certificateHold', 6],
    ['removeFromCRL', 8],
    ['privilegeWithdrawn', 9],
    ['aACompromise', 10],
  ];
  it('has exactly the ten RFC values', () => assert.deepEqual(Object.entries(REVOCATION_REASONS), table));
  for (const [name, code] of table) {
    it(`${name} ↔ ${code}`, () => {
      assert.equal(parseReason(name), code);
      assert.equal(reasonName(code), name);
      assert.equal(isReasonCode(code), true);
    });
  }

  const badNames = ['', 'KeyCompromise', 'key-compromise', 'toString', '__proto__', '7'];
  for (const name of badNames) {
    it(`parseReason refuses ${JSON.stringify(name)}`, () => {
      assert.throws(() => parseReason(name), (e: unknown) => e instanceof PkiError && e.code === 'lint-failed');
    });
  }
  for (const code of [7, -1, 11, 1.5, NaN]) {
    it(`code ${code} is not a reason`, () => {
      assert.equal(isReasonCode(code), false);
      assert.throws(() => reasonName(code), PkiError);
    });
  }
});
