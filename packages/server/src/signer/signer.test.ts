import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type {
  Certificate} from '@certfleet/pki';
import {
  buildBasicOcspResponse,
  certIdFor,
  issuerInfoFromCertificate,
  parseCrl,
  prepareCrl,
  verifyCrl,
} from '@certfleet/pki';
import { testNode, type TestNode } from '../testing/services.js';

let node: TestNode;
let issuing: Certificate;
before(async () => {
  node = await testNode();
  issuing = (await node.s.authorities.chain(node.issuingId))[0]!;
});
after(() => node.close());

describe('signer: CRLs and OCSP responses', () => {
  it('signs a CRL prepared by pki, and nothing else', async () => {
    const now = new Date();
    const p = prepareCrl({
      issuer: issuerInfoFromCertificate(node.issuingId, issuing),
      crlNumber: 1n,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 86_400_000),
      entries: [{ serial: '0a1b', revokedAt: now, reason: 1 }],
    });
    const der = await node.s.signer.signCrl(p);
    assert.equal(verifyCrl(der, issuing.publicKey), true);
    assert.equal(parseCrl(der).count, 1);
    await assert.rejects(node.s.signer.signCrl({ ...p }), { code: 'invalid-state' });
  });

  it('signs OCSP responses with an in-memory responder key', async () => {
    const pub = node.s.signer.generateResponderKey('responder-1');
    const now = new Date();
    const p = buildBasicOcspResponse({
      signerId: 'responder-1',
      responderId: { keyHash: Buffer.alloc(20, 1) },
      producedAt: now,
      responses: [{ certId: certIdFor(issuing, '0a1b'), status: { good: true }, thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000) }],
    });
    const der = await node.s.signer.signOcsp(p);
    assert.ok(der.length > 100);
    assert.equal(pub.algorithm, 'ec-p256');
    node.s.signer.dropResponderKey('responder-1');
    await assert.rejects(node.s.signer.signOcsp(p), { code: 'not-found' }, 'a dropped responder key is gone (and responder ids are not CA ids)');
  });
});
