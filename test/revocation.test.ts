/**
 * Revocation against a real server with the real openssl and curl: OCSP
 * says good then revoked (with reason), the CRL named in the certificate's
 * own distribution point verifies and lists the serial, `openssl verify
 * -crl_check` refuses the revoked certificate, certificateHold can be
 * lifted, and bad input gets clear answers.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
});
after(async () => {
  await server?.stop();
  rmSync(data, { recursive: true, force: true });
});

interface Issued {
  id: string;
  serial: string;
  dir: string;
}

async function issue(name: string): Promise<Issued> {
  assert.equal((await certfleet(['thing', 'create', name, '--data', data])).code, 0);
  const dir = join(data, name);
  const r = await certfleet(['cert', 'issue', '--thing', name, '--out', dir, '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  const { id, serial } = JSON.parse(r.stdout) as { id: string; serial: string };
  // chain.pem is the issuing CA then the root; OCSP and -untrusted want the issuer alone.
  const chain = readFileSync(join(dir, 'chain.pem'), 'utf8');
  writeFileSync(join(dir, 'issuer.pem'), chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26));
  return { id, serial, dir };
}

function ocsp(c: Issued, extra: string[] = []): string {
  const r = spawnSync(
    'openssl',
    ['ocsp', '-issuer', join(c.dir, 'issuer.pem'), '-cert', join(c.dir, 'cert.pem'), '-url', `http://127.0.0.1:${server.ports.http}/ocsp`, '-CAfile', join(c.dir, 'ca.pem'), ...extra],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return r.stdout + r.stderr;
}

function crlUrl(c: Issued): string {
  const text = execFileSync('openssl', ['x509', '-in', join(c.dir, 'cert.pem'), '-noout', '-ext', 'crlDistributionPoints'], { encoding: 'utf8' });
  const m = /URI:(\S+)/.exec(text);
  assert.ok(m, `no CRL distribution point in:\n${text}`);
  return m[1]!;
}

/** Fetches the certificate's own CRL with curl until it lists the serial (revocations are batched for about a second). */
async function fetchCrl(c: Issued, mustList: boolean): Promise<string> {
  const der = join(c.dir, 'crl.der');
  for (let i = 0; i < 40; i++) {
    execFileSync('curl', ['-sf', '-o', der, crlUrl(c)]);
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', der, '-noout', '-text'], { encoding: 'utf8' });
    if (text.includes(c.serial.toUpperCase()) === mustList) return der;
    await sleep(100);
  }
  assert.fail(`the CRL never ${mustList ? 'listed' : 'dropped'} ${c.serial}`);
}

describe('revocation with openssl and curl', () => {
  it('OCSP good, then revoked with its reason; CRL lists it; openssl verify -crl_check refuses it', async () => {
    const c = await issue('pump-1');
    const before = ocsp(c);
    assert.match(before, /Response verify OK/);
    assert.match(before, /cert\.pem: good/);

    const r = await certfleet(['cert', 'revoke', c.id, '--reason', 'keyCompromise', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const afterRevoke = ocsp(c);
    assert.match(afterRevoke, /Response verify OK/);
    assert.match(afterRevoke, /cert\.pem: revoked/);
    assert.match(afterRevoke, /Reason: keyCompromise/);

    const der = await fetchCrl(c, true);
    const both = join(c.dir, 'cas.pem');
    writeFileSync(both, readFileSync(join(c.dir, 'ca.pem'), 'utf8') + readFileSync(join(c.dir, 'issuer.pem'), 'utf8'));
    const verified = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', der, '-CAfile', both, '-noout', '-verify'], { encoding: 'utf8' });
    assert.match(verified.stdout + verified.stderr, /verify OK/);
    const pem = join(c.dir, 'crl.pem');
    execFileSync('openssl', ['crl', '-inform', 'DER', '-in', der, '-out', pem]);
    const v = spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', pem, '-CAfile', join(c.dir, 'ca.pem'), '-untrusted', join(c.dir, 'issuer.pem'), join(c.dir, 'cert.pem')], { encoding: 'utf8' });
    assert.notEqual(v.status, 0);
    assert.match(v.stdout + v.stderr, /certificate revoked/);
  });

  it('a certificate that was never revoked passes openssl verify -crl_check', async () => {
    const c = await issue('pump-2');
    const der = await fetchCrl(c, false);
    const pem = join(c.dir, 'crl.pem');
    execFileSync('openssl', ['crl', '-inform', 'DER', '-in', der, '-out', pem]);
    const v = spawnSync('openssl', ['verify', '-x509_strict', '-crl_check', '-CRLfile', pem, '-CAfile', join(c.dir, 'ca.pem'), '-untrusted', join(c.dir, 'issuer.pem'), join(c.dir, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  it('certificateHold is lifted by release; every other revocation is final', async () => {
    const c = await issue('pump-3');
    assert.equal((await certfleet(['cert', 'revoke', c.id, '--reason', 'certificateHold', '--data', data])).code, 0);
    assert.match(ocsp(c), /Reason: certificateHold/);
    assert.equal((await certfleet(['cert', 'release', c.id, '--data', data])).code, 0);
    assert.match(ocsp(c), /cert\.pem: good/);
    await fetchCrl(c, false);
    assert.equal((await certfleet(['cert', 'revoke', c.id, '--reason', 'superseded', '--data', data])).code, 0);
    const again = await certfleet(['cert', 'release', c.id, '--data', data]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /invalid-state/);
  });

  it('OCSP over GET (base64 in the path) answers the same', async () => {
    const c = await issue('pump-4');
    const req = join(c.dir, 'req.der');
    execFileSync('openssl', ['ocsp', '-issuer', join(c.dir, 'issuer.pem'), '-cert', join(c.dir, 'cert.pem'), '-no_nonce', '-reqout', req]);
    const b64 = encodeURIComponent(readFileSync(req).toString('base64'));
    const res = await fetch(`http://127.0.0.1:${server.ports.http}/ocsp/${b64}`);
    assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
    writeFileSync(join(c.dir, 'resp.der'), Buffer.from(await res.arrayBuffer()));
    const out = spawnSync('openssl', ['ocsp', '-respin', join(c.dir, 'resp.der'), '-issuer', join(c.dir, 'issuer.pem'), '-cert', join(c.dir, 'cert.pem'), '-CAfile', join(c.dir, 'ca.pem')], { encoding: 'utf8' });
    assert.match(out.stdout + out.stderr, /Response verify OK/);
    assert.match(out.stdout, /good/);
  });

  it('bad input: garbage and truncated OCSP requests, revoking twice, an unknown id, a bad reason', async () => {
    const url = `http://127.0.0.1:${server.ports.http}/ocsp`;
    // OCSPResponse with responseStatus malformedRequest (1): 30 03 0A 01 01 (RFC 6960 §4.2.1).
    for (const body of [Buffer.from('garbage'), Buffer.from([0x30, 0x82, 0x01]), Buffer.alloc(0)]) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body });
      assert.equal(res.status, 200);
      assert.deepEqual([...Buffer.from(await res.arrayBuffer())], [0x30, 0x03, 0x0a, 0x01, 0x01]);
    }
    const bad = await fetch(`${url}/%%%`);
    assert.ok(bad.status < 500);
    const c = await issue('pump-5');
    assert.equal((await certfleet(['cert', 'revoke', c.id, '--reason', 'superseded', '--data', data])).code, 0);
    const twice = await certfleet(['cert', 'revoke', c.id, '--reason', 'superseded', '--data', data]);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /already revoked/);
    const unknown = await certfleet(['cert', 'revoke', 'ab'.repeat(32), '--reason', 'superseded', '--data', data]);
    assert.match(unknown.stderr, /not-found/);
    const reason = await certfleet(['cert', 'revoke', c.id, '--reason', 'because', '--data', data]);
    assert.notEqual(reason.code, 0);
  });
});
