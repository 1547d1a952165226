import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KeySealer, sealerFor } from './sealer.js';

describe('KeySealer', () => {
  const secret = Buffer.from('pkcs8 private key bytes');
  const cases: Array<[string, () => KeySealer]> = [
    ['key file', () => new KeySealer({ kind: 'keyfile', key: randomBytes(32) })],
    ['passphrase', () => new KeySealer({ kind: 'passphrase', passphrase: 'correct horse battery staple' })],
  ];
  for (const [name, make] of cases) {
    it(`${name}: round trip, bound to the CA id, tamper-evident`, () => {
      const sealer = make();
      const sealed = sealer.seal('ca-1', secret);
      assert.equal(sealed.indexOf(secret), -1, 'the plaintext is not in the sealed blob');
      assert.deepEqual(sealer.unseal('ca-1', sealed), secret);
      assert.throws(() => sealer.unseal('ca-2', sealed), { code: 'unavailable' }, 'moved to another CA');
      const tampered = Buffer.from(sealed);
      tampered[tampered.length - 1]! ^= 1;
      assert.throws(() => sealer.unseal('ca-1', tampered), { code: 'unavailable' });
    });
  }

  it('a wrong passphrase cannot unseal, and a key file blob asks for the key file', () => {
    const sealed = new KeySealer({ kind: 'passphrase', passphrase: 'one' }).seal('ca', secret);
    assert.throws(() => new KeySealer({ kind: 'passphrase', passphrase: 'two' }).unseal('ca', sealed), { code: 'unavailable' });
    assert.throws(() => new KeySealer({ kind: 'keyfile', key: randomBytes(32) }).unseal('ca', sealed), /passphrase/);
  });

  it('sealerFor creates the key file with mode 0600 and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'certfleet-sealer-'));
    try {
      const file = join(dir, 'master.key');
      assert.throws(() => sealerFor(file, undefined, false), { code: 'unavailable' });
      const a = sealerFor(file, undefined, true);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const sealed = a.seal('ca', secret);
      assert.deepEqual(sealerFor(file, undefined, false).unseal('ca', sealed), secret);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
