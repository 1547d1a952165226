/**
 * Certificate slots in memory for the simulator's virtual devices: the same
 * current/next protocol as CertificateSlots (renewal writes next, promotes
 * on confirm, discards on failure) without a directory per device.
 */
import { Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import type { KeyStore } from '../keystore.js';
import type { RenewalSlots } from '../rotation/renew-mqtt.js';
import type { Identity, NextState, SlotMaterial } from '../slots.js';
import { MemoryKeyStore } from './memory-key.js';

export class MemorySlots implements RenewalSlots {
  private cur: Identity | undefined;
  private nextKeyStore: KeyStore | undefined;
  private nextIdentity: Identity | undefined;

  constructor(current?: { certificatePem: string; key: KeyStore }) {
    if (current) this.cur = identity('current', current.certificatePem, '', current.key);
  }

  async current(): Promise<Identity | undefined> {
    return this.cur;
  }

  async next(): Promise<Identity | undefined> {
    return this.nextIdentity;
  }

  async nextState(): Promise<NextState> {
    return this.nextIdentity ? 'complete' : this.nextKeyStore ? 'pending-key' : 'absent';
  }

  async nextKey(): Promise<KeyStore> {
    this.nextKeyStore ??= MemoryKeyStore.generate();
    return this.nextKeyStore;
  }

  async writeNext(m: SlotMaterial): Promise<Identity> {
    if (!this.nextKeyStore) throw new AgentError('key-missing', 'no key for the next slot');
    const next = identity('next', m.certificatePem, m.chainPem ?? '', this.nextKeyStore);
    if (!this.nextKeyStore.matches(next.certificate)) throw new AgentError('key-mismatch', 'the certificate does not certify the next key');
    this.nextIdentity = next;
    return next;
  }

  async promote(): Promise<Identity> {
    if (!this.nextIdentity) throw new AgentError('slot-empty', 'next slot holds no complete identity to promote');
    this.cur = { ...this.nextIdentity, slot: 'current' };
    this.nextIdentity = undefined;
    this.nextKeyStore = undefined;
    return this.cur;
  }

  async discardNext(): Promise<void> {
    this.nextIdentity = undefined;
    this.nextKeyStore = undefined;
  }
}

function identity(slot: 'current' | 'next', certificatePem: string, chainPem: string, key: KeyStore): Identity {
  const [certificate, ...extra] = Certificate.allFromPem(certificatePem);
  const chain = [...extra, ...(chainPem.trim() ? Certificate.allFromPem(chainPem) : [])];
  return { slot, certificate: certificate!, chain, certificatePem: certificate!.toPem(), chainPem: chain.map((c) => c.toPem()).join(''), key };
}
