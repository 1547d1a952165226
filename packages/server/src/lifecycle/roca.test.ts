import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { hasRocaFingerprint, ROCA_PRIMES } from './roca.js';

const modulusOf = (jwkN: string): bigint => BigInt(`0x${Buffer.from(jwkN, 'base64url').toString('hex')}`);

describe('ROCA fingerprint', () => {
  it('a modulus of the vulnerable form k·M + 65537^a mod M is flagged', () => {
    const M = ROCA_PRIMES.reduce((acc, p) => acc * BigInt(p), 1n);
    let g = 1n;
    for (let i = 0; i < 4321; i++) g = (g * 65537n) % M;
    const n = 0xdeadbeefcafebaben * M * M + g;
    assert.equal(hasRocaFingerprint(n), true);
  });

  it('keys from OpenSSL are not flagged', () => {
    for (let i = 0; i < 3; i++) {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const jwk = publicKey.export({ format: 'jwk' });
      assert.equal(hasRocaFingerprint(modulusOf(jwk.n!)), false);
    }
  });

  it('one residue outside the subgroup is enough to clear a modulus', () => {
    // 0 is never a power of 65537, so a multiple of 3 fails at the first prime.
    assert.equal(hasRocaFingerprint(3n * 1000003n), false);
  });
});
