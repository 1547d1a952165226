/**
 * The newcomer's flow from the README, against a real server process and
 * the real openssl: init and serve, create a thing, issue a certificate,
 * sign a CSR made by openssl, list, and verify everything with
 * `openssl verify -x509_strict`; the API's TLS chain verifies against ca.pem
 * with `openssl s_client`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;

before(async () => {
  data = tempDir();
  const init = await certfleet(['init', '--data', data]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /admin token .*cf_/);
  server = await serve(data);
});

after(async () => {
  await server?.stop();
  rmSync(data, { recursive: true, force: true });
});

function verify(dir: string): string {
  const r = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'cert.pem')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
}

describe('certfleet CLI against a running server', () => {
  it('init refuses to overwrite without --force', async () => {
    const again = await certfleet(['init', '--data', data]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /--force/);
  });

  it('writes cli.json with url, token and caFile, and ports.json', () => {
    const cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { url: string; token: string; caFile: string };
    assert.equal(cli.url, `https://localhost:${server.ports.api}`);
    assert.match(cli.token, /^cf_/);
    assert.equal(statSync(join(data, 'cli.json')).mode & 0o077, 0, 'cli.json holds a token: owner only');
    assert.ok(server.ports.mqtt > 0 && server.ports.http > 0);
  });

  it('thing create, cert issue, openssl verify -x509_strict', async () => {
    const t = await certfleet(['thing', 'create', 'pump-7', '--data', data]);
    assert.equal(t.code, 0, t.stderr);
    const out = join(data, 'out-issue');
    const r = await certfleet(['cert', 'issue', '--thing', 'pump-7', '--out', out, '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { id } = JSON.parse(r.stdout) as { id: string };
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.match(verify(out), /OK/);
    assert.equal(statSync(join(out, 'key.pem')).mode & 0o077, 0, 'key.pem is owner-only');
    const subject = execFileSync('openssl', ['x509', '-in', join(out, 'cert.pem'), '-noout', '-subject'], { encoding: 'utf8' });
    assert.match(subject, /CN\s*=\s*pump-7/);
  });

  it('cert sign with a CSR made by openssl; the key never leaves the device', async () => {
    const dir = join(data, 'device');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(data, 'dev.key'), '-out', join(data, 'dev.csr'), '-subj', '/CN=whatever']);
    assert.equal((await certfleet(['thing', 'create', 'valve-2', '--data', data])).code, 0);
    const r = await certfleet(['cert', 'sign', '--csr', join(data, 'dev.csr'), '--thing', 'valve-2', '--out', dir, '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    verify(dir);
    // The certificate is for the key openssl made.
    const certKey = execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-pubkey'], { encoding: 'utf8' });
    const devKey = execFileSync('openssl', ['pkey', '-in', join(data, 'dev.key'), '-pubout'], { encoding: 'utf8' });
    assert.equal(certKey, devKey);
  });

  it('cert list --expiring-within and --json', async () => {
    const all = JSON.parse((await certfleet(['cert', 'list', '--json', '--data', data])).stdout) as { items: { thing: string | null }[] };
    assert.ok(all.items.some((c) => c.thing === 'pump-7'));
    assert.ok(all.items.some((c) => c.thing === 'valve-2'));
    const soon = JSON.parse((await certfleet(['cert', 'list', '--expiring-within', '30d', '--json', '--data', data])).stdout) as { items: unknown[] };
    assert.equal(soon.items.length, 0, 'fresh device certificates expire in a year');
    const year = JSON.parse((await certfleet(['cert', 'list', '--expiring-within', '400d', '--json', '--data', data])).stdout) as { items: unknown[] };
    assert.ok(year.items.length >= 2);
  });

  it('the API presents a chain that verifies against ca.pem alone (openssl s_client)', () => {
    const r = spawnSync('openssl', ['s_client', '-connect', `localhost:${server.ports.api}`, '-CAfile', join(data, 'ca.pem'), '-verify_return_error', '-verify_hostname', 'localhost'], { input: '', encoding: 'utf8', timeout: 20_000 });
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/, r.stdout + r.stderr);
  });

  it('ca create adds an intermediate under the root', async () => {
    const r = await certfleet(['ca', 'create', 'factory-ca', '--parent', 'root', '--key-algorithm', 'ec-p384', '--json', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const ca = JSON.parse(r.stdout) as { kind: string; keyAlgorithm: string };
    assert.equal(ca.kind, 'intermediate');
    assert.equal(ca.keyAlgorithm, 'ec-p384');
    const out = join(data, 'out-factory');
    assert.equal((await certfleet(['cert', 'issue', '--cn', 'factory-dev', '--issuer', 'factory-ca', '--out', out, '--data', data])).code, 0);
    verify(out);
  });

  it('the public trust bundle is served on the http port', async () => {
    const res = await fetch(`http://127.0.0.1:${server.ports.http}/trust-bundle.pem`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), readFileSync(join(data, 'ca.pem'), 'utf8').trim());
  });
});

describe('certfleet token', () => {
  it('create --scope auditor --expires 30d, list, revoke', async () => {
    const c = await certfleet(['token', 'create', '--scope', 'auditor', '--expires', '30d', '--json', '--data', data]);
    assert.equal(c.code, 0, c.stderr);
    const t = JSON.parse(c.stdout) as { id: string; token: string };
    const asAuditor = { CERTFLEET_TOKEN: t.token };
    assert.equal((await certfleet(['cert', 'list', '--data', data], asAuditor)).code, 0);
    const denied = await certfleet(['thing', 'create', 'nope', '--data', data], asAuditor);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/);
    const list = await certfleet(['token', 'list', '--data', data]);
    assert.match(list.stdout, new RegExp(t.id));
    assert.ok(!list.stdout.includes(t.token));
    assert.equal((await certfleet(['token', 'revoke', t.id, '--data', data])).code, 0);
    const after = await certfleet(['cert', 'list', '--data', data], asAuditor);
    assert.match(after.stderr, /unauthorized/);
  });
});

describe('certfleet audit run', () => {
  it('--json reports findings with severity, reason code, resource and mitigations', async () => {
    const r = await certfleet(['cert', 'issue', '--cn', 'short-lived', '--days', '5', '--out', join(data, 'short'), '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const a = await certfleet(['audit', 'run', '--json', '--data', data]);
    assert.equal(a.code, 0, a.stderr);
    const report = JSON.parse(a.stdout) as { findings: Array<{ severity: string; reasonCode: string; resource: string; mitigations: string[] }>; summary: Record<string, number> };
    const f = report.findings.find((x) => x.reasonCode === 'device-certificate-expiring');
    assert.ok(f, a.stdout);
    assert.equal(f.severity, 'medium');
    assert.ok(f.mitigations.length > 0);
    assert.ok(report.summary.medium! >= 1);
  });
});

describe('certfleet forecast', () => {
  it('--json gives 52 weekly counts and the devices at risk', async () => {
    const r = await certfleet(['forecast', '--json', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const f = JSON.parse(r.stdout) as { total: number[]; byCa: Record<string, number[]>; atRisk: Array<{ certificateId: string }> };
    assert.equal(f.total.length, 52);
    assert.ok(f.total.reduce((a, b) => a + b, 0) >= 1, 'the 5-day certificate issued above is in the window (1-year ones fall just past week 52)');
    assert.ok(Object.keys(f.byCa).includes('issuing'));
    const human = await certfleet(['forecast', '--data', data]);
    assert.match(human.stdout, /EXPIRING/);
  });
});
