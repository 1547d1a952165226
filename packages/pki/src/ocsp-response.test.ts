import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PkiError } from './errors.js';
import { schemeForKey, signWith } from './keys.js';
import { OCSP_RESPONDER_PROFILE } from './ocsp-profile.js';
import { certIdFor, parseOcspRequest } from './ocsp-request.js';
import {
  assembleOcspResponse,
  buildBasicOcspResponse,
  isPreparedOcspResponse,
  ocspErrorResponse,
  type OcspCertStatus,
  type OcspErrorStatus,
  type OcspResponseInput,
  responderIdFor,
} from './ocsp-response.js';
import { OID } from './oids.js';
import { PROFILES } from './profile.js';
import { makeChild, makeRoot, type TestCa } from './testing/hierarchy.js';

/** openssl in a temporary directory: stdout and stderr ("Response verify OK" goes there), and the request it wrote. */
function openssl(args: string[], files: Record<string, string | Buffer>): { ok: boolean; out: string; req?: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-ocsp-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    const req = args.includes('-reqout') ? readFileSync(join(dir, 'req.der')) : undefined;
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`, ...(req ? { req } : {}) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A responder certificate from OCSP_RESPONDER_PROFILE: the template writes id-pkix-ocsp-nocheck itself. */
function issueResponder(ca: TestCa): TestCa {
  const r = makeChild(ca, OCSP_RESPONDER_PROFILE, { name: 'CN=OCSP Responder' });
  assert.ok(r.cert.extensionIds().includes(OID.ocspNoCheck), 'the responder certificate carries ocsp-nocheck');
  return r;
}

const HOUR = 3_600_000;
const root = makeRoot();
const inter = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Issuing CA' });
const good = makeChild(inter, PROFILES.device, { name: 'CN=good' });
const revoked = makeChild(inter, PROFILES.device, { name: 'CN=revoked' });
const responder = issueResponder(inter);
const notResponder = makeChild(inter, PROFILES.device, { name: 'CN=not a responder' });
const files = {
  'root.pem': root.cert.toPem(),
  'inter.pem': inter.cert.toPem(),
  'good.pem': good.cert.toPem(),
  'revoked.pem': revoked.cert.toPem(),
  'responder.pem': responder.cert.toPem(),
};

type Status = (serial: string) => OcspCertStatus;
const byList: Status = (serial) => (serial === revoked.cert.serial() ? { revoked: { at: new Date(Date.now() - HOUR), reason: 1 } } : { good: true });

/** What the responder does: parse, answer every CertID, sign with the CA or a delegated responder. */
function respond(reqDer: Buffer, signer: TestCa, opts: { delegated: boolean; status?: Status; nonce?: Buffer | null }): Buffer {
  const req = parseOcspRequest(reqDer);
  const now = new Date();
  const nonce = opts.nonce === null ? undefined : (opts.nonce ?? req.nonce);
  const input: OcspResponseInput = {
    signerId: opts.delegated ? 'responder' : 'inter',
    responderId: responderIdFor(signer.cert),
    producedAt: now,
    responses: req.requests.map((certId) => ({ certId, status: (opts.status ?? byList)(certId.serial), thisUpdate: now, nextUpdate: new Date(now.getTime() + 24 * HOUR) })),
    ...(nonce ? { nonce } : {}),
    responderCerts: opts.delegated ? [signer.cert] : [],
  };
  const p = buildBasicOcspResponse(input);
  const scheme = schemeForKey(signer.key as KeyObject);
  return assembleOcspResponse(p, scheme, signWith(scheme, p.tbs, signer.key));
}

describe('responses verify with openssl ocsp', () => {
  const both = ['-cert', 'good.pem', '-cert', 'revoked.pem'];
  const cases: Array<[string, { signer: TestCa; delegated: boolean; reqArgs: string[]; checkArgs: string[]; status?: Status; expect: RegExp[] }]> = [
    ['signed by the issuing CA, SHA-1 CertIDs', { signer: inter, delegated: false, reqArgs: both, checkArgs: ['-CAfile', 'root.pem'], expect: [/good.pem: good/, /revoked.pem: revoked/, /Reason: keyCompromise/] }],
    ['signed by a delegated responder', { signer: responder, delegated: true, reqArgs: both, checkArgs: ['-CAfile', 'root.pem'], expect: [/good.pem: good/, /revoked.pem: revoked/] }],
    ['SHA-256 CertIDs', { signer: inter, delegated: false, reqArgs: ['-sha256', ...both], checkArgs: ['-CAfile', 'root.pem'], expect: [/good.pem: good/, /revoked.pem: revoked/] }],
    ['a delegated responder trusted by -VAfile', { signer: responder, delegated: true, reqArgs: both, checkArgs: ['-VAfile', 'responder.pem'], expect: [/good.pem: good/] }],
    ['unknown', { signer: inter, delegated: false, reqArgs: ['-cert', 'good.pem'], checkArgs: ['-CAfile', 'root.pem'], status: () => ({ unknown: true }), expect: [/good.pem: unknown/] }],
    ['revoked without a reason', { signer: inter, delegated: false, reqArgs: ['-cert', 'revoked.pem'], checkArgs: ['-CAfile', 'root.pem'], status: () => ({ revoked: { at: new Date() } }), expect: [/revoked.pem: revoked/] }],
  ];
  for (const [name, c] of cases) {
    it(name, () => {
      const digest = c.reqArgs.filter((a) => a === '-sha256');
      const { req } = openssl(['ocsp', '-issuer', 'inter.pem', ...c.reqArgs, '-no_nonce', '-reqout', 'req.der'], files);
      const resp = respond(req!, c.signer, { delegated: c.delegated, ...(c.status ? { status: c.status } : {}) });
      const r = openssl(['ocsp', '-respin', 'resp.der', '-issuer', 'inter.pem', ...digest, ...c.reqArgs.filter((a) => a !== '-sha256'), '-no_nonce', ...c.checkArgs], { ...files, 'resp.der': resp });
      assert.equal(r.ok, true, r.out);
      assert.match(r.out, /Response verify OK/);
      for (const re of c.expect) assert.match(r.out, re);
    });
  }

  it('refuses a responder without id-kp-OCSPSigning (RFC 6960 §4.2.2.2)', () => {
    const { req } = openssl(['ocsp', '-issuer', 'inter.pem', '-cert', 'good.pem', '-no_nonce', '-reqout', 'req.der'], files);
    const resp = respond(req!, notResponder, { delegated: true });
    const r = openssl(['ocsp', '-respin', 'resp.der', '-issuer', 'inter.pem', '-cert', 'good.pem', '-no_nonce', '-CAfile', 'root.pem'], { ...files, 'resp.der': resp });
    assert.doesNotMatch(r.out, /Response verify OK/);
    assert.match(r.out, /missing ocspsigning usage/i);
  });
});

describe('nonces (RFC 8954)', () => {
  const nonced = (): Buffer => openssl(['ocsp', '-issuer', 'inter.pem', '-cert', 'good.pem', '-reqout', 'req.der'], files).req!;
  const check = (req: Buffer, resp: Buffer) =>
    openssl(['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'root.pem', '-verify_other', 'inter.pem', '-resp_text'], { ...files, 'req.der': req, 'resp.der': resp });
  const cases: Array<[string, Buffer | null | undefined, RegExp, RegExp | null]> = [
    ['echoed: verifies, no warning', undefined, /Response verify OK/, /Nonce Verify error|no nonce/],
    ['a different nonce: openssl refuses', Buffer.alloc(16, 9), /Nonce Verify error/, null],
    ['none (the cached answer): openssl warns', null, /WARNING: no nonce in response/, null],
  ];
  for (const [name, nonce, want, unwanted] of cases) {
    it(name, () => {
      const req = nonced();
      const r = check(req, respond(req, inter, { delegated: false, nonce }));
      assert.match(r.out, want);
      if (unwanted) assert.doesNotMatch(r.out, unwanted);
      if (nonce === undefined) assert.match(r.out, /Cert Status: good/);
    });
  }
});

describe('pre-signed (cacheable) responses', () => {
  it('a response built from certIdFor, before any request, answers an openssl request', () => {
    const now = new Date();
    const p = buildBasicOcspResponse({
      signerId: 'inter',
      responderId: responderIdFor(inter.cert),
      producedAt: now,
      responses: [{ certId: certIdFor(inter.cert, good.cert.serial()), status: { good: true }, thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR) }],
    });
    assert.equal(p.cacheable, true);
    assert.equal(p.nextUpdate?.getTime(), now.getTime() + HOUR);
    const scheme = schemeForKey(inter.key);
    const resp = assembleOcspResponse(p, scheme, signWith(scheme, p.tbs, inter.key));
    const r = openssl(['ocsp', '-respin', 'resp.der', '-issuer', 'inter.pem', '-cert', 'good.pem', '-no_nonce', '-CAfile', 'root.pem'], { ...files, 'resp.der': resp });
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, /good.pem: good/);
  });
});

describe('buildBasicOcspResponse refuses', () => {
  const now = new Date();
  const base: OcspResponseInput = {
    signerId: 'inter',
    responderId: responderIdFor(inter.cert),
    producedAt: now,
    responses: [{ certId: certIdFor(inter.cert, '01'), status: { good: true }, thisUpdate: now }],
  };
  const one = (r: Partial<OcspResponseInput['responses'][number]>) => ({ responses: [{ ...base.responses[0]!, ...r }] });
  const cases: Array<[string, Partial<OcspResponseInput>, RegExp]> = [
    ['no responses', { responses: [] }, /at least one/],
    ['nextUpdate before thisUpdate', one({ nextUpdate: new Date(now.getTime() - 1000) }), /nextUpdate/],
    ['reason removeFromCRL', one({ status: { revoked: { at: now, reason: 8 } } }), /revocation reason/],
    ['reason 7', one({ status: { revoked: { at: now, reason: 7 } } }), /revocation reason/],
    ['an invalid date', one({ thisUpdate: new Date(NaN) }), /valid date/],
    ['a 33-octet nonce', { nonce: Buffer.alloc(33) }, /1 to 32/],
    ['a byKey hash that is not SHA-1', { responderId: { keyHash: Buffer.alloc(32) } }, /SHA-1/],
  ];
  for (const [name, override, re] of cases) {
    it(name, () => assert.throws(() => buildBasicOcspResponse({ ...base, ...override }), (e: unknown) => e instanceof PkiError && e.code === 'lint-failed' && re.test(e.message)));
  }

  it('brands what it builds; assembly refuses anything else', () => {
    const p = buildBasicOcspResponse({ ...base, nonce: Buffer.alloc(16, 1) });
    assert.equal(isPreparedOcspResponse(p), true);
    assert.equal(p.cacheable, false);
    assert.throws(() => assembleOcspResponse({ ...p }, schemeForKey(inter.key), Buffer.alloc(64)), /buildBasicOcspResponse/);
  });
});

describe('error responses', () => {
  const cases: Array<[OcspErrorStatus, string]> = [
    ['malformedRequest', 'malformedrequest (1)'],
    ['internalError', 'internalerror (2)'],
    ['tryLater', 'trylater (3)'],
    ['sigRequired', 'sigrequired (5)'],
    ['unauthorized', 'unauthorized (6)'],
  ];
  for (const [status, printed] of cases) {
    it(status, () => {
      const r = openssl(['ocsp', '-respin', 'e.der', '-resp_text'], { 'e.der': ocspErrorResponse(status) });
      assert.match(r.out, new RegExp(`Responder Error: ${printed.replace(/[()]/g, '\\$&')}`));
    });
  }
  it('garbage and truncated requests take the malformedRequest path', () => {
    const req = openssl(['ocsp', '-issuer', 'inter.pem', '-cert', 'good.pem', '-reqout', 'req.der'], files).req!;
    for (const bad of [Buffer.from('garbage'), req.subarray(0, req.length - 5)]) {
      const answer = (() => {
        try {
          return respond(bad, inter, { delegated: false });
        } catch (err) {
          assert.ok(err instanceof PkiError && err.code === 'malformed-der');
          return ocspErrorResponse('malformedRequest');
        }
      })();
      assert.match(openssl(['ocsp', '-respin', 'e.der', '-resp_text'], { 'e.der': answer }).out, /malformedrequest/);
    }
  });
});

describe('OCSP_RESPONDER_PROFILE', () => {
  it('issues a certificate openssl accepts as an OCSP helper, with EKU OCSPSigning and OCSP No Check', () => {
    assert.deepEqual(responder.cert.extKeyUsage(), ['1.3.6.1.5.5.7.3.9']);
    assert.deepEqual(responder.cert.keyUsage(), ['digitalSignature']);
    const text = openssl(['x509', '-in', 'responder.pem', '-noout', '-text'], files).out;
    assert.match(text, /OCSP No Check/);
    const v = openssl(['verify', '-x509_strict', '-purpose', 'ocsphelper', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'responder.pem'], files);
    assert.equal(v.ok, true, v.out);
  });
});
