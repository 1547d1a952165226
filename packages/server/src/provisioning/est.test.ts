import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildCsr, parseName } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import { base64Lines, decodeEstBody } from './est.js';

function csrDer(): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return buildCsr({ subject: parseName('CN=est-unit'), publicKey, privateKey });
}

describe('EST bodies', () => {
  const der = csrDer();

  it('takes base64 with or without line breaks, CRLF or LF, and PEM', () => {
    const b64 = der.toString('base64');
    assert.deepEqual(decodeEstBody(b64), der);
    assert.deepEqual(decodeEstBody(Buffer.from(b64.match(/.{1,64}/g)!.join('\r\n') + '\r\n')), der);
    assert.deepEqual(decodeEstBody(base64Lines(der)), der);
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    assert.deepEqual(decodeEstBody(pem), der);
  });

  it('refuses what is not base64 as a malformed CSR', () => {
    for (const bad of ['', 'not base64!', 'QUJD=D', der.toString('base64').slice(1)]) {
      assert.throws(() => decodeEstBody(bad), (e: unknown) => e instanceof CertfleetError && e.code === 'malformed-csr', JSON.stringify(bad));
    }
  });

  it('answers in LF-ended lines of 64 characters (coreutils base64 -d refuses CR)', () => {
    const text = base64Lines(Buffer.alloc(200, 7));
    assert.ok(!text.includes('\r'));
    assert.ok(text.split('\n').every((l) => l.length <= 64));
    assert.deepEqual(Buffer.from(text, 'base64'), Buffer.alloc(200, 7));
  });
});
