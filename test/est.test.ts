/**
 * EST (RFC 7030) against a real `certfleet serve`, driven with curl,
 * openssl and mosquitto_pub as an EST client on a Linux device would:
 * cacerts lists the issuing CA and the root; simpleenroll with a claim
 * certificate, or a one-time enrollment secret over HTTP Basic (once: the
 * second time 401), returns a certs-only PKCS#7 whose certificate verifies
 * to the root; simplereenroll with that certificate as client certificate
 * issues the next one, and the old one stays active until the new one
 * connects to the broker; a CSR with another subject is refused 400, no
 * credential 401.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** The certificate id certfleet uses: SHA-256 of the DER, lowercase hex. */
const idOf = (pemFile: string): string => createHash('sha256').update(new X509Certificate(readFileSync(pemFile)).raw).digest('hex');

async function statusOf(id: string): Promise<string> {
  const r = await certfleet(['cert', 'get', id, '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { status: string }).status;
}

interface IssuedSecret {
  id: string;
  username: string;
  secret: string;
  thing?: string;
}

async function secrets(args: string[]): Promise<IssuedSecret[]> {
  const r = await certfleet(['est', 'secret', 'create', ...args, '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { secrets: IssuedSecret[] }).secrets;
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

  it('simpleenroll with a one-time secret: the certificate on its thing, once; the second time 401 with a problem body', async () => {
    const [sec] = await secrets(['--thing', 'est-dev-2', '--expires-in', '2h']);
    const { csrFile } = await csrFor('dev2', '/CN=whatever-the-device-says');
    const args = ['--data-binary', `@${csrFile}`, '-H', 'Content-Type: application/pkcs10'];
    const ok = await curl('simpleenroll', ['-u', `${sec!.username}:${sec!.secret}`, ...args]);
    assert.equal(ok.status, 200, ok.body);
    const pem = join(data, 'dev2.pem');
    writeFileSync(pem, await certsOf(ok.body));
    // The thing's name, not the CSR's, is the certificate's CN; the thing was created for it.
    assert.match(await openssl(['x509', '-in', pem, '-noout', '-subject']), /CN\s*=\s*est-dev-2/);
    const thing = await certfleet(['cert', 'get', idOf(pem), '--json', '--data', data]);
    assert.equal((JSON.parse(thing.stdout) as { thing: string }).thing, 'est-dev-2', thing.stdout);

    const again = await curl('simpleenroll', ['-u', `${sec!.username}:${sec!.secret}`, ...args]);
    assert.equal(again.status, 401, again.body);
    assert.equal(again.headers['www-authenticate'], 'Basic realm="certfleet EST"');
    assert.match(again.headers['content-type']!, /^application\/problem\+json/);
    assert.match(JSON.parse(again.body).detail as string, /already used/);

    const wrong = await curl('simpleenroll', ['-u', `${sec!.username}:nope`, ...args]);
    assert.equal(wrong.status, 401);
    // An API token is no longer an EST credential.
    const tok = await certfleet(['token', 'create', '--scope', 'provisioner', '--json', '--data', data]);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    assert.equal((await curl('simpleenroll', ['-u', `device:${token}`, ...args])).status, 401);

    const list = await certfleet(['est', 'secret', 'list', '--json', '--data', data]);
    const item = (JSON.parse(list.stdout) as { items: Array<{ id: string; status: string; certificateId: string }> }).items.find((x) => x.id === sec!.id);
    assert.deepEqual([item?.status, item?.certificateId], ['spent', idOf(pem)]);
    assert.ok(!list.stdout.includes(sec!.secret), 'the secret is never shown again');
  });

  it('a batch secret: N secrets in a 0600 CSV; two concurrent enrolments with one secret, exactly one succeeds; a revoked one 401', async () => {
    const csv = join(data, 'batch.csv');
    const r = await certfleet(['est', 'secret', 'create', '--count', '3', '--batch', 'line-4', '--out', csv, '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(rows[0], 'id,username,secret,thing,batch,expiresAt');
    assert.equal(rows.length, 4);
    assert.equal((await import('node:fs')).statSync(csv).mode & 0o777, 0o600);
    const [id, username, secret] = rows[1]!.split(',');
    const { csrFile } = await csrFor('batch-1', '/CN=meter-0001');
    const args = ['-u', `${username}:${secret}`, '--data-binary', `@${csrFile}`, '-H', 'Content-Type: application/pkcs10'];
    const both = await Promise.all([curl('simpleenroll', args), curl('simpleenroll', args)]);
    assert.deepEqual(both.map((b) => b.status).sort(), [200, 401], both.map((b) => b.body).join('\n'));
    const winner = both.find((b) => b.status === 200)!;
    assert.match(await certsOf(winner.body), /CN\s*=\s*meter-0001/);
    const listed = await certfleet(['est', 'secret', 'list', '--batch', 'line-4', '--json', '--data', data]);
    const items = (JSON.parse(listed.stdout) as { items: Array<{ id: string; status: string }> }).items;
    assert.deepEqual(items.map((x) => x.status).sort(), ['spent', 'unused', 'unused']);
    assert.equal(items.find((x) => x.id === id)?.status, 'spent');

    const [rid, ruser, rsecret] = rows[2]!.split(',');
    assert.equal((await certfleet(['est', 'secret', 'revoke', rid!, '--data', data])).code, 0);
    const other = await csrFor('batch-2', '/CN=meter-0002');
    const revoked = await curl('simpleenroll', ['-u', `${ruser}:${rsecret}`, '--data-binary', `@${other.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(revoked.status, 401, revoked.body);
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

  it('simplereenroll: a new certificate; the old one stays active until the new one connects, then is revoked superseded', async () => {
    const mine = ['--cert', enrolledCert, '--key', enrolledKey];
    const other = await csrFor('dev1-other', '/CN=someone-else', enrolledKey);
    const refused = await curl('simplereenroll', [...mine, '--data-binary', `@${other.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(refused.status, 400, refused.body);

    const anon = await curl('simplereenroll', ['--data-binary', `@${other.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(anon.status, 401);

    // A policy on the device's certificate: re-enrollment carries it to the new one, so the new one may connect.
    const policyFile = join(data, 'est-policy.json');
    writeFileSync(policyFile, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['est-dev-1'] }, { effect: 'allow', actions: ['publish'], resources: ['est/#'] }] }));
    assert.equal((await certfleet(['policy', 'create', 'est-device', '--file', policyFile, '--data', data])).code, 0);
    const oldId = idOf(enrolledCert);
    assert.equal((await certfleet(['policy', 'attach', 'est-device', '--cert', oldId, '--data', data])).code, 0);

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
    assert.equal(await statusOf(oldId), 'active', 'the old certificate stays active through the grace period');

    // The device did not install it and asks again with the old one: a new certificate, the unused one revoked.
    const again = await csrFor('dev1-again', '/CN=est-dev-1');
    const r2 = await curl('simplereenroll', [...mine, '--data-binary', `@${again.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(r2.status, 200, r2.body);
    const againCert = join(data, 'dev1-again.pem');
    writeFileSync(againCert, await certsOf(r2.body));
    assert.equal(await statusOf(idOf(nextCert)), 'revoked');
    assert.equal(await statusOf(oldId), 'active');
    const stale = await curl('simplereenroll', ['--cert', nextCert, '--key', next.key, '--data-binary', `@${again.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(stale.status, 401, stale.body);

    // The new certificate's first connection retires the old one.
    const pub = await run('mosquitto_pub', ['--cafile', join(claimDir, 'ca.pem'), '--cert', againCert, '--key', again.key, '-h', 'localhost', '-p', String(server.ports.mqtt), '-i', 'est-dev-1', '-t', 'est/hello', '-m', 'hi']);
    assert.equal(pub.code, 0, pub.stderr);
    let status = await statusOf(oldId);
    for (let i = 0; i < 50 && status !== 'revoked'; i++) {
      await sleep(100);
      status = await statusOf(oldId);
    }
    assert.equal(status, 'revoked');
    const detail = JSON.parse((await certfleet(['cert', 'get', oldId, '--json', '--data', data])).stdout) as { revocationReason: string };
    assert.equal(detail.revocationReason, 'superseded');
    const refusedOld = await curl('simplereenroll', [...mine, '--data-binary', `@${again.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(refusedOld.status, 401, refusedOld.body);

    const third = await csrFor('dev1-third', '/CN=est-dev-1');
    const r3 = await curl('simplereenroll', ['--cert', againCert, '--key', again.key, '--data-binary', `@${third.csrFile}`, '-H', 'Content-Type: application/pkcs10']);
    assert.equal(r3.status, 200, r3.body);
  });
});
