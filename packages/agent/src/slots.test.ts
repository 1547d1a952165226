import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile, mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AgentError } from './errors.js';
import { CertificateSlots, SLOT_CRASH_STEPS, type SlotMaterial } from './slots.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from './testing/pki-fixtures.js';

const CHILD = fileURLToPath(new URL('./testing/slot-writer.ts', import.meta.url));

let work: string;
let issuing: TestCa;
let A: SlotMaterial & { fingerprint: string; dir: string };
let B: SlotMaterial & { fingerprint: string; dir: string };

async function identity(name: string) {
  const leaf = issueLeaf(issuing, { name: `CN=${name}` });
  const dir = join(work, `identity-${name}`);
  await mkdir(dir);
  const m = { certificatePem: leaf.certPem, chainPem: issuing.cert.toPem(), keyPem: leaf.keyPem };
  await writeFile(join(dir, 'cert.pem'), m.certificatePem);
  await writeFile(join(dir, 'chain.pem'), m.chainPem);
  await writeFile(join(dir, 'key.pem'), m.keyPem);
  return { ...m, fingerprint: leaf.cert.fingerprint(), dir };
}

async function freshSlots(withCurrent: boolean): Promise<{ dir: string; slots: CertificateSlots }> {
  const dir = await mkdtemp(join(work, 'slots-'));
  const slots = await CertificateSlots.open(dir);
  if (withCurrent) {
    await slots.writeNext(A);
    await slots.promote();
  }
  return { dir, slots };
}

/** Runs the child; resolves with how it ended. `killAfterReadyMs` kills it that long after it prints "ready". */
function runChild(args: string[], env: Record<string, string>, killAfterReadyMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (killAfterReadyMs !== undefined && d.toString().includes('ready')) setTimeout(() => child.kill('SIGKILL'), killAfterReadyMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** After recovery: the expected identity (or none) is current, intact, its key matching, with no leftovers. */
async function assertRecovered(dir: string, expected: string | undefined, step: string): Promise<CertificateSlots> {
  const slots = await CertificateSlots.open(dir);
  const cur = await slots.current();
  assert.equal(cur?.certificate.fingerprint(), expected, `after a crash at ${step}`);
  if (cur) {
    assert.ok(cur.key.matches(cur.certificate), `${step}: key matches`);
    assert.equal(cur.chain.length, 1, `${step}: chain intact`);
    assert.equal((await stat(join(dir, 'current', 'key.pem'))).mode & 0o777, 0o600, `${step}: key stays 0600`);
  }
  const names = await readdir(dir);
  assert.ok(!names.includes('current.old'), `${step}: no current.old left (${names.join(', ')})`);
  assert.ok(!names.some((n) => n.includes('.tmp-')), `${step}: no temporaries left`);
  const again = await slots.recover();
  assert.deepEqual([again.action, again.removed], ['none', []], `${step}: recovery is idempotent`);
  return slots;
}

/** Runs `fn` over `items`, `width` at a time: each child spends most of its life starting tsx. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'certfleet-slots-'));
  issuing = makeIntermediate(makeRoot());
  A = await identity('identity-a');
  B = await identity('identity-b');
});
after(() => rm(work, { recursive: true, force: true }));

describe('CertificateSlots', () => {
  it('writes next, promotes it, and keeps the key 0600', async () => {
    const { dir, slots } = await freshSlots(false);
    assert.equal(await slots.current(), undefined);
    await slots.writeNext(A);
    assert.equal(await slots.nextState(), 'complete');
    const promoted = await slots.promote();
    assert.equal(promoted.certificate.fingerprint(), A.fingerprint);
    assert.equal(await slots.nextState(), 'absent');
    assert.equal((await stat(join(dir, 'current', 'key.pem'))).mode & 0o777, 0o600);
    assert.deepEqual(await slots.entries(), ['current']);
  });

  it('refuses a certificate that does not certify the key, and leaves next untouched', async () => {
    const { slots } = await freshSlots(true);
    await assert.rejects(slots.writeNext({ ...B, keyPem: A.keyPem }), (e: AgentError) => e.code === 'key-mismatch');
    assert.equal(await slots.nextState(), 'absent');
    await assert.rejects(slots.promote(), (e: AgentError) => e.code === 'slot-empty');
  });

  it('nextKey makes the key in place once and reuses it; the certificate for it completes the slot', async () => {
    const { slots } = await freshSlots(true);
    const k1 = await slots.nextKey();
    const k2 = await slots.nextKey();
    assert.ok(k1.publicKey().equals(k2.publicKey()));
    assert.equal(await slots.nextState(), 'pending-key');
    const leaf = issueLeaf(issuing, { name: 'CN=dev-rekeyed', publicKey: k1.publicKey() });
    await slots.writeNext({ certificatePem: leaf.certPem, chainPem: issuing.cert.toPem() });
    const cur = await slots.promote();
    assert.equal(cur.certificate.fingerprint(), leaf.cert.fingerprint());
  });

  it('discardNext drops a tried identity; current stays', async () => {
    const { slots } = await freshSlots(true);
    await slots.writeNext(B);
    await slots.discardNext();
    assert.equal(await slots.nextState(), 'absent');
    assert.equal((await slots.current())?.certificate.fingerprint(), A.fingerprint);
  });

  it('recovery puts aside a damaged current and rolls back to current.old', async () => {
    const { dir, slots } = await freshSlots(true);
    await mkdir(join(dir, 'current.old'));
    const old = { 'cert.pem': A.certificatePem, 'chain.pem': A.chainPem ?? '', 'key.pem': A.keyPem ?? '' };
    for (const [f, text] of Object.entries(old)) await writeFile(join(dir, 'current.old', f), text, { mode: 0o600 });
    await writeFile(join(dir, 'current', 'cert.pem'), B.certificatePem); // cert no longer matches key
    const report = await slots.recover();
    assert.equal(report.action, 'rolled-back');
    assert.equal(report.current, A.fingerprint);
    assert.ok((await readdir(dir)).includes('current.damaged'));
    assert.equal((await slots.current())?.certificate.fingerprint(), A.fingerprint);
  });

  it('recovery refuses to touch a key that others can read', async () => {
    const { dir, slots } = await freshSlots(true);
    const { chmod } = await import('node:fs/promises');
    await chmod(join(dir, 'current', 'key.pem'), 0o644);
    await assert.rejects(slots.recover(), (e: AgentError) => e.code === 'key-exposed');
    assert.ok((await readdir(join(dir, 'current'))).includes('key.pem'));
  });
});

describe('power cut at every step of writeNext + promote (child killed with SIGKILL)', () => {
  const firstPromoteRename = SLOT_CRASH_STEPS.indexOf('promote:current-renamed');

  it('replacing identity A by B: recovery yields A before the promote renames, B after', async (t) => {
    const results: string[] = [];
    await pool(SLOT_CRASH_STEPS, 4, async (step, i) => {
      const { dir } = await freshSlots(true);
      const r = await runChild(['once', dir, B.dir], { CERTFLEET_AGENT_CRASH_AT: step });
      assert.equal(r.signal, 'SIGKILL', `step ${step} was never reached (exit ${r.code}) ${r.stderr}`);
      const expected = i < firstPromoteRename ? A : B;
      const slots = await assertRecovered(dir, expected.fingerprint, step);
      // Cut before the promote decided: B waits, complete, in next/ (or is partly written and not usable).
      if (step === 'write-next:done' || step === 'promote:start') assert.equal(await slots.nextState(), 'complete');
      results[i] = `${String(i).padStart(2)} ${step.padEnd(32)} → ${expected === A ? 'A (old)' : 'B (new)'}, recovery: ${slots.recovery.action}${slots.recovery.removed.length ? ` (removed ${slots.recovery.removed.length})` : ''}`;
    });
    for (const line of results) t.diagnostic(line);
  });

  it('first identity (no current yet): recovery yields nothing until cert.pem is published, B after', async () => {
    const published = SLOT_CRASH_STEPS.indexOf('next/cert.pem:published');
    // Steps that touch current/ or current.old/ do not happen on a first promote.
    const steps = SLOT_CRASH_STEPS.filter((s) => !/current-renamed|old-/.test(s));
    await pool(steps, 4, async (step) => {
      const { dir } = await freshSlots(false);
      const r = await runChild(['once', dir, B.dir], { CERTFLEET_AGENT_CRASH_AT: step });
      assert.equal(r.signal, 'SIGKILL', `step ${step} was never reached (exit ${r.code}) ${r.stderr}`);
      await assertRecovered(dir, SLOT_CRASH_STEPS.indexOf(step) >= published ? B.fingerprint : undefined, step);
    });
  });

  it('killed after a random delay, 30 times: always A or B, intact', async (t) => {
    const seen = { A: 0, B: 0 };
    const actions = new Map<string, number>();
    await pool(Array.from({ length: 30 }, (_, i) => i), 4, async (i) => {
      const { dir } = await freshSlots(true);
      // One writeNext + promote takes about 40 ms here: 0–400 ms lands anywhere in the first ten.
      const delay = randomInt(0, 400);
      const r = await runChild(['loop', dir, B.dir, A.dir], {}, delay);
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      const slots = await CertificateSlots.open(dir);
      const action = `${slots.recovery.action}${slots.recovery.removed.length ? '+cleaned' : ''}`;
      actions.set(action, (actions.get(action) ?? 0) + 1);
      const fp = (await slots.current())?.certificate.fingerprint();
      assert.ok(fp === A.fingerprint || fp === B.fingerprint, `run ${i} (killed ${delay} ms in): current is neither A nor B`);
      await assertRecovered(dir, fp, `random run ${i}`);
      seen[fp === A.fingerprint ? 'A' : 'B']++;
    });
    t.diagnostic(`recovered identity A ${seen.A} times, B ${seen.B} times; recovery actions ${JSON.stringify(Object.fromEntries(actions))}`);
  });
});
