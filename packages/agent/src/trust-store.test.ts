import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentError } from './errors.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from './testing/pki-fixtures.js';
import { TrustStore, type TrustBundleReceipt } from './trust-store.js';

let work: string;
let oldRoot: TestCa;
let newRoot: TestCa;
const fresh = () => mkdtemp(join(work, 'agent-'));

/** The server's TLS chain (leaf, intermediate) under a root. */
function serverChain(root: TestCa) {
  const issuing = makeIntermediate(root);
  return [issueLeaf(issuing, { profile: 'server', name: 'CN=localhost' }).cert, issuing.cert];
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'certfleet-trust-'));
  oldRoot = makeRoot('CN=Old Root');
  newRoot = makeRoot('CN=New Root');
});
after(() => rm(work, { recursive: true, force: true }));

describe('TrustStore', () => {
  it('adds roots as one file each, named by fingerprint, and finds them again after reopening', async () => {
    const dir = await fresh();
    const store = await TrustStore.open(dir);
    assert.deepEqual(await store.add(oldRoot.cert.toPem() + newRoot.cert.toPem()), [oldRoot.cert.fingerprint(), newRoot.cert.fingerprint()]);
    assert.deepEqual(await store.add(oldRoot.cert.toPem()), [], 'adding twice is a no-op');
    const files = await readdir(join(dir, 'trust'));
    assert.deepEqual(files.sort(), [`${oldRoot.cert.fingerprint()}.pem`, `${newRoot.cert.fingerprint()}.pem`].sort());
    assert.equal((await stat(join(dir, 'trust', files[0]!))).mode & 0o777, 0o644);
    const again = await TrustStore.open(dir);
    assert.deepEqual(again.list().map((c) => c.subject()), ['CN=New Root', 'CN=Old Root']);
    assert.equal(again.bundle().match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.equal(again.find(oldRoot.cert.fingerprint().slice(0, 12).toUpperCase())?.subject(), 'CN=Old Root');
  });

  it('refuses a leaf or garbage without changing anything', async () => {
    const dir = await fresh();
    const store = await TrustStore.open(dir);
    const leaf = issueLeaf(makeIntermediate(oldRoot)).certPem;
    await assert.rejects(store.add(newRoot.cert.toPem() + leaf), (e: AgentError) => e.code === 'not-a-ca');
    await assert.rejects(store.add('hello'), (e: AgentError) => e.code === 'bad-input');
    assert.equal(store.list().length, 0);
  });

  it('never removes a root still needed to reach the server, nor the last one', async () => {
    const store = await TrustStore.open(await fresh());
    await store.add(oldRoot.cert.toPem());
    const fp = oldRoot.cert.fingerprint();
    await assert.rejects(store.remove(fp, { stillNeeded: () => false }), (e: AgentError) => e.code === 'trust-root-needed' && /last/.test(e.message));
    await store.add(newRoot.cert.toPem());
    await assert.rejects(store.remove(fp, { stillNeeded: (r) => r.fingerprint() === fp }), (e: AgentError) => e.code === 'trust-root-needed');
    await assert.rejects(store.remove('00'.repeat(32), { stillNeeded: () => false }), (e: AgentError) => e.code === 'trust-root-unknown');
    await store.remove(fp, { stillNeeded: () => false });
    assert.deepEqual(store.list().map((c) => c.subject()), ['CN=New Root']);
  });

  it('neededToReach: the root the server chains to is needed, the other is not; an unverifiable chain keeps all', async () => {
    const store = await TrustStore.open(await fresh());
    await store.add(oldRoot.cert.toPem() + newRoot.cert.toPem());
    const policy = store.neededToReach(serverChain(oldRoot), new Date());
    assert.equal(policy.stillNeeded(oldRoot.cert), true);
    assert.equal(policy.stillNeeded(newRoot.cert), false);
    const stranger = store.neededToReach(serverChain(makeRoot('CN=Stranger')), new Date());
    assert.equal(stranger.stillNeeded(newRoot.cert), true);
  });

  it('applyBundle walks a trust-anchor rollover: add the new root, keep the old while needed, drop it after, ack each step', async () => {
    const store = await TrustStore.open(await fresh());
    await store.add(oldRoot.cert.toPem());
    const acks: TrustBundleReceipt[] = [];
    const ack = (r: TrustBundleReceipt) => void acks.push(r);
    const [o, n] = [oldRoot.cert.fingerprint(), newRoot.cert.fingerprint()];

    // 1. Both roots pushed while the server still chains to the old one.
    await store.applyBundle(oldRoot.cert.toPem() + newRoot.cert.toPem(), ack, store.neededToReach(serverChain(oldRoot), new Date()));
    // 2. Bundle without the old root, but the server still chains to it: retained.
    await store.applyBundle(newRoot.cert.toPem(), ack, store.neededToReach(serverChain(oldRoot), new Date()));
    // 3. The server moved to the new root: the old one goes.
    await store.applyBundle(newRoot.cert.toPem(), ack, store.neededToReach(serverChain(newRoot), new Date()));
    // 4. The same bundle again: nothing to do, acknowledged anyway.
    await store.applyBundle(newRoot.cert.toPem(), ack);

    assert.deepEqual(acks, [
      { roots: [o, n].sort(), added: [n], removed: [], retained: [] },
      { roots: [o, n].sort(), added: [], removed: [], retained: [o] },
      { roots: [n], added: [], removed: [o], retained: [] },
      { roots: [n], added: [], removed: [], retained: [] },
    ]);
  });

  it('applyBundle without a policy only adds; a bad bundle changes nothing and is not acknowledged', async () => {
    const store = await TrustStore.open(await fresh());
    await store.add(oldRoot.cert.toPem());
    const r = await store.applyBundle(newRoot.cert.toPem(), () => {});
    assert.deepEqual(r.retained, [oldRoot.cert.fingerprint()]);
    let acked = false;
    await assert.rejects(store.applyBundle('-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n', () => void (acked = true)), (e: AgentError) => e.code === 'bad-input');
    assert.equal(acked, false);
    assert.equal(store.list().length, 2);
  });

  it('reports stray files without failing to open', async () => {
    const dir = await fresh();
    const store = await TrustStore.open(dir);
    await store.add(oldRoot.cert.toPem());
    await writeFile(join(dir, 'trust', 'notes.pem'), 'not a certificate');
    const again = await TrustStore.open(dir);
    assert.equal(again.list().length, 1);
    assert.equal(again.problems.length, 1);
  });
});
