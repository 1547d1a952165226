/**
 * Device replacement against a real server with the real openssl: a thing
 * with a policy on its certificate gets a new certificate for a CSR made by
 * openssl (`certfleet thing replace`); OCSP then says the old certificate is
 * revoked (superseded) and the new one good, the new certificate carries the
 * policy, and the audit log holds exactly one `thing.replace-certificate`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

async function ok(...args: string[]): Promise<string> {
  const r = await certfleet([...args, '--data', data]);
  assert.equal(r.code, 0, `certfleet ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok(...args, '--json')) as T;

/** chain.pem is the issuing CA then the root; openssl ocsp wants the issuer alone. */
function issuerOf(dir: string): string {
  const chain = readFileSync(join(dir, 'chain.pem'), 'utf8');
  const file = join(dir, 'issuer.pem');
  writeFileSync(file, chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26));
  return file;
}

function ocsp(dir: string): string {
  const r = spawnSync(
    'openssl',
    ['ocsp', '-issuer', issuerOf(dir), '-cert', join(dir, 'cert.pem'), '-url', `http://127.0.0.1:${server.ports.http}/ocsp`, '-CAfile', join(dir, 'ca.pem')],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return r.stdout + r.stderr;
}

describe('device replacement with the CLI and openssl', () => {
  it('the new certificate (openssl CSR) gets the thing and its policy, the old one is revoked superseded, one audit entry', async () => {
    await ok('thing', 'create', 'meter-7');
    const oldDir = join(data, 'old');
    const old = await json<{ id: string }>('cert', 'issue', '--thing', 'meter-7', '--out', oldDir);
    const policyFile = join(data, 'meter.json');
    writeFileSync(policyFile, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect', 'publish'], resources: ['meters/${thing.name}/#'] }] }));
    await ok('policy', 'create', 'meter-policy', '--file', policyFile);
    await ok('policy', 'attach', 'meter-policy', '--cert', old.id);
    assert.match(ocsp(oldDir), /cert\.pem: good/);

    // The replacement device makes its own key; only the CSR leaves it.
    const newDir = join(data, 'new');
    const csr = join(data, 'new.csr');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(data, 'new.key'), '-out', csr, '-subj', '/CN=whatever']);
    const replaced = await json<{ id: string; serial: string; revoked: string[]; policies: string[]; files: string[] }>(
      'thing', 'replace', 'meter-7', '--csr', csr, '--out', newDir,
    );
    assert.deepEqual(replaced.revoked, [old.id]);
    assert.deepEqual(replaced.policies, ['meter-policy']);
    assert.deepEqual(replaced.files, ['cert.pem', 'chain.pem', 'ca.pem'].map((f) => join(newDir, f)));

    // The certificate is for the key openssl made, and verifies strictly.
    const certKey = execFileSync('openssl', ['x509', '-in', join(newDir, 'cert.pem'), '-noout', '-pubkey'], { encoding: 'utf8' });
    const deviceKey = execFileSync('openssl', ['pkey', '-in', join(data, 'new.key'), '-pubout'], { encoding: 'utf8' });
    assert.equal(certKey, deviceKey);
    const v = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(newDir, 'ca.pem'), '-untrusted', join(newDir, 'chain.pem'), join(newDir, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);

    const oldStatus = ocsp(oldDir);
    assert.match(oldStatus, /Response verify OK/);
    assert.match(oldStatus, /cert\.pem: revoked/);
    assert.match(oldStatus, /Reason: superseded/);
    const newStatus = ocsp(newDir);
    assert.match(newStatus, /Response verify OK/);
    assert.match(newStatus, /cert\.pem: good/);

    const cert = await json<{ thing: string; status: string; policies: string[]; subject: string }>('cert', 'get', replaced.id);
    assert.deepEqual([cert.thing, cert.status, cert.policies, cert.subject], ['meter-7', 'active', ['meter-policy'], 'CN=meter-7']);
    const thing = await json<{ certificates: { id: string; status: string }[] }>('thing', 'get', 'meter-7');
    assert.deepEqual(
      thing.certificates.map((c) => [c.id, c.status]).sort(),
      [[old.id, 'revoked'], [replaced.id, 'active']].sort(),
    );

    const log = await json<{ items: { action: string; target: string; details: Record<string, unknown> }[] }>('audit-log', 'list', '--limit', '1000');
    const entries = log.items.filter((e) => e.action === 'thing.replace-certificate');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.target, 'thing:meter-7');
    assert.deepEqual(entries[0]!.details, { thing: 'meter-7', new: replaced.id, serial: replaced.serial, revoked: [old.id], reason: 'superseded' });
    assert.equal((await json<{ ok: boolean }>('audit-log', 'verify')).ok, true);
  });

  it('with --key-algorithm the server makes the key (key.pem, 0600); a reason is given', async () => {
    await ok('thing', 'create', 'meter-8');
    const old = await json<{ id: string }>('cert', 'issue', '--thing', 'meter-8', '--out', join(data, 'm8-old'));
    const dir = join(data, 'm8-new');
    const r = await json<{ revoked: string[]; files: string[] }>('thing', 'replace', 'meter-8', '--key-algorithm', 'ec-p384', '--reason', 'keyCompromise', '--out', dir);
    assert.deepEqual(r.revoked, [old.id]);
    assert.ok(r.files.includes(join(dir, 'key.pem')));
    assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
    const matches = spawnSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-pubkey'], { encoding: 'utf8' }).stdout;
    assert.equal(matches, execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout'], { encoding: 'utf8' }));
    assert.match(ocsp(join(data, 'm8-old')), /Reason: keyCompromise/);
  });

  it('clear answers, nothing changed: unknown thing, nothing to replace, both or neither key option', async () => {
    const csr = join(data, 'new.csr');
    const before = (await json<{ items: unknown[] }>('cert', 'list')).items.length;
    const ghost = await certfleet(['thing', 'replace', 'ghost', '--csr', csr, '--out', join(data, 'x'), '--data', data]);
    assert.notEqual(ghost.code, 0);
    assert.match(ghost.stderr, /no thing named ghost/);
    await ok('thing', 'create', 'bare');
    const bare = await certfleet(['thing', 'replace', 'bare', '--csr', csr, '--out', join(data, 'x'), '--data', data]);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /nothing to replace/);
    for (const extra of [[], ['--csr', csr, '--key-algorithm', 'ec-p256']]) {
      const r = await certfleet(['thing', 'replace', 'bare', ...extra, '--out', join(data, 'x'), '--data', data]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /either --csr FILE or --key-algorithm ALG/);
    }
    assert.equal((await json<{ items: unknown[] }>('cert', 'list')).items.length, before);
  });
});
