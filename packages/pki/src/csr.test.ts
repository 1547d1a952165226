import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCsr } from './csr-build.js';
import { parseCsr, verifyCsr } from './csr.js';
import { bitString, children, oid, readElement, seq, slice } from './der.js';
import { PkiError, type PkiErrorCode } from './errors.js';
import type { GeneralName } from './general-name.js';
import { generateKeyPair, type KeyAlgorithm } from './keys.js';
import { parseName } from './name.js';
import { OID } from './oids.js';
import { decodePem, encodePem } from './pem.js';
import { makeRoot } from './testing/hierarchy.js';
import { openssl } from './testing/openssl.js';

const hasCode = (code: PkiErrorCode) => (err: unknown) => err instanceof PkiError && err.code === code;

const SUBJECT = parseName('CN=dev-1,O=Acme');
const OPENSSL_SANS: GeneralName[] = [
  { type: 'dns', value: 'a.example' },
  { type: 'ip', value: '10.0.0.1' },
  { type: 'uri', value: 'urn:x' },
];

/** A CSR made by `openssl req -new`; keyArgs either make a key (-newkey …) or name one in `files`. */
function opensslCsr(keyArgs: string[], files: Record<string, string> = {}): Buffer {
  const r = openssl(
    ['req', '-new', ...keyArgs, '-subj', '/O=Acme/CN=dev-1', '-addext', 'subjectAltName=DNS:a.example,IP:10.0.0.1,URI:urn:x'],
    files,
  );
  assert.equal(r.ok, true, r.out);
  return decodePem(r.out, 'CERTIFICATE REQUEST');
}
const newKey = (...spec: string[]): string[] => ['-newkey', ...spec, '-nodes', '-keyout', '/dev/null'];

/** A P-256 private key whose public point OpenSSL writes compressed (X9.62 02/03 prefix). */
function compressedKey(): string {
  const pem = generateKeyPair('ec-p256').privateKey.export({ format: 'pem', type: 'sec1' }) as string;
  const r = openssl(['ec', '-in', 'k.pem', '-conv_form', 'compressed'], { 'k.pem': pem });
  assert.equal(r.ok, true, r.out);
  return r.out;
}

/** The CSR with its outer SEQUENCE header replaced (contents unchanged). */
function withTopHeader(der: Buffer, header: number[], trailer: number[] = []): Buffer {
  const top = readElement(der, 0);
  return Buffer.concat([Buffer.from(header), der.subarray(top.contentStart), Buffer.from(trailer)]);
}

/** The CSR re-assembled with another signatureAlgorithm and the same signature. */
function withSignatureAlgorithm(der: Buffer, algorithmId: Buffer): Buffer {
  const [info, , sig] = children(der, readElement(der, 0));
  return seq(slice(der, info!), algorithmId, slice(der, sig!));
}

const p256 = generateKeyPair('ec-p256');
const VALID = buildCsr({ subject: SUBJECT, ...p256, sans: OPENSSL_SANS });

describe('verifyCsr accepts requests made by openssl req', () => {
  const cases: Array<[string, () => Buffer, string]> = [
    ['EC P-256', () => opensslCsr(newKey('ec', '-pkeyopt', 'ec_paramgen_curve:P-256')), 'ec-p256'],
    ['EC P-384', () => opensslCsr(newKey('ec', '-pkeyopt', 'ec_paramgen_curve:P-384')), 'ec-p384'],
    ['Ed25519', () => opensslCsr(newKey('ed25519')), 'ed25519'],
    ['RSA 2048', () => opensslCsr(newKey('rsa:2048')), 'rsa-2048'],
  ];
  for (const [name, make, algorithm] of cases) {
    it(name, () => {
      const csr = verifyCsr(make());
      assert.equal(csr.publicKey.algorithm, algorithm);
      assert.deepEqual(csr.subject, SUBJECT);
      assert.deepEqual(csr.requestedSans, OPENSSL_SANS);
      assert.deepEqual(csr.requestedExtensions, [OID.subjectAltName]);
    });
  }

  it('EC P-256 with a compressed point (imported through the DER path)', () => {
    const der = opensslCsr(['-key', 'k.pem'], { 'k.pem': compressedKey() });
    const csr = verifyCsr(der);
    const spki = csr.spki;
    // SEQUENCE { AlgorithmIdentifier, BIT STRING { 00, 02|03, X } }: 1 + 33 bytes of key.
    const [, bits] = children(spki, readElement(spki, 0));
    assert.equal(bits!.end - bits!.contentStart, 34, 'openssl wrote an uncompressed point');
    assert.ok(spki[bits!.contentStart + 1] === 2 || spki[bits!.contentStart + 1] === 3);
    assert.equal(csr.publicKey.algorithm, 'ec-p256');
    assert.deepEqual(csr.requestedSans, OPENSSL_SANS);
  });
});

describe('verifyCsr accepts requests made by buildCsr', () => {
  const sans: GeneralName[] = [
    { type: 'dns', value: 'dev-1.example' },
    { type: 'ip', value: '2001:db8::1' },
    { type: 'uri', value: 'urn:device:1' },
    { type: 'email', value: 'ops@example.com' },
  ];
  const algs: KeyAlgorithm[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'];
  for (const alg of algs) {
    it(alg, () => {
      const csr = verifyCsr(buildCsr({ subject: SUBJECT, ...generateKeyPair(alg), sans }));
      assert.equal(csr.publicKey.algorithm, alg);
      assert.deepEqual(csr.subject, SUBJECT);
      assert.deepEqual(csr.requestedSans, sans);
    });
  }

  it('without SANs: no extensionRequest', () => {
    const csr = verifyCsr(buildCsr({ subject: SUBJECT, ...p256 }));
    assert.deepEqual(csr.requestedSans, []);
    assert.deepEqual(csr.requestedExtensions, []);
  });

  it('openssl req -verify agrees', () => {
    const r = openssl(['req', '-in', 'r.pem', '-noout', '-verify'], { 'r.pem': encodePem('CERTIFICATE REQUEST', VALID) });
    assert.equal(r.ok, true, r.out);
  });
});

describe('verifyCsr refuses', () => {
  const top = readElement(VALID, 0);
  const bodyLength = VALID.length - top.contentStart;
  const lengthOctets = top.contentStart - 2; // long-form length octets after 0x8n
  const root = makeRoot();
  const other = generateKeyPair('ec-p256');

  const cases: Array<[string, () => Uint8Array, PkiErrorCode]> = [
    ['truncated DER (one byte short)', () => VALID.subarray(0, VALID.length - 1), 'malformed-csr'],
    ['truncated DER (header only)', () => VALID.subarray(0, top.contentStart), 'malformed-csr'],
    ['truncated DER (one byte)', () => VALID.subarray(0, 1), 'malformed-csr'],
    ['trailing bytes', () => Buffer.concat([VALID, Buffer.from([0])]), 'malformed-csr'],
    ['indefinite length', () => withTopHeader(VALID, [0x30, 0x80], [0, 0]), 'malformed-csr'],
    [
      'a non-minimal length (one more length octet, zero-led)',
      () => withTopHeader(VALID, [0x30, 0x80 | (lengthOctets + 1), 0, ...VALID.subarray(2, top.contentStart)]),
      'malformed-csr',
    ],
    ['a flipped signature byte', () => Buffer.concat([VALID.subarray(0, -1), Buffer.from([VALID.at(-1)! ^ 0x01])]), 'bad-signature'],
    ['a signature by a different key', () => buildCsr({ subject: SUBJECT, publicKey: p256.publicKey, privateKey: other.privateKey }), 'bad-signature'],
    [
      'an RSA signature algorithm on an EC key',
      () => withSignatureAlgorithm(VALID, seq(oid(OID.sha256WithRsa), Buffer.from([5, 0]))),
      'bad-signature',
    ],
    ['md5WithRSAEncryption', () => withSignatureAlgorithm(VALID, seq(oid('1.2.840.113549.1.1.4'))), 'unsupported-algorithm'],
    ['RSA 1024 (openssl)', () => opensslCsr(newKey('rsa:1024')), 'weak-key'],
    ['curve secp256k1 (openssl)', () => opensslCsr(newKey('ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1')), 'unsupported-algorithm'],
    ['curve P-521 (openssl)', () => opensslCsr(newKey('ec', '-pkeyopt', 'ec_paramgen_curve:P-521')), 'unsupported-algorithm'],
    ['garbage bytes', () => Buffer.from('this is not a certification request'), 'malformed-csr'],
    ['a SEQUENCE of garbage', () => seq(Buffer.from('0102030405', 'hex')), 'malformed-csr'],
    ['an unused-bits signature BIT STRING', () => withSignatureAlgorithmKeepingSig(1), 'malformed-csr'],
    ['empty input', () => Buffer.alloc(0), 'malformed-csr'],
    ['a certificate instead of a CSR (DER)', () => root.cert.der, 'malformed-csr'],
  ];
  for (const [name, make, code] of cases) {
    it(`${name}: ${code}`, () => assert.throws(() => verifyCsr(make()), hasCode(code)));
  }

  it('a certificate instead of a CSR (PEM): malformed-pem', () => {
    assert.throws(() => decodePem(root.cert.toPem(), 'CERTIFICATE REQUEST'), hasCode('malformed-pem'));
  });

  it('the non-minimal case really only changes the length encoding', () => {
    assert.equal(bodyLength, top.end - top.contentStart);
    assert.ok(lengthOctets >= 1, 'the test CSR should be longer than 127 bytes');
  });

  /** The CSR with its signature BIT STRING declaring `unused` unused bits. */
  function withSignatureAlgorithmKeepingSig(unused: number): Buffer {
    const [info, alg, sig] = children(VALID, readElement(VALID, 0));
    return seq(slice(VALID, info!), slice(VALID, alg!), bitString(VALID.subarray(sig!.contentStart + 1, sig!.end), unused));
  }
});

/** mulberry32: a tiny seeded PRNG so the mutations below repeat run after run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseCsr and verifyCsr never crash on damaged input', () => {
  it('2,000 random mutations of a valid CSR throw PkiError or nothing', () => {
    const SEED = 0x5eed_c5a;
    const rand = prng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const bytes = [...VALID];
      // One to three edits: flip bits of a byte, insert a byte, or delete one.
      for (let e = 1 + int(3); e > 0; e--) {
        const pos = int(bytes.length);
        const op = int(3);
        if (op === 0) bytes[pos] = bytes[pos]! ^ (1 + int(255));
        else if (op === 1) bytes.splice(pos, 0, int(256));
        else bytes.splice(pos, 1);
      }
      const mutated = Buffer.from(bytes);
      for (const [fn, call] of [
        ['parseCsr', () => parseCsr(mutated)],
        ['verifyCsr', () => verifyCsr(mutated)],
      ] as const) {
        try {
          call();
          outcomes[`${fn}:ok`] = (outcomes[`${fn}:ok`] ?? 0) + 1;
        } catch (err) {
          assert.ok(err instanceof PkiError, `${fn}, seed ${SEED}, mutation ${i} (${mutated.toString('hex')}): ${String(err)}`);
          outcomes[`${fn}:${err.code}`] = (outcomes[`${fn}:${err.code}`] ?? 0) + 1;
        }
      }
    }
    // Most mutations must be caught somewhere, or the generator is not mutating.
    assert.ok((outcomes['verifyCsr:ok'] ?? 0) < 100, JSON.stringify(outcomes));
  });
});
