/**
 * Two certificate slots, the way Azure Sphere keeps device certificates: the
 * identity in use (`current/`) and the one being installed (`next/`), each a
 * directory of cert.pem, chain.pem and key.pem. A new identity is written to
 * `next/`, tried, then promoted by renaming directories, so a power cut at
 * any instant leaves either the old identity or the new one, never a mix.
 *
 * Invariants that recovery relies on:
 * - cert.pem is a slot's commit record: written last, removed first. A slot
 *   is complete only if cert.pem parses and certifies key.pem.
 * - `current/` only ever appears by renaming a complete directory.
 * - `current.old/` exists only inside a promote, so finding it proves a
 *   promote was decided; recovery then finishes it (rolls forward) if
 *   `next/` is still complete, or puts the old identity back.
 *
 * One writer at a time: the agent process. The CLI's status opens without
 * recovery and only reads.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate, type KeyAlgorithm } from '@certfleet/pki';
import { crashPoint } from './crash-points.js';
import { fsyncDir, readIfExists, sweepTemporaries, writeFileDurable } from './durable-fs.js';
import { AgentError } from './errors.js';
import { FileKeyStore, keyMatchesCertificate, parsePrivateKeyPem, type KeyStore } from './keystore.js';
import { exists, readSlot, type Identity, type NextState, type SlotMaterial } from './slot-files.js';

export type { Identity, NextState, SlotMaterial, SlotName } from './slot-files.js';

export interface RecoveryReport {
  /** What recovery had to do to the slots ('none': they were clean). */
  readonly action: 'none' | 'finished-promote' | 'rolled-forward' | 'rolled-back';
  /** Leftovers removed or set aside: temporaries, a corrupt next/, a damaged current/, a superseded current.old/. */
  readonly removed: readonly string[];
  /** Fingerprint of the identity now in current/, undefined if the device has none. */
  readonly current: string | undefined;
}

/** Every crash point a writeNext + promote passes, in order (the power-cut test runs each). */
export const SLOT_CRASH_STEPS = [
  'write-next:cleared',
  ...(['key', 'chain', 'cert'] as const).flatMap((f) => [`next/${f}.pem:temp-written`, `next/${f}.pem:published`] as const),
  'write-next:done',
  'promote:start',
  'promote:current-renamed',
  'promote:current-renamed-synced',
  'promote:next-renamed',
  'promote:next-renamed-synced',
  'promote:old-cert-removed',
  'promote:old-removed',
  'promote:done',
] as const;

export class CertificateSlots {
  private readonly paths: { current: string; next: string; old: string };
  /** What the recovery run by open() found (for logs and `certfleet-agent status`). */
  recovery: RecoveryReport = { action: 'none', removed: [], current: undefined };

  private constructor(readonly dir: string) {
    this.paths = { current: join(dir, 'current'), next: join(dir, 'next'), old: join(dir, 'current.old') };
  }

  /**
   * Opens (creating) the slot directory and recovers from whatever a crash
   * left. `recover: false` opens read-only for an observer (the CLI's
   * status) that must not race the agent's own promote.
   */
  static async open(dir: string, opts: { recover?: boolean } = {}): Promise<CertificateSlots> {
    const slots = new CertificateSlots(dir);
    if (opts.recover !== false) slots.recovery = await slots.recover();
    return slots;
  }

  /** True while current.old/ exists: a promote is under way, or was cut and awaits recover(). */
  async promoteInterrupted(): Promise<boolean> {
    return exists(this.paths.old);
  }

  /**
   * Brings the directory back to a clean state after a crash: temporaries
   * swept, no `current.old/`, and `current/` holding a complete identity
   * whenever one survives anywhere. Idempotent.
   */
  async recover(): Promise<RecoveryReport> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const removed: string[] = [];
    // Slot files are written inside the slot directories; DIR itself is shared with the trust store and time floor.
    for (const d of [this.paths.current, this.paths.next, this.paths.old]) {
      removed.push(...(await sweepTemporaries(d)).map((n) => join(d, n)));
    }
    const damaged = join(this.dir, 'current.damaged');
    const [cur, nxt, old] = await Promise.all([
      readSlot('current', this.paths.current),
      readSlot('next', this.paths.next),
      readSlot('current', this.paths.old),
    ]);
    const drop = async (path: string) => {
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    };
    // A next/ whose cert.pem is broken can never be promoted: only a new writeNext could fix it.
    if (nxt.state === 'corrupt') await drop(this.paths.next);
    let action: RecoveryReport['action'] = 'none';
    if (cur.state === 'complete') {
      // current/ is complete and current.old/ still exists: the promote had renamed next/ into place.
      if (await exists(this.paths.old)) {
        await drop(this.paths.old);
        action = 'finished-promote';
      }
    } else {
      // current/ can only be damaged from outside (it appears by rename of a complete slot):
      // set it aside for diagnosis, out of the way of the identity recovered below.
      if (await exists(this.paths.current)) {
        await rm(damaged, { recursive: true, force: true });
        await rename(this.paths.current, damaged);
        removed.push(this.paths.current);
      }
      if (nxt.state === 'complete') {
        // Either a promote was cut between its two renames (current.old/ exists: it was decided),
        // or next/ is the only identity there is. Both ways next/ becomes current/.
        await rename(this.paths.next, this.paths.current);
        if (await exists(this.paths.old)) await drop(this.paths.old);
        action = 'rolled-forward';
      } else if (old.state === 'complete') {
        await rename(this.paths.old, this.paths.current);
        action = 'rolled-back';
      } else if (await exists(this.paths.old)) {
        await drop(this.paths.old);
      }
    }
    await fsyncDir(this.dir);
    const now = await readSlot('current', this.paths.current);
    return { action, removed, current: now.state === 'complete' ? now.identity.certificate.fingerprint() : undefined };
  }

  /** The identity in use, or undefined before the first promote. */
  async current(): Promise<Identity | undefined> {
    const r = await readSlot('current', this.paths.current);
    if (r.state === 'complete') return r.identity;
    if (r.state === 'absent') return undefined;
    throw new AgentError('slot-corrupt', `current slot is not usable (${r.state === 'corrupt' ? r.why : r.state}); run recover()`);
  }

  /** The complete identity waiting in next/, if any. */
  async next(): Promise<Identity | undefined> {
    const r = await readSlot('next', this.paths.next);
    return r.state === 'complete' ? r.identity : undefined;
  }

  async nextState(): Promise<NextState> {
    const r = await readSlot('next', this.paths.next);
    return r.state === 'corrupt' ? 'absent' : r.state;
  }

  /**
   * The key for the next identity, generated in next/key.pem on first call
   * and reused afterwards, so a request retried after a reboot asks for the
   * same key (and an answer that arrives late still fits it).
   */
  async nextKey(opts: { algorithm?: KeyAlgorithm } = {}): Promise<KeyStore> {
    if ((await readSlot('next', this.paths.next)).state === 'complete') {
      throw new AgentError('bad-input', 'next slot already holds a complete identity; promote or discard it first');
    }
    await mkdir(this.paths.next, { recursive: true, mode: 0o700 });
    return FileKeyStore.loadOrCreate(join(this.paths.next, 'key.pem'), opts);
  }

  /** Writes a new identity into next/; the certificate must certify the key (given, or made by nextKey()). */
  async writeNext(material: SlotMaterial): Promise<Identity> {
    const [certificate, ...extra] = Certificate.allFromPem(material.certificatePem);
    const chainTail = material.chainPem?.trim() ? Certificate.allFromPem(material.chainPem) : [];
    const keyPath = join(this.paths.next, 'key.pem');
    const keyPem = material.keyPem ?? (await readIfExists(keyPath));
    if (keyPem === undefined) throw new AgentError('key-missing', 'no key for the next slot: call nextKey() or pass keyPem');
    const { key } = parsePrivateKeyPem(keyPem, material.keyPem ? 'keyPem' : keyPath);
    if (!certificate || !keyMatchesCertificate(key, certificate)) {
      throw new AgentError('key-mismatch', 'the certificate does not certify the next key');
    }
    await mkdir(this.paths.next, { recursive: true, mode: 0o700 });
    // cert.pem goes first so next/ is never "complete" with a half-replaced chain or key.
    await rm(join(this.paths.next, 'cert.pem'), { force: true });
    await fsyncDir(this.paths.next);
    crashPoint('write-next:cleared');
    if (material.keyPem !== undefined) {
      await writeFileDurable(keyPath, keyPem, { mode: 0o600, overwrite: true, crashLabel: 'next/key.pem' });
    }
    const chain = [...extra, ...chainTail];
    await writeFileDurable(join(this.paths.next, 'chain.pem'), chain.map((c) => c.toPem()).join(''), {
      mode: 0o644,
      overwrite: true,
      crashLabel: 'next/chain.pem',
    });
    await writeFileDurable(join(this.paths.next, 'cert.pem'), certificate.toPem(), { mode: 0o644, overwrite: true, crashLabel: 'next/cert.pem' });
    await fsyncDir(this.dir);
    crashPoint('write-next:done');
    const written = await this.next();
    if (!written) throw new AgentError('slot-corrupt', 'next slot did not read back complete');
    return written;
  }

  /**
   * Makes next/ the current identity: current/ → current.old/, next/ →
   * current/, then current.old/ is deleted. Each rename is atomic and each is
   * made durable (directory fsync) before the next step.
   */
  async promote(): Promise<Identity> {
    if (await exists(this.paths.old)) await this.recover();
    if ((await readSlot('next', this.paths.next)).state !== 'complete') throw new AgentError('slot-empty', 'next slot holds no complete identity to promote');
    crashPoint('promote:start');
    if (await exists(this.paths.current)) {
      await rename(this.paths.current, this.paths.old);
      crashPoint('promote:current-renamed');
      await fsyncDir(this.dir);
      crashPoint('promote:current-renamed-synced');
    }
    await rename(this.paths.next, this.paths.current);
    crashPoint('promote:next-renamed');
    await fsyncDir(this.dir);
    crashPoint('promote:next-renamed-synced');
    if (await exists(this.paths.old)) {
      await rm(join(this.paths.old, 'cert.pem'), { force: true });
      crashPoint('promote:old-cert-removed');
      await rm(this.paths.old, { recursive: true, force: true });
      crashPoint('promote:old-removed');
      await fsyncDir(this.dir);
    }
    crashPoint('promote:done');
    const now = await this.current();
    if (!now) throw new AgentError('slot-corrupt', 'current slot did not read back after promote');
    return now;
  }

  /** Drops next/ (the new identity failed its trial, or a pending key is abandoned). */
  async discardNext(): Promise<void> {
    if (!(await exists(this.paths.next))) return;
    // Commit record first: a crash mid-delete leaves at worst a pending key, never a "complete" slot.
    await rm(join(this.paths.next, 'cert.pem'), { force: true });
    await rm(this.paths.next, { recursive: true, force: true });
    await fsyncDir(this.dir);
  }

  /** Names in the slot directory (diagnostics). */
  async entries(): Promise<string[]> {
    return (await readdir(this.dir)).sort();
  }
}
