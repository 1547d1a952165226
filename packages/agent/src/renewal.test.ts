import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelay,
  MAX_TIMER_MS,
  nextRenewalAt,
  RenewalLoop,
  renewalWindow,
  type RenewalEvent,
  type RenewReason,
  type Timer,
  type ValidityPeriod,
} from './renewal.js';

const DAY = 86_400_000;
const T0 = Date.parse('2027-01-01T00:00:00Z');
const cert = (fromDay: number, days: number): ValidityPeriod => ({ notBefore: new Date(T0 + fromDay * DAY), notAfter: new Date(T0 + (fromDay + days) * DAY) });

/** A clock and a timer that only move when told to. */
class FakeTime implements Timer {
  now = T0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  readonly delays: number[] = [];
  setTimeout(fn: () => void, ms: number): unknown {
    assert.ok(ms <= MAX_TIMER_MS, 'never asks setTimeout for more than it can wait');
    this.delays.push(ms);
    this.timers.set(++this.id, { at: this.now + ms, fn });
    return this.id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time forward, firing due timers in order and letting the async work they start finish. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await settle();
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

/** A device whose renew() installs a fresh certificate of `days`, or fails while `down`. */
function device(time: FakeTime, first: ValidityPeriod, days = 90) {
  const state = { cert: first as ValidityPeriod | undefined, down: false, calls: [] as RenewReason[], events: [] as RenewalEvent[] };
  const loop = new RenewalLoop({
    current: async () => state.cert,
    renew: async (reason) => {
      state.calls.push(reason);
      if (state.down) throw new Error('server unreachable');
      state.cert = { notBefore: new Date(time.now), notAfter: new Date(time.now + days * DAY) };
    },
    now: () => new Date(time.now),
    timer: time,
    random: () => 0,
    jitter: 0,
    onEvent: (e) => state.events.push(e),
  });
  return { state, loop };
}

describe('renewal timing', () => {
  it('renews 28 days before expiry by default, the jitter spreading the window before it', () => {
    const c = cert(0, 365);
    const { earliest, latest } = renewalWindow(c);
    assert.equal(latest.getTime(), c.notAfter.getTime() - 28 * DAY);
    assert.equal(earliest.getTime(), c.notAfter.getTime() - 28 * 1.1 * DAY);
    assert.equal(nextRenewalAt(c, { random: () => 0 }).getTime(), earliest.getTime());
    assert.equal(nextRenewalAt(c, { random: () => 1 }).getTime(), latest.getTime());
  });

  it('keeps every jittered instant within [threshold × (1 + jitter), threshold] before expiry', () => {
    const cases: { threshold: { days: number } | { fraction: number }; jitter: number; lifetime: number; window: [number, number] }[] = [
      { threshold: { days: 28 }, jitter: 0.1, lifetime: 365, window: [30.8, 28] },
      { threshold: { days: 28 }, jitter: 0.5, lifetime: 90, window: [42, 28] },
      { threshold: { fraction: 1 / 3 }, jitter: 0.1, lifetime: 90, window: [33, 30] },
      // 28 days of a 7-day certificate: capped at half its life.
      { threshold: { days: 28 }, jitter: 0.1, lifetime: 7, window: [3.85, 3.5] },
      { threshold: { days: 28 }, jitter: 0, lifetime: 365, window: [28, 28] },
    ];
    for (const { threshold, jitter, lifetime, window } of cases) {
      const c = cert(0, lifetime);
      for (let i = 0; i < 500; i++) {
        const before = (c.notAfter.getTime() - nextRenewalAt(c, { threshold, jitter }).getTime()) / DAY;
        assert.ok(before <= window[0] + 1e-9 && before >= window[1] - 1e-9, `${JSON.stringify(threshold)} jitter ${jitter}: ${before} days before expiry`);
      }
    }
  });

  it('is due now once the window has begun or the certificate expired', () => {
    const now = new Date(T0 + 400 * DAY);
    assert.equal(nextRenewalAt(cert(0, 365), { now }).getTime(), now.getTime());
  });

  it('backs off exponentially from 30 s to a 1 h cap, jitter only shortening', () => {
    const seq = Array.from({ length: 10 }, (_, i) => backoffDelay(i + 1, {}, () => 0) / 1000);
    assert.deepEqual(seq, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert.equal(backoffDelay(3, {}, () => 1), 60_000, 'default jitter halves at most');
    assert.equal(backoffDelay(1000, {}, () => 0), 3_600_000, 'no overflow on long outages');
  });
});

describe('RenewalLoop', () => {
  it('renews at the threshold, then schedules the new certificate (waits over 24.8 days are chunked)', async () => {
    const time = new FakeTime();
    const { state, loop } = device(time, cert(0, 90));
    loop.start();
    await time.advance(62 * DAY - 1);
    assert.deepEqual(state.calls, []);
    await time.advance(1);
    assert.deepEqual(state.calls, ['scheduled']);
    assert.equal(state.cert?.notBefore.getTime(), T0 + 62 * DAY);
    await time.advance(61 * DAY);
    assert.deepEqual(state.calls, ['scheduled'], 'the new certificate is not due yet');
    await time.advance(1 * DAY);
    assert.deepEqual(state.calls, ['scheduled', 'scheduled']);
    assert.ok(time.delays.some((d) => d === MAX_TIMER_MS));
    loop.stop();
    assert.equal(time.pending, 0);
  });

  it('retries with exponential backoff while the server is unreachable, then carries on', async () => {
    const time = new FakeTime();
    const { state, loop } = device(time, cert(0, 90));
    state.down = true;
    loop.start();
    await time.advance(62 * DAY);
    await time.advance(3 * 3600_000); // 30 s, 60 s, … 3600 s: 10 failures fit in 3 h
    const retries = state.events.flatMap((e) => (e.type === 'failed' ? [e.retryInMs / 1000] : []));
    assert.deepEqual(retries.slice(0, 9), [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    state.down = false;
    await time.advance(3600_000);
    assert.equal(state.events.at(-2)?.type, 'renewed');
    assert.equal(state.events.at(-1)?.type, 'scheduled');
    loop.stop();
  });

  it('renewNow renews at once, drops any backoff, and joins a renewal in flight', async () => {
    const time = new FakeTime();
    const { state, loop } = device(time, cert(0, 90));
    loop.start();
    await time.advance(DAY);
    const [a, b] = [loop.renewNow(), loop.renewNow()];
    assert.deepEqual(await Promise.all([a, b]), [{ ok: true }, { ok: true }]);
    assert.deepEqual(state.calls, ['requested']);

    state.down = true;
    assert.equal((await loop.renewNow()).ok, false);
    await time.advance(10 * 60_000); // into the backoff
    const failuresBefore = state.calls.length;
    state.down = false;
    assert.deepEqual(await loop.renewNow(), { ok: true });
    assert.equal(state.calls.length, failuresBefore + 1);
    const renewing = state.events.filter((e) => e.type === 'renewing').at(-1);
    assert.deepEqual(renewing, { type: 'renewing', reason: 'requested', attempt: 1 });
    loop.stop();
  });

  it('renews an expired certificate with reason "expired" (the renew function applies the policy)', async () => {
    const time = new FakeTime();
    time.now = T0 + 100 * DAY;
    const { state, loop } = device(time, cert(0, 90));
    loop.start();
    await time.advance(0);
    assert.deepEqual(state.calls, ['expired']);
    loop.stop();
  });

  it('treats a renewal that did not replace the certificate as a failure instead of spinning', async () => {
    const time = new FakeTime();
    const calls: number[] = [];
    const loop = new RenewalLoop({
      current: async () => cert(0, 90),
      renew: async () => void calls.push(time.now),
      now: () => new Date(time.now),
      timer: time,
      random: () => 0,
    });
    loop.start();
    await time.advance(60 * DAY);
    const atThreshold = calls.length;
    await time.advance(60_000);
    assert.ok(calls.length - atThreshold <= 2, `${calls.length - atThreshold} renewals in the first minute`);
    await time.advance(DAY);
    const capped = calls.length;
    await time.advance(10 * DAY);
    // Backed off like any failure: one try an hour once the cap is reached.
    assert.equal(calls.length - capped, 10 * 24);
    loop.stop();
  });

  it('idles without a certificate until rescheduled', async () => {
    const time = new FakeTime();
    const { state, loop } = device(time, cert(0, 90));
    state.cert = undefined;
    loop.start();
    await time.advance(365 * DAY);
    assert.deepEqual(state.calls, []);
    assert.deepEqual(state.events, [{ type: 'idle' }]);
    state.cert = cert(365, 90);
    loop.reschedule();
    await time.advance(90 * DAY);
    assert.deepEqual(state.calls, ['scheduled']);
    loop.stop();
  });
});
