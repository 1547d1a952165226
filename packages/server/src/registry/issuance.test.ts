import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, CertificateTemplate, generateKeyPair, importSpki, parseName, prepareIssuance, PROFILES, issuerInfoFromCertificate, newSerial } from '@certfleet/pki';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { KeySealer } from '../signer/sealer.js';
import { testNode, type TestNode } from '../testing/services.js';

function csr(cn: string): string {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  return buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey });
}

const pgSchema = `certfleet_issuance_${randomBytes(6).toString('hex')}`;
const dialects = [
  { name: 'SQLite', open: () => testNode(), skip: undefined as string | undefined, cleanup: async () => {} },
  { name: 'PostgreSQL', open: () => testNode({ database: PG_URL, schema: pgSchema }), skip: (await postgresUnreachable()).skip, cleanup: () => dropTestSchema(pgSchema) },
];

for (const d of dialects) {
  describe(`issuance on ${d.name}`, { skip: d.skip ?? false }, () => {
    let node: TestNode;
    before(async () => {
      node = await d.open();
    });
    after(async () => {
      await node?.close();
      await d.cleanup();
    });

    it('stores every certificate before returning it, with distinct 128-bit serials', async () => {
      await node.s.store.createThing({ name: 'meter-1' });
      const issued = await Promise.all(Array.from({ length: 40 }, (_, i) => node.s.issuance.fromCsr({ csr: csr(`m${i}`), ...(i === 0 ? { thing: 'meter-1' } : {}) })));
      const serials = new Set(issued.map((i) => i.record.serial));
      assert.equal(serials.size, 40);
      for (const i of issued) {
        assert.match(i.record.serial, /^[0-9a-f]{31,32}$/);
        const stored = await node.s.store.getCertificate(i.record.id);
        assert.ok(stored?.der.equals(Certificate.fromPem(i.certificatePem).der));
      }
      assert.equal((await node.s.store.getCertificate(issued[0]!.record.id))?.thingName, 'meter-1');
    });

    it('a deactivated CA issues nothing', async () => {
      const ca = await node.s.authorities.createIntermediate({ name: 'to-disable', parentId: node.rootId });
      await node.s.issuance.fromCsr({ csr: csr('ok'), issuer: 'to-disable' });
      await node.s.store.setCaStatus(ca.id, 'inactive');
      await assert.rejects(node.s.issuance.fromCsr({ csr: csr('no'), issuer: 'to-disable' }), { code: 'invalid-state' });
    });

    it('the signer refuses what pki did not prepare, and a serial twice', async () => {
      const issuing = (await node.s.authorities.chain(node.issuingId))[0]!;
      const template = new CertificateTemplate(issuerInfoFromCertificate(node.issuingId, issuing), PROFILES.device);
      const { publicKey } = generateKeyPair('ec-p256');
      const req = { subject: parseName('CN=dup'), publicKey: importSpki(publicKey.export({ format: 'der', type: 'spki' })), now: new Date(), serial: newSerial() };
      const p = prepareIssuance(template, req);
      await assert.rejects(node.s.signer.issue({ ...p }), { code: 'invalid-state' }, 'a copy is not a prepared issuance');
      await node.s.signer.issue(p);
      await assert.rejects(node.s.signer.issue(prepareIssuance(template, req)), { code: 'conflict' }, 'the journal refuses a reused serial');
    });

    it('CA keys are sealed at rest and only the right key-encryption key opens them', async () => {
      const key = await node.s.store.getCaKey(node.issuingId);
      assert.ok(key);
      assert.equal(key.sealed.subarray(0, 4).toString(), 'CFK1');
      const stranger = new KeySealer({ kind: 'keyfile', key: randomBytes(32) });
      assert.throws(() => stranger.unseal(node.issuingId, key.sealed), { code: 'unavailable' });
    });
  });
}
