import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Certificate, OID, validateChain } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import { testNode, type TestNode } from '../testing/services.js';
import { StillDependedOn } from './issuer-rotation.js';
import { RootStillNeeded } from './trust-bundle.js';

let node: TestNode;
const admin = { id: 'test' };

before(async () => {
  node = await testNode();
});
after(() => node.close());

const code = (c: string) => (err: unknown) => err instanceof CertfleetError && err.code === c;

describe('issuer rotation', () => {
  it('cross-signs a new root so its leaves validate from the old root or the new one', async () => {
    const root2 = await node.s.authorities.createRoot({ name: 'root-2' }, admin);
    const issuing2 = await node.s.authorities.createIntermediate({ name: 'issuing-2', parentId: root2.id }, admin);
    await assert.rejects(node.s.issuerRotation.crossSign(admin, root2.id, root2.id), code('bad-request'));
    await assert.rejects(node.s.issuerRotation.crossSign(admin, root2.id, node.issuingId), code('bad-request'), 'only a root cross-signs');
    const x = await node.s.issuerRotation.crossSign(admin, root2.id, node.rootId);
    assert.equal(x.signedBy, node.rootId);
    const leaf = await node.s.issuance.withGeneratedKey({ commonName: 'rotated', issuer: issuing2.id });
    const chain = Certificate.allFromPem(leaf.chainPem);
    assert.equal(chain.length, 3);
    const leafCert = Certificate.fromPem(leaf.certificatePem);
    const oldRoot = (await node.s.authorities.issuer(node.rootId)).cert;
    const newRoot = (await node.s.authorities.issuer(root2.id)).cert;
    for (const roots of [[oldRoot], [newRoot]]) {
      validateChain(leafCert, { intermediates: chain, roots, at: new Date(), purpose: OID.clientAuth });
    }
    assert.equal(leaf.rootPem, newRoot.toPem(), 'ca.pem stays the issuer\'s own root');
    // A root's own chain is the root alone: the trust bundle serves it as it is.
    assert.equal((await node.s.authorities.chain(root2.id)).length, 1);
  });

  it('counts dependents through the CA tree and refuses retirement unless forced', async () => {
    const root2 = await node.s.authorities.get('root-2');
    const d = await node.s.issuerRotation.dependents(root2.id, { limit: 10 });
    assert.equal(d.count, 1);
    assert.equal(d.issuers.length, 2);
    await assert.rejects(node.s.issuerRotation.retire(admin, 'issuing-2'), (err) => err instanceof StillDependedOn && err.dependents === 1);
    const r = await node.s.issuerRotation.retire(admin, 'issuing-2', true);
    assert.equal(r.ca.status, 'inactive');
  });
});

describe('trust bundle', () => {
  it('starts from the init root, adds a root, and removes the old one only when every thing confirmed a successor', async () => {
    assert.deepEqual(await node.s.trustBundles.current(), { version: 0, roots: [node.rootId] });
    await node.s.store.createThing({ name: 'tb-1' });
    await node.s.issuance.withGeneratedKey({ thing: 'tb-1' });
    const root3 = await node.s.authorities.createRoot({ name: 'root-3' }, admin);
    await assert.rejects(node.s.trustBundles.addRoot(admin, node.issuingId), code('bad-request'));
    const v1 = await node.s.trustBundles.addRoot(admin, root3.id);
    assert.deepEqual(v1, { version: 1, roots: [node.rootId, root3.id] });
    await assert.rejects(node.s.trustBundles.addRoot(admin, root3.id), code('conflict'));
    await assert.rejects(node.s.trustBundles.acknowledge('tb-1', 2), code('bad-request'));
    await assert.rejects(node.s.trustBundles.removeRoot(admin, node.rootId), (err) => err instanceof RootStillNeeded && err.pending === 1);
    await node.s.trustBundles.acknowledge('tb-1', 1);
    const st = await node.s.trustBundles.status();
    assert.deepEqual([st.acknowledged, st.pending, st.rootPems.length], [1, 0, 2]);
    const v2 = await node.s.trustBundles.removeRoot(admin, node.rootId);
    assert.deepEqual([v2.version, v2.roots], [2, [root3.id]]);
    await assert.rejects(node.s.trustBundles.removeRoot(admin, root3.id), code('invalid-state'), 'never the last root');
  });
});
