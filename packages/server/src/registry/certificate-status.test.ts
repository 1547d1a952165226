import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CertificateStatus } from '../store/index.js';
import { canTransition, checkTransition, type StatusActor } from './certificate-status.js';

const ALL: CertificateStatus[] = ['active', 'inactive', 'revoked', 'pending-activation', 'pending-transfer'];

describe('certificate status transitions', () => {
  const allowed: Array<[CertificateStatus, CertificateStatus, StatusActor]> = [
    ['active', 'inactive', 'operator'],
    ['inactive', 'active', 'operator'],
    ['active', 'revoked', 'operator'],
    ['inactive', 'revoked', 'operator'],
    ['pending-activation', 'active', 'operator'],
    ['pending-activation', 'revoked', 'operator'],
    ['pending-transfer', 'revoked', 'operator'],
    ['active', 'pending-transfer', 'system'],
    ['pending-transfer', 'active', 'system'],
  ];
  for (const [from, to, actor] of allowed) it(`${actor}: ${from} → ${to} allowed`, () => assert.doesNotThrow(() => checkTransition(from, to, actor)));

  for (const to of ALL) {
    for (const actor of ['operator', 'system'] as const) {
      it(`${actor}: revoked → ${to} refused (revoked is final)`, () => {
        assert.equal(canTransition('revoked', to, actor), false);
        assert.throws(() => checkTransition('revoked', to, actor), { code: 'invalid-state' });
      });
    }
  }
  for (const from of ALL) {
    for (const to of ['pending-activation', 'pending-transfer'] as const) {
      it(`operator: ${from} → ${to} refused (system only)`, () => assert.throws(() => checkTransition(from, to, 'operator'), { code: 'invalid-state' }));
    }
  }
  it('a change to the same status is refused', () => assert.throws(() => checkTransition('active', 'active', 'operator'), /already active/));
});
