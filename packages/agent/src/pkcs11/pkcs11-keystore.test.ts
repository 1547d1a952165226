import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verify } from 'node:crypto';
import { decodePem, verifyCsr } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { issueLeaf, makeRoot } from '../testing/pki-fixtures.js';
import { makeTestToken, softhsmMissing, type TestToken } from '../testing/softhsm.js';
import { rawEcdsaToDer } from './ecdsa-signature.js';
import { ENGINE_PATHS, Pkcs11KeyStore } from './pkcs11-keystore.js';
import { existsSync } from 'node:fs';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Certificate } from '@certfleet/pki';

describe('rawEcdsaToDer (RFC 3279 §2.2.3)', () => {
  const cases = [
    { name: 'small r and s', raw: '01'.padStart(64, '0') + '02'.padStart(64, '0'), der: '3006020101020102' },
    { name: 'high bit set gets a 0x00 pad', raw: 'ff'.repeat(32) + '7f'.repeat(32), der: `3045022100${'ff'.repeat(32)}0220${'7f'.repeat(32)}` },
    { name: 'leading zero bytes are trimmed', raw: `0000${'11'.repeat(30)}${'80'.repeat(32)}`, der: `3043021e${'11'.repeat(30)}022100${'80'.repeat(32)}` },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(rawEcdsaToDer(Buffer.from(c.raw, 'hex')).toString('hex'), c.der));
  }
  it('refuses an odd length', () => assert.throws(() => rawEcdsaToDer(Buffer.alloc(63)), (e: AgentError) => e.code === 'bad-response'));
});

const missing = softhsmMissing();
describe('Pkcs11KeyStore on SoftHSM2', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let token: TestToken;
  let other: TestToken;
  before(() => {
    token = makeTestToken();
    other = makeTestToken();
  });
  after(() => token?.remove());

  // The wrong-PIN case uses its own token: SoftHSM counts failed logins per token.

  const opts = (keyLabel: string, t = () => token) => ({ library: t().library, tokenLabel: t().tokenLabel, pin: t().pin, keyLabel });

  it('generates a P-256 key on the token that can be used but never read', async () => {
    const key = await Pkcs11KeyStore.generate(opts('device'));
    try {
      assert.equal(key.publicKey().asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.deepEqual(key.privateKeyAttributes(), { sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
      assert.throws(() => key.tlsKeyPem(), (e: AgentError) => e.code === 'token-error' && /cannot leave/.test(e.message));
    } finally {
      key.close();
    }
  });

  it('signs a CSR on the token that pki and openssl both verify', async () => {
    const key = await Pkcs11KeyStore.open(opts('device'));
    try {
      for (let i = 0; i < 20; i++) {
        // Twenty signatures: r or s with a high bit or a leading zero byte come up along the way.
        const pem = key.createCsr('CN=dev-hsm-1,O=Acme', [{ type: 'dns', value: 'dev-hsm-1.local' }]);
        const csr = verifyCsr(decodePem(pem, 'CERTIFICATE REQUEST'));
        assert.ok(csr.publicKey.key.equals(key.publicKey()));
      }
      const dir = mkdtempSync(join(tmpdir(), 'certfleet-csr-'));
      try {
        writeFileSync(join(dir, 'req.pem'), key.createCsr('CN=dev-hsm-1'));
        const out = execFileSync('openssl', ['req', '-in', join(dir, 'req.pem'), '-noout', '-verify', '-subject'], { encoding: 'utf8', stdio: 'pipe' });
        assert.match(out, /CN ?= ?dev-hsm-1/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const sig = key.sign(Buffer.from('hello'));
      assert.ok(verify('sha256', Buffer.from('hello'), key.publicKey(), sig));
    } finally {
      key.close();
    }
  });

  it('matches the certificate issued for its key and no other', async () => {
    const key = await Pkcs11KeyStore.open(opts('device'));
    try {
      const ca = makeRoot('CN=Test CA');
      const theirs = issueLeaf(ca, { name: 'CN=someone-else' });
      assert.equal(key.matches((await import('@certfleet/pki')).Certificate.fromPem(theirs.certPem)), false);
    } finally {
      key.close();
    }
  });

  const refusals = [
    { name: 'a second key under a taken label', run: () => Pkcs11KeyStore.generate(opts('device')), code: 'key-exists' },
    { name: 'opening a label that is not there', run: () => Pkcs11KeyStore.open(opts('nothing')), code: 'key-missing' },
    { name: 'a wrong PIN', run: () => Pkcs11KeyStore.open({ ...opts('device', () => other), pin: '9999' }), code: 'token-error' },
    { name: 'a token that does not exist', run: () => Pkcs11KeyStore.open({ ...opts('device'), tokenLabel: 'no-such-token' }), code: 'token-error' },
    { name: 'a library that does not exist', run: () => Pkcs11KeyStore.open({ ...opts('device'), library: '/nonexistent/libpkcs11.so' }), code: 'token-error' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      await assert.rejects(r.run(), (e: AgentError) => e instanceof AgentError && e.code === r.code);
    });
  }

  const noEngine = ENGINE_PATHS.some((p) => existsSync(p)) ? false : 'skipped: no OpenSSL pkcs11 engine (apt-get install libengine-pkcs11-openssl)';
  it('authenticates a mutual-TLS handshake with the token key through the pkcs11 engine, once per process', { skip: noEngine }, async () => {
    const key = await Pkcs11KeyStore.open(opts('device'));
    const ca = makeRoot('CN=Engine CA');
    const device = issueLeaf(ca, { name: 'CN=hsm-tls', publicKey: key.publicKey() });
    const server = issueLeaf(ca, { profile: 'server', name: 'CN=localhost' });
    const seen: string[] = [];
    const srv = createServer({ cert: server.certPem, key: server.keyPem, ca: ca.cert.toPem(), requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      seen.push(`${s.getPeerCertificate().subject.CN as string}:${s.authorized}`);
      s.end('ok');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const context = key.tlsSecureContext(device.certPem, { ca: ca.cert.toPem() });
      assert.equal(key.tlsSecureContext(device.certPem, { ca: ca.cert.toPem() }), context, 'the context is built once and reused');
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          const s = connect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', secureContext: context });
          s.on('data', () => s.end(resolve));
          s.on('error', reject);
        });
      }
      assert.deepEqual(seen, ['hsm-tls:true', 'hsm-tls:true', 'hsm-tls:true']);
      const other = await Pkcs11KeyStore.generate(opts('second-identity'));
      assert.throws(() => other.tlsSecureContext(issueLeaf(ca, { publicKey: other.publicKey() }).certPem), (e: AgentError) => e.code === 'token-error' && /once per process/.test(e.message));
      other.destroy();
      assert.equal(key.matches(Certificate.fromPem(device.certPem)), true);
    } finally {
      key.close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('destroys a key: it cannot be opened again', async () => {
    const key = await Pkcs11KeyStore.generate(opts('short-lived'));
    key.destroy();
    await assert.rejects(Pkcs11KeyStore.open(opts('short-lived')), (e: AgentError) => e.code === 'key-missing');
  });
});
