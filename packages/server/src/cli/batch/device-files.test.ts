import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodePem, parseCsr } from '@certfleet/pki';
import { makeKeys, writeCertFiles } from './device-files.js';
import { DevicePool } from './workers.js';

const dir = mkdtempSync(join(tmpdir(), 'certfleet-devices-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const spkiOfCsr = (pem: string) => parseCsr(decodePem(pem, 'CERTIFICATE REQUEST')).spki;

describe('batch device files', () => {
  it('makes keys 0600 with CSRs for them; a key left by an earlier run is used again; a torn one is replaced', () => {
    const jobs = ['a', 'b', 'c'].map((thing) => ({ thing, dir: join(dir, 'k', thing) }));
    const first = makeKeys(jobs, 'ec-p256');
    assert.ok(first.every((d) => d.fresh));
    for (const d of first) {
      assert.equal(statSync(d.keyPath).mode & 0o777, 0o600);
      const spki = createPublicKey(createPrivateKey(readFileSync(d.keyPath, 'utf8'))).export({ format: 'der', type: 'spki' });
      assert.ok(spkiOfCsr(d.csr).equals(spki), 'the CSR is for the key on disk');
    }
    writeFileSync(first[2]!.keyPath, '-----BEGIN PRIVATE KEY-----\nMIGH');
    const again = makeKeys(jobs, 'ec-p256');
    assert.deepEqual(again.map((d) => d.fresh), [false, false, true]);
    assert.ok(spkiOfCsr(again[0]!.csr).equals(spkiOfCsr(first[0]!.csr)), 'same key, same CSR key');
    assert.ok(!spkiOfCsr(again[2]!.csr).equals(spkiOfCsr(first[2]!.csr)));
  });

  it('writes cert.pem and links chain.pem and ca.pem to the shared copies, over what an interrupted run left', () => {
    const chainFile = join(dir, '.chain.pem');
    const caFile = join(dir, '.ca.pem');
    writeFileSync(chainFile, 'CHAIN');
    writeFileSync(caFile, 'ROOT');
    const d = join(dir, 'f', 'dev-1');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'chain.pem'), 'stale');
    writeCertFiles([{ dir: d, certificatePem: 'CERT', chainFile, caFile }], false);
    assert.equal(readFileSync(join(d, 'cert.pem'), 'utf8'), 'CERT');
    assert.equal(readFileSync(join(d, 'chain.pem'), 'utf8'), 'CHAIN');
    assert.equal(readFileSync(join(d, 'ca.pem'), 'utf8'), 'ROOT');
    assert.equal(statSync(join(d, 'ca.pem')).ino, statSync(caFile).ino);
  });

  it('the worker pool returns keys in job order across its threads', async () => {
    const pool = new DevicePool(2);
    try {
      const jobs = Array.from({ length: 7 }, (_, i) => ({ thing: `w-${i}`, dir: join(dir, 'w', `w-${i}`) }));
      const keyed = await pool.spread(jobs, (slice) => ({ kind: 'keys', jobs: slice, alg: 'ec-p256' }));
      assert.deepEqual(keyed.map((k) => k.thing), jobs.map((j) => j.thing));
    } finally {
      await pool.close();
    }
  });

  it('a worker that does not answer in time is replaced and its task done on the main thread, with the same keys', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) => ({ thing: `s-${i}`, dir: join(dir, 's', `s-${i}`) }));
    const pool = new DevicePool(1, 1);
    try {
      const keyed = await pool.spread(jobs, (slice) => ({ kind: 'keys', jobs: slice, alg: 'ec-p256' }));
      assert.deepEqual(keyed.map((k) => k.thing), jobs.map((j) => j.thing));
      const again = makeKeys(jobs, 'ec-p256');
      assert.ok(again.every((d) => !d.fresh), 'every key is on disk');
      assert.deepEqual(again.map((d) => spkiOfCsr(d.csr)), keyed.map((d) => spkiOfCsr(d.csr)));
    } finally {
      await pool.close();
    }
  });
});
