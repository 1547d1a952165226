import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertfleetError } from '../errors.js';
import { luhnCheckDigit, parseNetworkIdentity } from './network-identity.js';

describe('network identities (3GPP TS 23.003)', () => {
  it('computes the IMEI check digit (Annex B)', () => {
    // The example IMEI of TS 23.003 Annex B / GSMA TS.06: 49015420323751, check digit 8.
    assert.equal(luhnCheckDigit('49015420323751'), 8);
    assert.equal(luhnCheckDigit('35209900176148'), 1);
  });

  it('takes IMSIs of 14 or 15 digits as given, and IMEIs in their three spellings as the 15-digit form', () => {
    const table: Array<[unknown, string, string]> = [
      [{ type: 'imsi', value: '262011234567890' }, 'imsi', '262011234567890'],
      [{ type: 'imsi', value: '31041012345678' }, 'imsi', '31041012345678'],
      [{ type: 'imei', value: '490154203237518' }, 'imei', '490154203237518'],
      [{ type: 'imei', value: '49015420323751' }, 'imei', '490154203237518'],
      [{ type: 'imei', value: '4901542032375107' }, 'imei', '490154203237518'],
    ];
    for (const [input, type, value] of table) assert.deepEqual(parseNetworkIdentity(input), { type, value }, JSON.stringify(input));
  });

  it('refuses anything else with a 400', () => {
    const bad: unknown[] = [
      undefined,
      'imsi',
      { type: 'imsi', value: '1234567890123' },
      { type: 'imsi', value: '1234567890123456' },
      { type: 'imsi', value: '26201123456789a' },
      { type: 'imsi', value: ' 262011234567890' },
      { type: 'imsi', value: 262011234567890 },
      { type: 'imei', value: '490154203237519' },
      { type: 'imei', value: '49015420323751000' },
      { type: 'iccid', value: '8949' },
      { type: 'imsi', value: '262011234567890', extra: 1 },
    ];
    for (const input of bad) {
      assert.throws(() => parseNetworkIdentity(input), (e: unknown) => e instanceof CertfleetError && e.code === 'bad-request', JSON.stringify(input));
    }
  });
});
