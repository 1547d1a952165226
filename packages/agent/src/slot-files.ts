/**
 * Reading one slot directory (cert.pem, chain.pem, key.pem) and judging it:
 * absent, a key waiting for its certificate, complete, or corrupt. The
 * judgement is what recovery in slots.ts decides on, so it is strict: a
 * slot is complete only if cert.pem parses and certifies key.pem.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate } from '@certfleet/pki';
import { readIfExists } from './durable-fs.js';
import { AgentError } from './errors.js';
import { FileKeyStore, type KeyStore } from './keystore.js';

export type SlotName = 'current' | 'next';

/** A new identity for `next/`. */
export interface SlotMaterial {
  /** The leaf; further CERTIFICATE blocks after it are taken as its chain. */
  readonly certificatePem: string;
  /** Intermediates, the leaf's issuer first; may be empty. */
  readonly chainPem?: string;
  /** A server-generated key. Absent when the key was made in place by nextKey(). */
  readonly keyPem?: string;
}

export interface Identity {
  readonly slot: SlotName;
  readonly certificate: Certificate;
  readonly chain: readonly Certificate[];
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly key: KeyStore;
}

export type SlotRead =
  | { readonly state: 'absent' }
  | { readonly state: 'pending-key' }
  | { readonly state: 'corrupt'; readonly why: string }
  | { readonly state: 'complete'; readonly identity: Identity };

export type NextState = 'absent' | 'pending-key' | 'complete';

export const exists = async (p: string) => stat(p).then(() => true, () => false);

export async function readSlot(slot: SlotName, dir: string): Promise<SlotRead> {
  const certPem = await readIfExists(join(dir, 'cert.pem'));
  const keyPem = await readIfExists(join(dir, 'key.pem'));
  if (certPem === undefined) return keyPem === undefined ? { state: 'absent' } : { state: 'pending-key' };
  if (keyPem === undefined) return { state: 'corrupt', why: 'cert.pem without key.pem' };
  try {
    const [certificate, ...extra] = Certificate.allFromPem(certPem);
    const chainText = (await readIfExists(join(dir, 'chain.pem'))) ?? '';
    const chain = [...extra, ...(chainText.trim() === '' ? [] : Certificate.allFromPem(chainText))];
    const key = await FileKeyStore.load(join(dir, 'key.pem'));
    if (!key.matches(certificate!)) return { state: 'corrupt', why: 'cert.pem does not certify key.pem' };
    return {
      state: 'complete',
      identity: { slot, certificate: certificate!, chain, certificatePem: certificate!.toPem(), chainPem: chain.map((c) => c.toPem()).join(''), key },
    };
  } catch (err) {
    // A key others can read is a fixable policy problem, not damage: never let recovery delete it.
    if (err instanceof AgentError && err.code === 'key-exposed') throw err;
    return { state: 'corrupt', why: (err as Error).message };
  }
}
