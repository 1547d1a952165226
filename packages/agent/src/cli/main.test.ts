import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodePem, verifyCsr } from '@certfleet/pki';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from '../testing/pki-fixtures.js';
import type { Status } from './status.js';

const BIN = fileURLToPath(new URL('../../bin/certfleet-agent.js', import.meta.url));
const run = async (...args: string[]) => {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args]);
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('certfleet-agent CLI', () => {
  let work: string;
  let dir: string;
  let root: TestCa;
  let issuing: TestCa;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certfleet-cli-'));
    dir = join(work, 'agent');
    root = makeRoot();
    issuing = makeIntermediate(root);
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('keygen writes a CSR for a key that stays on the device; a second keygen needs --force', async () => {
    const r = await run('keygen', '--dir', dir, '--subject', 'CN=dev-42,O=Acme', '--san', 'dns:dev-42.local', '--csr', join(work, 'dev.csr'));
    assert.equal(r.code, 0, r.stderr);
    const csr = verifyCsr(decodePem(await readFile(join(work, 'dev.csr'), 'utf8'), 'CERTIFICATE REQUEST'));
    assert.equal(csr.publicKey.algorithm, 'ec-p256');
    const again = await run('keygen', '--dir', dir);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a key.*\(key-exists\)/);
  });

  it('install promotes the signed certificate; status shows identity, expiry and the renewal window', async () => {
    const csr = verifyCsr(decodePem(await readFile(join(work, 'dev.csr'), 'utf8'), 'CERTIFICATE REQUEST'));
    const leaf = issueLeaf(issuing, { name: 'CN=dev-42', publicKey: csr.publicKey.key, validityDays: 365 });
    await writeFile(join(work, 'cert.pem'), leaf.certPem);
    await writeFile(join(work, 'chain.pem'), issuing.cert.toPem());
    const inst = await run('install', '--dir', dir, '--cert', join(work, 'cert.pem'), '--chain', join(work, 'chain.pem'));
    assert.equal(inst.code, 0, inst.stderr);

    const s = JSON.parse((await run('status', '--dir', dir, '--json')).stdout) as Status;
    assert.equal(s.current?.subject, 'CN=dev-42');
    assert.equal(s.current?.serial, leaf.cert.serial());
    assert.equal(s.current?.chainLength, 1);
    assert.ok(s.current!.daysLeft >= 364);
    const by = Date.parse(s.current!.renewal.by);
    assert.equal(by, leaf.cert.notAfter().getTime() - 28 * 86_400_000);
    assert.equal(s.next.state, 'absent');
    const text = (await run('status', '--dir', dir)).stdout;
    assert.match(text, /identity +CN=dev-42/);
    assert.match(text, /renewal +between/);
  });

  it('install refuses a certificate for another key', async () => {
    await run('keygen', '--dir', dir);
    await writeFile(join(work, 'other.pem'), issueLeaf(issuing).certPem);
    const r = await run('install', '--dir', dir, '--cert', join(work, 'other.pem'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /key-mismatch/);
  });

  it('trust add and trust list', async () => {
    await writeFile(join(work, 'roots.pem'), root.cert.toPem() + makeRoot('CN=Next Root').cert.toPem());
    const add = await run('trust', 'add', join(work, 'roots.pem'), '--dir', dir);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added CN=Test Root/);
    assert.match((await run('trust', 'add', join(work, 'roots.pem'), '--dir', dir)).stdout, /already trusted/);
    const list = JSON.parse((await run('trust', 'list', '--dir', dir, '--json')).stdout) as { subject: string; fingerprint: string }[];
    assert.deepEqual(list.map((r) => r.subject), ['CN=Next Root', 'CN=Test Root']);
    const leafFile = join(work, 'leaf.pem');
    await writeFile(leafFile, issueLeaf(issuing).certPem);
    const bad = await run('trust', 'add', leafFile, '--dir', dir);
    assert.match(bad.stderr, /not a CA certificate \(not-a-ca\)/);
  });
});
