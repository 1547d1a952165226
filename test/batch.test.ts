/**
 * certfleet batch create against a real server (POST /api/v1/batches/issue
 * in chunks): N identities with keys owner-only, a manifest, chains that
 * openssl verifies; a batch of 1,000 killed with SIGKILL mid-run resumes
 * without duplicate or missing devices; a chunk answered by the server but
 * never journalled gets its certificates back on the rerun, not new ones.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BIN, certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;

before(async () => {
  data = tempDir();
  const init = await certfleet(['init', '--data', data]);
  assert.equal(init.code, 0, init.stderr);
  server = await serve(data);
});

after(async () => {
  await server?.stop();
  rmSync(data, { recursive: true, force: true });
});

interface Manifest {
  count: number;
  devices: { thing: string; certificateId: string; serial: string; certPath: string; keyPath: string; chainPath: string; caPath: string }[];
}

const manifest = (out: string) => JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
const journalLines = (out: string) => {
  const f = join(out, '.batch-journal.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0;
};

async function certsByThing(prefix: string): Promise<Map<string, number>> {
  const r = await certfleet(['cert', 'list', '--status', 'active', '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  const counts = new Map<string, number>();
  for (const c of (JSON.parse(r.stdout) as { items: { thing: string | null }[] }).items) {
    if (c.thing?.startsWith(prefix)) counts.set(c.thing, (counts.get(c.thing) ?? 0) + 1);
  }
  return counts;
}

describe('certfleet batch create', () => {
  it('makes 30 identities: key.pem 0600, manifest of 30, every chain verifies', async () => {
    const out = join(data, 'batch-a');
    const r = await certfleet(['batch', 'create', '--count', '30', '--out', out, '--prefix', 'a', '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { total: number; issued: number; failed: unknown[] };
    assert.equal(summary.total, 30);
    assert.equal(summary.issued, 30);
    assert.deepEqual(summary.failed, []);
    const dirs = readdirSync(out, { withFileTypes: true }).filter((d) => d.isDirectory());
    assert.equal(dirs.length, 30);
    const m = manifest(out);
    assert.equal(m.devices.length, 30);
    assert.equal(new Set(m.devices.map((d) => d.certificateId)).size, 30);
    assert.deepEqual(m.devices.map((d) => d.thing), [...m.devices.map((d) => d.thing)].sort());
    const csv = readFileSync(join(out, 'manifest.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'thing,certificate_id,serial,fingerprint_sha256,cert_path,key_path,chain_path');
    assert.equal(csv.length, 31);
    for (const d of m.devices) {
      assert.equal(statSync(d.keyPath).mode & 0o077, 0, `${d.keyPath} is owner-only`);
      const v = spawnSync('openssl', ['verify', '-CAfile', d.caPath, '-untrusted', d.chainPath, d.certPath], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
      // The certificate is for the key written next to it.
      const certKey = spawnSync('openssl', ['x509', '-in', d.certPath, '-noout', '-pubkey'], { encoding: 'utf8' }).stdout;
      const devKey = spawnSync('openssl', ['pkey', '-in', d.keyPath, '-pubout'], { encoding: 'utf8' }).stdout;
      assert.equal(certKey, devKey);
    }
    const counts = await certsByThing('a-');
    assert.equal(counts.size, 30);
    assert.ok([...counts.values()].every((n) => n === 1));

    // Run again: everything is in the journal, nothing is signed twice.
    const again = await certfleet(['batch', 'create', '--count', '30', '--out', out, '--prefix', 'a', '--data', data, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const s2 = JSON.parse(again.stdout) as { skipped: number; issued: number };
    assert.equal(s2.skipped, 30);
    assert.equal(s2.issued, 0);
  });

  it('resumes a batch of 1,000 after SIGKILL without duplicates or gaps', async () => {
    const out = join(data, 'batch-k');
    const args = [BIN, 'batch', 'create', '--count', '1000', '--out', out, '--prefix', 'k', '--concurrency', '1', '--chunk-size', '50', '--data', data];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.once('exit', r));
    const began = Date.now();
    // Kill as soon as some chunks are journaled, mid-flight (one chunk of 50 at a time, so the batch is far from done).
    while (journalLines(out) < 100 && Date.now() - began < 30_000 && child.exitCode === null) await sleep(2);
    child.kill('SIGKILL');
    await exited;
    const before = journalLines(out);
    console.log(`killed with ${before} of 1000 journaled`);
    assert.ok(before < 1000, `the kill came after the batch finished (${before} journaled); nothing was tested`);

    const r = await certfleet(['batch', 'create', '--count', '1000', '--out', out, '--prefix', 'k', '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { skipped: number; issued: number; reused: number };
    assert.equal(s.skipped + s.issued + s.reused, 1000);
    assert.equal(s.skipped, before);
    console.log(`resume: ${JSON.stringify(s)}`);

    const m = manifest(out);
    assert.equal(m.devices.length, 1000);
    const things = m.devices.map((d) => d.thing);
    assert.equal(new Set(things).size, 1000);
    assert.equal(things[0], 'k-0001');
    assert.equal(things[999], 'k-1000');
    assert.equal(new Set(m.devices.map((d) => d.certificateId)).size, 1000);
    const counts = await certsByThing('k-');
    assert.equal(counts.size, 1000);
    for (const [thing, n] of counts) assert.equal(n, 1, `${thing} has ${n} active certificates`);
    // Every device's certificate is for the key next to it (a sample: openssl per device is slow).
    for (const d of m.devices.filter((_, i) => i % 50 === 0 || i === before)) {
      const certKey = spawnSync('openssl', ['x509', '-in', d.certPath, '-noout', '-pubkey'], { encoding: 'utf8' }).stdout;
      const devKey = spawnSync('openssl', ['pkey', '-in', d.keyPath, '-pubout'], { encoding: 'utf8' }).stdout;
      assert.equal(certKey, devKey, d.thing);
    }
    for (const d of m.devices.filter((_, i) => i % 25 === 0)) {
      const v = spawnSync('openssl', ['verify', '-CAfile', d.caPath, '-untrusted', d.chainPath, d.certPath], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
  });

  it('a device signed but not journaled (killed in between) is found again by its key, not signed twice', async () => {
    const out = join(data, 'batch-a');
    const file = join(out, '.batch-journal.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    // Drop the last 5 entries and leave a torn line, as a kill mid-append would.
    writeFileSync(file, `${lines.slice(0, 25).join('\n')}\n${lines[25]!.slice(0, 20)}`);
    const r = await certfleet(['batch', 'create', '--count', '30', '--out', out, '--prefix', 'a', '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { skipped: number; issued: number; reused: number };
    assert.deepEqual([s.skipped, s.reused, s.issued], [25, 5, 0]);
    assert.equal(manifest(out).devices.length, 30);
    const counts = await certsByThing('a-');
    assert.ok([...counts.values()].every((n) => n === 1));
    for (const d of manifest(out).devices.slice(25)) {
      const v = spawnSync('openssl', ['verify', '-CAfile', d.caPath, '-untrusted', d.chainPath, d.certPath], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
  });

  it('a whole chunk answered by the server but never journaled (killed in between) gets the same certificates back on the rerun', async () => {
    const out = join(data, 'batch-c');
    const args = ['batch', 'create', '--count', '200', '--chunk-size', '100', '--out', out, '--prefix', 'c', '--data', data, '--json'];
    const first = await certfleet(args);
    assert.equal(first.code, 0, first.stderr);
    const original = new Map(manifest(out).devices.map((d) => [d.thing, d.certificateId]));
    const file = join(out, '.batch-journal.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    // The state a kill leaves after the second chunk's answer and before its journal write: keys and files on disk, no journal lines.
    const kept = lines.filter((l) => (JSON.parse(l) as { thing: string }).thing <= 'c-0100');
    assert.equal(kept.length, 100);
    writeFileSync(file, `${kept.join('\n')}\n`);
    rmSync(join(out, 'manifest.json'));
    const r = await certfleet(args);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { skipped: number; issued: number; reused: number };
    assert.deepEqual([s.skipped, s.reused, s.issued], [100, 100, 0]);
    const m = manifest(out);
    assert.equal(m.devices.length, 200);
    for (const d of m.devices) assert.equal(d.certificateId, original.get(d.thing), `${d.thing} kept its certificate`);
    const counts = await certsByThing('c-');
    assert.equal(counts.size, 200);
    assert.ok([...counts.values()].every((n) => n === 1), 'no second certificate for the same key');
  });

  it('--csr-dir signs the factory CSRs, thing named after the file, no key written', async () => {
    const csrs = join(data, 'factory');
    mkdirSync(csrs);
    for (const n of ['f-2', 'f-1', 'f-3']) {
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(data, `${n}.key`), '-out', join(csrs, `${n}.csr`), '-subj', `/CN=${n}`]);
    }
    const out = join(data, 'batch-csr');
    const r = await certfleet(['batch', 'create', '--csr-dir', csrs, '--out', out, '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = manifest(out);
    assert.deepEqual(m.devices.map((d) => d.thing), ['f-1', 'f-2', 'f-3']);
    for (const d of m.devices) {
      assert.equal(d.keyPath, null);
      assert.equal(existsSync(join(out, d.thing, 'key.pem')), false);
      const certKey = spawnSync('openssl', ['x509', '-in', d.certPath, '-noout', '-pubkey'], { encoding: 'utf8' }).stdout;
      const devKey = spawnSync('openssl', ['pkey', '-in', join(data, `${d.thing}.key`), '-pubout'], { encoding: 'utf8' }).stdout;
      assert.equal(certKey, devKey);
    }
  });
});
