import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { explicit, octetString, oid, seq, smallInt, tlv } from './der.js';
import { PkiError } from './errors.js';
import { extension } from './extensions.js';
import { certIdFor, certIdHashes, certIdKey, parseOcspRequest } from './ocsp-request.js';
import { OID } from './oids.js';
import { PROFILES } from './profile.js';
import { makeChild, makeRoot } from './testing/hierarchy.js';

/** Runs openssl in a temporary directory and returns the file it wrote (testing/openssl.ts deletes it). */
function opensslRequest(args: string[], files: Record<string, string>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-ocsp-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const r = spawnSync('openssl', ['ocsp', ...args, '-reqout', 'req.der'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(join(dir, 'req.der'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const root = makeRoot();
const inter = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Issuing CA' });
const dev1 = makeChild(inter, PROFILES.device, { name: 'CN=device-1' });
const dev2 = makeChild(inter, PROFILES.device, { name: 'CN=device-2' });
const files = {
  'inter.pem': inter.cert.toPem(),
  'd1.pem': dev1.cert.toPem(),
  'd2.pem': dev2.cert.toPem(),
  'd1.key': dev1.key.export({ format: 'pem', type: 'pkcs8' }).toString(),
};

const isCode = (code: string) => (err: unknown) => err instanceof PkiError && err.code === code;

describe('parseOcspRequest reads what openssl ocsp sends', () => {
  const cases: Array<[string, string[], { alg: 'sha1' | 'sha256'; serials: string[]; nonce: boolean; signed: boolean }]> = [
    ['one certificate, SHA-1, with a nonce', ['-cert', 'd1.pem'], { alg: 'sha1', serials: [dev1.cert.serial()], nonce: true, signed: false }],
    ['-no_nonce', ['-cert', 'd1.pem', '-no_nonce'], { alg: 'sha1', serials: [dev1.cert.serial()], nonce: false, signed: false }],
    ['SHA-256 CertIDs', ['-sha256', '-cert', 'd1.pem', '-no_nonce'], { alg: 'sha256', serials: [dev1.cert.serial()], nonce: false, signed: false }],
    ['two certificates', ['-cert', 'd1.pem', '-cert', 'd2.pem'], { alg: 'sha1', serials: [dev1.cert.serial(), dev2.cert.serial()], nonce: true, signed: false }],
    ['by serial', ['-serial', `0x${dev2.cert.serial()}`, '-no_nonce'], { alg: 'sha1', serials: [dev2.cert.serial()], nonce: false, signed: false }],
    ['a signed request', ['-cert', 'd1.pem', '-signer', 'd1.pem', '-signkey', 'd1.key'], { alg: 'sha1', serials: [dev1.cert.serial()], nonce: true, signed: true }],
  ];
  for (const [name, args, want] of cases) {
    it(name, () => {
      const req = parseOcspRequest(opensslRequest(['-issuer', 'inter.pem', ...args], files));
      const { nameHash, keyHash } = certIdHashes(inter.cert, want.alg);
      assert.deepEqual(
        req.requests.map((r) => r.serial),
        want.serials,
      );
      for (const r of req.requests) {
        assert.equal(r.hashAlgorithm, want.alg);
        assert.ok(r.issuerNameHash.equals(nameHash), 'issuerNameHash');
        assert.ok(r.issuerKeyHash.equals(keyHash), 'issuerKeyHash');
        // The cache key of a CertID built here matches the one received.
        assert.equal(certIdKey(certIdFor(inter.cert, r.serial, want.alg)), certIdKey(r));
      }
      assert.equal(req.nonce?.length, want.nonce ? 16 : undefined);
      assert.equal(req.signed, want.signed);
    });
  }

  it('keeps the CertID bytes to echo', () => {
    const der = opensslRequest(['-issuer', 'inter.pem', '-cert', 'd1.pem', '-no_nonce'], files);
    const [r] = parseOcspRequest(der).requests;
    assert.ok(der.includes(r!.der));
    // openssl writes sha1 with NULL parameters, as certIdFor does.
    assert.ok(r!.der.equals(certIdFor(inter.cert, dev1.cert.serial()).der));
  });
});

describe('parseOcspRequest refuses', () => {
  const good = opensslRequest(['-issuer', 'inter.pem', '-cert', 'd1.pem', '-no_nonce'], files);
  const certId = parseOcspRequest(good).requests[0]!.der;
  const request = (tbsFields: Buffer[]): Buffer => seq(seq(...tbsFields));
  const list = (...ids: Buffer[]) => seq(...ids.map((id) => seq(id)));
  const ext = (id: string, critical: boolean, value: Buffer) => explicit(2, seq(extension(id, critical, value)));
  const sha1Alg = seq(oid(OID.sha1), Buffer.from([5, 0]));
  const hash20 = octetString(Buffer.alloc(20, 1));

  const malformed: Array<[string, Buffer]> = [
    ['empty input', Buffer.alloc(0)],
    ['garbage', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['a truncated request', good.subarray(0, good.length - 3)],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0, 0])])],
    ['an indefinite length (BER)', Buffer.from([0x30, 0x80, 0x30, 0x00, 0x00, 0x00])],
    ['an empty requestList', request([seq()])],
    ['version v2', request([explicit(0, smallInt(1)), list(certId)])],
    ['a SHA-1 hash of 19 octets', request([list(seq(sha1Alg, octetString(Buffer.alloc(19)), hash20, smallInt(1)))])],
    ['a negative serial', request([list(seq(sha1Alg, hash20, hash20, tlv(0x02, Buffer.from([0xff]))))])],
    ['a non-minimal serial', request([list(seq(sha1Alg, hash20, hash20, tlv(0x02, Buffer.from([0, 1]))))])],
    ['hashAlgorithm parameters', request([list(seq(seq(oid(OID.sha1), smallInt(0)), hash20, hash20, smallInt(1)))])],
    ['a nonce that is not an OCTET STRING', request([list(certId), ext(OID.ocspNonce, false, smallInt(5))])],
    ['an unexpected TBSRequest field', request([list(certId), seq()])],
  ];
  for (const [name, der] of malformed) {
    it(`${name}: malformed-der`, () => assert.throws(() => parseOcspRequest(der), isCode('malformed-der')));
  }

  const unsupported: Array<[string, () => Buffer]> = [
    ['a SHA-512 CertID', () => opensslRequest(['-issuer', 'inter.pem', '-sha512', '-cert', 'd1.pem'], files)],
    ['an MD5 CertID', () => request([list(seq(seq(oid('1.2.840.113549.2.5'), Buffer.from([5, 0])), octetString(Buffer.alloc(16)), octetString(Buffer.alloc(16)), smallInt(1)))])],
    ['an unknown critical request extension', () => request([list(certId), ext('1.3.6.1.4.1.99999.1', true, seq())])],
  ];
  for (const [name, der] of unsupported) {
    it(`${name}: unsupported-algorithm`, () => assert.throws(() => parseOcspRequest(der()), isCode('unsupported-algorithm')));
  }

  it('ignores unknown non-critical extensions and nonces outside 1–32 octets (RFC 8954 §2.1)', () => {
    const long = parseOcspRequest(request([list(certId), ext(OID.ocspNonce, false, octetString(Buffer.alloc(33, 7)))]));
    assert.equal(long.nonce, undefined);
    const other = parseOcspRequest(request([list(certId), ext('1.3.6.1.4.1.99999.1', false, seq())]));
    assert.equal(other.requests.length, 1);
    const ok = parseOcspRequest(request([list(certId), ext(OID.ocspNonce, false, octetString(Buffer.alloc(32, 7)))]));
    assert.equal(ok.nonce?.length, 32);
  });
});

describe('parseOcspRequest on mutated input', () => {
  it('answers or throws PkiError for 2,000 random corruptions, never anything else', () => {
    const der = opensslRequest(['-issuer', 'inter.pem', '-cert', 'd1.pem', '-cert', 'd2.pem'], files);
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(der.subarray(0, i % 3 === 0 ? rand(der.length) : der.length));
      for (let k = 0; k < 1 + rand(3); k++) if (m.length > 0) m[rand(m.length)] = rand(256);
      try {
        parseOcspRequest(m);
      } catch (err) {
        assert.ok(err instanceof PkiError, `${(err as Error).stack}\ninput ${m.toString('hex')}`);
      }
    }
  });
});
