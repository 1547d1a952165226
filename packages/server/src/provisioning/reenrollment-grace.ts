/**
 * The grace period of EST re-enrollment (RFC 7030 §4.2.2; the device
 * protocol's "the old certificate stays active until the new one is used"):
 * a certificate issued by simplereenroll is stored with a link to the one it
 * replaces, and the old one stays active, so a device that lost the answer
 * (or has not installed the new certificate yet) still gets in. The link is
 * settled, and the old certificate revoked `superseded`, at the first of:
 *
 *  - the new certificate's first use: the broker admitted it (the bus event
 *    `thing.connected`), or it authenticated on the api port (EST, network
 *    bootstrap), which calls `used()`;
 *  - the end of the grace period (default 7 days), found by a sweep;
 *  - a later re-enrollment with the same old certificate, which revokes the
 *    unused new one instead (store/enrollment.ts, insertReenrollment): the
 *    device evidently never installed it.
 *
 * A device a rotation campaign asked to renew may do it here instead of over
 * MQTT; each step is reported to the campaign bookkeeping (`follow()`,
 * lifecycle/renewal-progress.ts): the new certificate issued, first used
 * (confirmed), the old one revoked (retired).
 */
import type { EventBus } from '../events/index.js';
import { audit, SYSTEM } from '../registry/actor.js';
import type { EnrollmentStore, ReenrollmentLink, SettledReenrollment } from '../store/index.js';

export const DEFAULT_REENROLL_GRACE_MS = 7 * 86_400_000;
const SWEEP_BATCH = 200;
const DURATION = /^(\d{1,6})(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `7d`, `36h`, `90m`, `30s`: the grace period as configured (CERTFLEET_EST_REENROLL_GRACE); throws on anything else. */
export function parseGrace(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new Error(`a grace period is a number and a unit (ms, s, m, h, d), e.g. 7d; got ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Where re-enrollments are reported, so a rotation campaign counts them (lifecycle/renewal-progress.ts). */
export interface ReenrollmentFollower {
  issued(old: { readonly id: string; readonly thingName: string | null }, newId: string): Promise<unknown>;
  confirmed(newId: string): Promise<unknown>;
  retired(newId: string): Promise<unknown>;
}

export interface ReenrollmentGraceDeps {
  readonly store: Pick<EnrollmentStore, 'pendingReenrollment' | 'settleReenrollment' | 'dueReenrollments'>;
  readonly bus: Pick<EventBus, 'emit' | 'on'>;
  readonly now: () => Date;
  readonly graceMs?: number;
  readonly onError?: (err: unknown) => void;
}

export class ReenrollmentGrace {
  readonly graceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #off: (() => void) | undefined;
  #sweeping: Promise<number> | undefined;
  #follower: ReenrollmentFollower | undefined;

  constructor(private readonly deps: ReenrollmentGraceDeps) {
    this.graceMs = deps.graceMs ?? DEFAULT_REENROLL_GRACE_MS;
  }

  /** When a certificate re-enrolled now stops being the only one that works. */
  graceUntil(at: Date): Date {
    return new Date(at.getTime() + this.graceMs);
  }

  /** Reports every re-enrollment step to `follower` from now on. */
  follow(follower: ReenrollmentFollower): void {
    this.#follower = follower;
  }

  /** simplereenroll committed `newId` to replace `old` (est.ts). */
  async reenrolled(old: { readonly id: string; readonly thingName: string | null }, newId: string): Promise<void> {
    await this.#follower?.issued(old, newId);
  }

  /**
   * `certificateId` was just used. One indexed read when it is no
   * re-enrolled certificate (the common case: every connection calls this);
   * otherwise settles its link and revokes the one it replaces.
   */
  async used(certificateId: string): Promise<SettledReenrollment | undefined> {
    const link = await this.deps.store.pendingReenrollment(certificateId);
    return link && this.#settle(link, 'used');
  }

  async #settle(link: ReenrollmentLink, outcome: 'used' | 'grace-expired'): Promise<SettledReenrollment | undefined> {
    const settled = await this.deps.store.settleReenrollment(
      link.newCertificateId,
      outcome,
      this.deps.now(),
      SYSTEM.id,
      audit(SYSTEM, 'certificate.revoke', `certificate:${link.oldCertificateId}`, { revocationReason: 'superseded', replacedBy: link.newCertificateId, outcome }),
    );
    if (settled && this.#follower) {
      // After the commit; a lost report leaves the campaign item behind, never the certificates.
      if (outcome === 'used') await this.#follower.confirmed(link.newCertificateId).catch(this.#fail);
      if (settled.revoked) await this.#follower.retired(link.newCertificateId).catch(this.#fail);
    }
    if (!settled?.revoked) return settled;
    // Committed: the broker disconnects the old certificate, CRL and OCSP follow.
    this.deps.bus.emit('certificate.status-changed', { certificateId: settled.revoked.id, from: settled.from ?? 'active', to: 'revoked' });
    return settled;
  }

  readonly #fail = (err: unknown): void => (this.deps.onError ?? ((e) => console.error('certfleet: EST re-enrollment grace:', e)))(err);

  /** Revokes the certificates whose grace period is over; one sweep at a time. Returns how many links it settled. */
  sweep(): Promise<number> {
    return (this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined)));
  }

  async #sweep(): Promise<number> {
    let settled = 0;
    for (;;) {
      const due = await this.deps.store.dueReenrollments(this.deps.now(), SWEEP_BATCH);
      for (const link of due) if (await this.#settle(link, 'grace-expired')) settled++;
      if (due.length < SWEEP_BATCH) return settled;
    }
  }

  /** Follows the broker's admissions and sweeps every `intervalMs` (default 10 minutes); the timer does not hold the process open. */
  start(intervalMs = 600_000): void {
    const fail = (err: unknown) => (this.deps.onError ?? ((e) => console.error('certfleet: EST re-enrollment grace:', e)))(err);
    this.#off ??= this.deps.bus.on('thing.connected', (e) => this.used(e.certificateId).then(() => undefined, fail));
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sweep().catch(fail), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#off?.();
    this.#off = undefined;
  }
}
