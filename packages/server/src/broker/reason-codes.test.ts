import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wireSize } from './aedes-internals.js';
import { disconnectReasonCode, ReasonCode } from './reason-codes.js';

describe('MQTT 5 DISCONNECT reason codes', () => {
  const cases = [
    ['certificate-revoked', ReasonCode.NOT_AUTHORIZED],
    ['certificate-inactive', ReasonCode.NOT_AUTHORIZED],
    ['ca-revoked', ReasonCode.NOT_AUTHORIZED],
    ['ca-inactive', ReasonCode.NOT_AUTHORIZED],
    ['server-shutdown', ReasonCode.SERVER_SHUTTING_DOWN],
    ['client-id-takeover', ReasonCode.SESSION_TAKEN_OVER],
    ['packet-too-large', ReasonCode.PACKET_TOO_LARGE],
    ['malformed-packet', ReasonCode.MALFORMED_PACKET],
    ['protocol-error', ReasonCode.PROTOCOL_ERROR],
    ['keepalive-timeout', ReasonCode.KEEP_ALIVE_TIMEOUT],
    ['operator-request', ReasonCode.ADMINISTRATIVE_ACTION],
    [undefined, ReasonCode.ADMINISTRATIVE_ACTION],
  ] as const;
  for (const [reason, code] of cases) {
    it(`${reason ?? 'no reason'} → 0x${code.toString(16)}`, () => assert.equal(disconnectReasonCode(reason), code));
  }
});

describe('wireSize', () => {
  it('adds the fixed header: 1 byte and 1 to 4 bytes of Remaining Length (MQTT 5 §2.1.4)', () => {
    for (const [remaining, size] of [[0, 2], [127, 129], [128, 131], [16_383, 16_386], [16_384, 16_388], [2_097_151, 2_097_155], [2_097_152, 2_097_157], [268_435_455, 268_435_460]]) {
      assert.equal(wireSize(remaining!), size, `remaining ${remaining}`);
    }
  });
});
