/**
 * EST (RFC 7030) against a real `certfleet serve`, driven with curl and
 * openssl as an EST client on a Linux device would: cacerts lists the
 * issuing CA and the root; simpleenroll with a claim certificate (or an API
 * token over HTTP Basic) returns a certs-only PKCS#7 whose certificate
 * verifies to the root; simplereenroll with that certificate as client
 * certificate issues the next one and supersedes the old one; a CSR with
 * another subject is refused 400, no credential 401.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;
let claimDir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(cmd, args, { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** curl with -i: the status, the headers (lower-cased names) and the body. */
async function curl(path: string, args: string[] = []): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const r = await run('curl', ['-sS', '-i', '--cacert', join(claimDir, 'ca.pem'), ...args, `https://localhost:${server.ports.api}/.well-known/est/${path}`]);
  assert.equal(r.code, 0, r.stderr);
  const [head, ...rest] = r.stdout.split('\r\n\r\n');
  const lines = head!.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

async function openssl(args: string[], input?: string): Promise<string> {
  const r = await run('openssl', args, input);
  assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A key and a base64 DER CSR (with line breaks, as `base64` writes it) for `subject`. */
async function csrFor(name: string, subject: string, keyFile?: string): Promise<{ key: string; csrFile: string }> {
  const key = keyFile ?? join(data, `${name}.key`);
  if (!keyFile) await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  const der = join(data, `${name}.csr.der`);
  await openssl(['req', '-new', '-key', key, '-subj', subject, '-outform', 'DER', '-out', der]);
  const csrFile = join(data, `${name}.csr.b64`);
  writeFileSync(csrFile, (readFileSync(der).toString('base64').match(/.{1,64}/g) ?? []).join('\n') + '\n');
  return { key, csrFile };
}

/** The PEM certificates in a base64 certs-only PKCS#7 body. */
async function certsOf(body: string): Promise<string> {
  const der = join(data, 'p7.der');
  writeFileSync(der, Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  return openssl(['pkcs7', '-inform', 'DER', '-in', der, '-print_certs']);
}

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const file = join(data, 'est-template.json');
  writeFileSync(file, JSON.stringify({ parameters: { SerialNumber: { type: 'string' } }, thing: { name: 'est-${parameters.SerialNumber}' } }));
  const t = await certfleet(['template', 'create', 'est', '--file', file, '--data', data]);
  assert.equal(t.code, 0, t.stderr);
  claimDir = join(data, 'claim');
  const c = await certfleet(['claim', 'create', '--template', 'est', '--out', claimDir, '--data', data]);
  assert.equal(c.code, 0, c.stderr);
});
after(async () => {
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('EST (RFC 7030)', () => {
  let enrolledCert: string;
  let enrolledKey: string;

  it('cacerts: a certs-only PKCS#7 with the issuing CA and the root, no auth', async () => {
    const r = await curl('cacerts');
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type']!, /^application\/pkcs7-mime/);
    assert.equal(r.headers['content-transfer-encoding'], 'base64');
    const certs = await certsOf(r.body);
    assert.equal(certs.match(/BEGIN CERTIFICATE/g)?.length, 2, certs);
    // As a shell script would: curl | base64 -d | openssl pkcs7.
    const url = `https://localhost:${server.ports.api}/.well-known/est/cacerts`;
    const piped = await run('sh', ['-c', `curl -sS --cacert "$1" "$2" | base64 -d | openssl pkcs7 -inform DER -print_certs`, 'sh', join(claimDir, 'ca.pem'), url]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout.match(/BEGIN CERTIFICATE/g)?.length, 2, piped.stdout);
    const chain = readFileSync(join(claimDir, 'chain.pem'), 'utf8').replace(/\s+/g, '');
    for (const pem of certs.split(/(?=subject=)/).filter((b) => b.includes('BEGIN'))) {
      assert.ok(chain.includes(pem.slice(pem.indexOf('-----BEGIN')).replace(/\s+/g, '')), 'each CA is one of the chain');
    }
  });

  it('csrattrs: no attributes asked for', async () => {
    assert.equal((await curl('csrattrs')).status, 204);
  });

  it('simpleenroll without a credential: 401 with a Basic challenge', async () => {
    const { csrFile } = await csrFor('anon', '/CN=anon');
    const r = await curl('simpleenroll', ['--data-binary', `@${csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(r.status, 401, r.body);
    assert.equal(r.headers['www-authenticate'], 'Basic realm="certfleet EST"');
  });

  it('simpleenroll with the claim certificate: a PKCS#7 whose certificate verifies to the root', async () => {
    const { key, csrFile } = await csrFor('dev1', '/CN=est-dev-1');
    const r = await curl('simpleenroll', [
      '--cert', join(claimDir, 'cert.pem'), '--key', join(claimDir, 'key.pem'),
      '--data-binary', `@${csrFile}`, '-H', 'Content-Type: application/pkcs10', '-H', 'Content-Transfer-Encoding: base64',
    ]);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
    assert.equal(r.headers['content-transfer-encoding'], 'base64');
    const certs = await certsOf(r.body);
    assert.equal(certs.match(/BEGIN CERTIFICATE/g)?.length, 1);
    enrolledCert = join(data, 'dev1.pem');
    enrolledKey = key;
    writeFileSync(enrolledCert, certs);
    const v = await openssl(['verify', '-CAfile', join(claimDir, 'ca.pem'), '-untrusted', join(claimDir, 'chain.pem'), enrolledCert]);
    assert.match(v, /: OK/);
    assert.match(await openssl(['x509', '-in', enrolledCert, '-noout', '-subject']), /CN\s*=\s*est-dev-1/);
  });

  it('simpleenroll with an API token as the Basic password; a bad one is 401, wrong scope 403', async () => {
    const tok = await certfleet(['token', 'create', '--scope', 'provisioner', '--json', '--data', data]);
    assert.equal(tok.code, 0, tok.stderr);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    const { csrFile } = await csrFor('dev2', '/CN=est-dev-2');
    const args = ['--data-binary', `@${csrFile}`, '-H', 'Content-Type: application/pkcs10'];
    const ok = await curl('simpleenroll', ['-u', `device:${token}`, ...args]);
    assert.equal(ok.status, 200, ok.body);
    assert.match(await certsOf(ok.body), /est-dev-2/);
    const bad = await curl('simpleenroll', ['-u', 'device:cf_nope', ...args]);
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['www-authenticate'], 'Basic realm="certfleet EST"');
    const aud = await certfleet(['token', 'create', '--scope', 'auditor', '--json', '--data', data]);
    const auditor = (JSON.parse(aud.stdout) as { token: string }).token;
    assert.equal((await curl('simpleenroll', ['-u', `device:${auditor}`, ...args])).status, 403);
  });

  it('simpleenroll errors: malformed body 400, bad signature 400, wrong content type 415', async () => {
    const claim = ['--cert', join(claimDir, 'cert.pem'), '--key', join(claimDir, 'key.pem')];
    const garbage = await curl('simpleenroll', [...claim, '--data-binary', 'not base64 at all!', '-H', 'Content-Type: application/pkcs10']);
    assert.equal(garbage.status, 400, garbage.body);
    const { csrFile } = await csrFor('dev3', '/CN=est-dev-3');
    const der = Buffer.from(readFileSync(csrFile, 'utf8').replace(/\s+/g, ''), 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff; // inside the signature
    const tampered = await curl('simpleenroll', [...claim, '--data-binary', der.toString('base64'), '-H', 'Content-Type: application/pkcs10']);
    assert.equal(tampered.status, 400, tampered.body);
    assert.match(tampered.body, /bad-signature/);
    const json = await curl('simpleenroll', [...claim, '--data-binary', '{}', '-H', 'Content-Type: application/json']);
    assert.equal(json.status, 415, json.body);
  });

  it('simplereenroll with the current certificate: a new one; another subject 400; no client certificate 401', async () => {
    const mine = ['--cert', enrolledCert, '--key', enrolledKey];
    const other = await csrFor('dev1-other', '/CN=someone-else', enrolledKey);
    const refused = await curl('simplereenroll', [...mine, '--data-binary', `@${other.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(refused.status, 400, refused.body);

    const anon = await curl('simplereenroll', ['--data-binary', `@${other.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(anon.status, 401);

    const next = await csrFor('dev1-next', '/CN=est-dev-1');
    const r = await curl('simplereenroll', [...mine, '--data-binary', `@${next.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
    const nextCert = join(data, 'dev1-next.pem');
    writeFileSync(nextCert, await certsOf(r.body));
    assert.match(await openssl(['verify', '-CAfile', join(claimDir, 'ca.pem'), '-untrusted', join(claimDir, 'chain.pem'), nextCert]), /: OK/);
    const oldSerial = (await openssl(['x509', '-in', enrolledCert, '-noout', '-serial'])).trim();
    const newSerial = (await openssl(['x509', '-in', nextCert, '-noout', '-serial'])).trim();
    assert.notEqual(newSerial, oldSerial);

    // The old certificate is superseded (revoked at once): it can no longer re-enroll; the new one can.
    const again = await curl('simplereenroll', [...mine, '--data-binary', `@${next.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(again.status, 401, again.body);
    const third = await csrFor('dev1-third', '/CN=est-dev-1');
    const r3 = await curl('simplereenroll', ['--cert', nextCert, '--key', next.key, '--data-binary', `@${third.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(r3.status, 200, r3.body);
  });
});
