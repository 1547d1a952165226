/**
 * When to renew the device certificate, and a loop that does it.
 *
 * Default: 28 days before expiry, so a device that is offline for weeks
 * still renews in time (DESIGN.md "Device agent"). Jitter spreads a fleet's
 * renewals over a window that ends at the threshold, never after it: a fleet
 * provisioned in one day must not hit the CA in one minute, and no device
 * may renew later than the threshold promised.
 *
 * The renewal itself (MQTT or EST, promote included) is a function passed
 * in; this module only decides when, retries with capped exponential
 * backoff while the server is unreachable, and reacts to the platform's
 * "renew now". Clock, timer and randomness are injected (STYLE.md 5).
 */
import type { Certificate } from '@certfleet/pki';

const DAY = 86_400_000;
/** setTimeout's limit (2^31-1 ms, about 24.8 days); longer waits are re-armed, re-reading the clock. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export type RenewalThreshold = { readonly days: number } | { readonly fraction: number };

export interface RenewalTiming {
  /** How long before expiry to renew: days, or a fraction of the lifetime. Default { days: 28 }. */
  readonly threshold?: RenewalThreshold;
  /** 0..1: the window opens threshold × (1 + jitter) before expiry. Default 0.1. */
  readonly jitter?: number;
}

export interface ValidityPeriod {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const validityOf = (c: Certificate | ValidityPeriod): ValidityPeriod =>
  c.notBefore instanceof Date ? (c as ValidityPeriod) : { notBefore: (c as Certificate).notBefore(), notAfter: (c as Certificate).notAfter() };

const periodKey = (c: Certificate | ValidityPeriod): string => {
  const v = validityOf(c);
  return `${v.notBefore.getTime()}/${v.notAfter.getTime()}`;
};

/**
 * The window in which renewal is due: [earliest, latest], latest being the
 * threshold. The threshold is capped at half the lifetime, so a short-lived
 * certificate is used for at least half its life instead of being renewed
 * the moment it arrives (28 days of a 7-day certificate would loop).
 */
export function renewalWindow(cert: Certificate | ValidityPeriod, timing: RenewalTiming = {}): { earliest: Date; latest: Date } {
  const { notBefore, notAfter } = validityOf(cert);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const t = timing.threshold ?? { days: 28 };
  const jitter = timing.jitter ?? 0.1;
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be within 0..1, got ${jitter}`);
  const wanted = 'days' in t ? t.days * DAY : t.fraction * lifetime;
  if (!(wanted > 0)) throw new RangeError('the renewal threshold must be positive');
  const threshold = Math.min(wanted, lifetime / 2);
  const latest = notAfter.getTime() - threshold;
  const earliest = Math.max(notBefore.getTime(), latest - threshold * jitter);
  return { earliest: new Date(earliest), latest: new Date(latest) };
}

/** When this device renews `cert`: a random point of the window, or `now` when the window has begun. */
export function nextRenewalAt(cert: Certificate | ValidityPeriod, opts: RenewalTiming & { now?: Date; random?: () => number } = {}): Date {
  const { earliest, latest } = renewalWindow(cert, opts);
  const at = earliest.getTime() + (opts.random ?? Math.random)() * (latest.getTime() - earliest.getTime());
  return new Date(opts.now ? Math.max(at, opts.now.getTime()) : at);
}

export interface BackoffOptions {
  /** First retry delay (30 s). */
  readonly baseMs?: number;
  /** Longest delay (1 h). */
  readonly capMs?: number;
  /** 0..1: each delay is shortened by up to this fraction, so retries of a fleet spread out (0.5). */
  readonly jitter?: number;
}

/** Delay before retry number `attempt` (1-based): base × 2^(attempt-1), capped, jittered downwards. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.capMs ?? 3_600_000, (opts.baseMs ?? 30_000) * 2 ** Math.min(attempt - 1, 52));
  return Math.round(ceiling * (1 - (opts.jitter ?? 0.5) * random()));
}

export type RenewReason = 'scheduled' | 'expired' | 'requested';

export interface Timer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type RenewalEvent =
  | { readonly type: 'idle' }
  | { readonly type: 'scheduled'; readonly at: Date }
  | { readonly type: 'renewing'; readonly reason: RenewReason; readonly attempt: number }
  | { readonly type: 'renewed'; readonly reason: RenewReason }
  | { readonly type: 'failed'; readonly error: unknown; readonly attempt: number; readonly retryInMs: number };

export type RenewalOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown; readonly retryInMs: number };

export interface RenewalLoopOptions extends RenewalTiming {
  /** The certificate in use, or undefined before provisioning (the loop then idles until reschedule()). */
  readonly current: () => Promise<Certificate | ValidityPeriod | undefined>;
  /** Renews and promotes; throws when it could not (the loop retries). */
  readonly renew: (reason: RenewReason) => Promise<void>;
  /** Trusted time, e.g. TimeFloor.trustedNow. */
  readonly now?: () => Date;
  readonly timer?: Timer;
  readonly random?: () => number;
  readonly backoff?: BackoffOptions;
  readonly onEvent?: (e: RenewalEvent) => void;
}

const REAL_TIMER: Timer = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class RenewalLoop {
  private handle: unknown;
  private inFlight: Promise<RenewalOutcome> | undefined;
  private attempt = 0;
  private stopped = true;
  /** The renewal instant drawn for one certificate, kept so re-planning does not redraw the jitter. */
  private planned: { key: string; at: Date } | undefined;
  private readonly now: () => Date;
  private readonly timer: Timer;
  private readonly random: () => number;
  private readonly timing: RenewalTiming;

  constructor(private readonly opts: RenewalLoopOptions) {
    this.timing = { threshold: opts.threshold ?? { days: 28 }, jitter: opts.jitter ?? 0.1 };
    this.now = opts.now ?? (() => new Date());
    this.timer = opts.timer ?? REAL_TIMER;
    this.random = opts.random ?? Math.random;
  }

  start(): void {
    this.stopped = false;
    void this.plan();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** The certificate changed outside the loop (provisioning, a manual install): plan again. */
  reschedule(): void {
    if (!this.stopped && !this.inFlight) void this.plan();
  }

  /**
   * The platform asked for a renewal (a renew-required notification). It
   * just reached us, so it is reachable: any backoff is dropped and the
   * renewal starts now, or joins the one in flight.
   */
  renewNow(): Promise<RenewalOutcome> {
    if (this.inFlight) return this.inFlight;
    this.disarm();
    this.attempt = 0;
    return this.run('requested');
  }

  private disarm(): void {
    if (this.handle !== undefined) this.timer.clearTimeout(this.handle);
    this.handle = undefined;
  }

  private arm(ms: number, fn: () => void): void {
    this.disarm();
    this.handle = this.timer.setTimeout(() => {
      this.handle = undefined;
      if (!this.stopped) fn();
    }, Math.min(Math.max(0, ms), MAX_TIMER_MS));
  }

  private async plan(): Promise<void> {
    const cert = await this.opts.current();
    if (this.stopped) return;
    if (!cert) {
      this.disarm();
      this.opts.onEvent?.({ type: 'idle' });
      return;
    }
    const v = validityOf(cert);
    const key = periodKey(v);
    if (this.planned?.key !== key) this.planned = { key, at: nextRenewalAt(v, { ...this.timing, random: this.random }) };
    const now = this.now();
    const wait = this.planned.at.getTime() - now.getTime();
    if (wait <= 0) {
      void this.run(now > v.notAfter ? 'expired' : 'scheduled');
      return;
    }
    this.opts.onEvent?.({ type: 'scheduled', at: this.planned.at });
    // Woken early (long waits are chunked, or the clock moved): plan() re-reads clock and certificate.
    this.arm(wait, () => void this.plan());
  }

  private run(reason: RenewReason): Promise<RenewalOutcome> {
    this.inFlight = this.attemptOnce(reason).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async attemptOnce(reason: RenewReason): Promise<RenewalOutcome> {
    this.attempt++;
    this.opts.onEvent?.({ type: 'renewing', reason, attempt: this.attempt });
    try {
      const before = await this.opts.current();
      await this.opts.renew(reason);
      // A renew that "worked" but left the same certificate, or one already due, would spin: a failure.
      const after = await this.opts.current();
      if (!after || (before && periodKey(after) === periodKey(before))) throw new Error('renewal reported success but did not replace the certificate');
      if (nextRenewalAt(after, { ...this.timing, random: () => 1 }) <= this.now()) throw new Error('the renewed certificate is already due for renewal');
    } catch (error) {
      const retryInMs = backoffDelay(this.attempt, this.opts.backoff, this.random);
      this.opts.onEvent?.({ type: 'failed', error, attempt: this.attempt, retryInMs });
      if (!this.stopped) this.arm(retryInMs, () => void this.run(reason));
      return { ok: false, error, retryInMs };
    }
    this.attempt = 0;
    this.opts.onEvent?.({ type: 'renewed', reason });
    if (!this.stopped) void this.plan();
    return { ok: true };
  }
}
