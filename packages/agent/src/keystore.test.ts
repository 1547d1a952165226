import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { decodePem, verifyCsr, type KeyAlgorithm } from '@certfleet/pki';
import type { AgentError } from './errors.js';
import { FileKeyStore } from './keystore.js';
import { issueLeaf, makeRoot } from './testing/pki-fixtures.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'certfleet-keys-'));
});
after(() => rm(work, { recursive: true, force: true }));

describe('FileKeyStore', () => {
  for (const algorithm of ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'] as KeyAlgorithm[]) {
    it(`${algorithm}: a PKCS#8 file of mode 0600 whose CSR verifies`, async () => {
      const path = join(work, `${algorithm}.pem`);
      const ks = await FileKeyStore.create(path, { algorithm });
      assert.equal(ks.algorithm, algorithm);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.match(await readFile(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
      const csr = verifyCsr(decodePem(ks.createCsr('CN=dev-1,O=Acme', [{ type: 'dns', value: 'dev-1.local' }]), 'CERTIFICATE REQUEST'));
      assert.deepEqual(csr.requestedSans, [{ type: 'dns', value: 'dev-1.local' }]);
      assert.equal(csr.publicKey.algorithm, algorithm);
      assert.ok((await FileKeyStore.load(path)).publicKey().equals(ks.publicKey()));
    });
  }

  it('defaults to EC P-256 and never replaces an existing key', async () => {
    const path = join(work, 'device.pem');
    const ks = await FileKeyStore.create(path);
    assert.equal(ks.algorithm, 'ec-p256');
    await assert.rejects(FileKeyStore.create(path), (e: AgentError) => e.code === 'key-exists');
    assert.ok((await FileKeyStore.loadOrCreate(path)).publicKey().equals(ks.publicKey()), 'loadOrCreate reuses it');
    assert.deepEqual((await readdir(work)).filter((n) => n.includes('.tmp-')), [], 'no temporaries left behind');
  });

  it('hands node:tls a key that pairs with its certificate', async () => {
    const ks = await FileKeyStore.create(join(work, 'tls.pem'));
    const leaf = issueLeaf(makeRoot(), { publicKey: ks.publicKey() });
    assert.ok(ks.matches(leaf.cert));
    assert.doesNotThrow(() => createSecureContext({ key: ks.tlsKeyPem(), cert: leaf.certPem }));
    assert.equal(ks.matches(issueLeaf(makeRoot()).cert), false);
  });

  it('refuses a key file others can read, a missing one, and garbage', async () => {
    const path = join(work, 'exposed.pem');
    await FileKeyStore.create(path);
    await chmod(path, 0o640);
    await assert.rejects(FileKeyStore.load(path), (e: AgentError) => e.code === 'key-exposed');
    await assert.rejects(FileKeyStore.load(join(work, 'absent.pem')), (e: AgentError) => e.code === 'key-missing');
    await writeFile(join(work, 'junk.pem'), 'junk', { mode: 0o600 });
    await assert.rejects(FileKeyStore.load(join(work, 'junk.pem')), (e: AgentError) => e.code === 'slot-corrupt');
  });
});
