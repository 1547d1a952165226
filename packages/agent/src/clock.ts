/**
 * Time for devices without a real-time clock. A device that boots at
 * 1970-01-01 cannot check a certificate's validity period, and one whose
 * clock is wildly off would reject every server. So the agent keeps a time
 * floor: an instant real time is known to be past. It starts at a constant
 * baked in at build time, is raised by time the device learnt from its
 * authenticated server, and is persisted (DIR/time-floor.json) so it only
 * ever rises across reboots.
 *
 * Between raises the floor advances with the monotonic clock: real time
 * passes at least as fast as uptime, so `floor + elapsed` is still a lower
 * bound, and a renewal timer keyed on it does not stall on a dead RTC.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Certificate, OID, PkiError, validateChain } from '@certfleet/pki';
import { readIfExists, sweepTemporaries, writeFileDurable } from './durable-fs.js';
import { AgentError } from './errors.js';

/** No certificate this build meets can predate it meaningfully; raise at each release. */
export const BUILD_TIME_FLOOR = new Date('2026-11-01T00:00:00Z');

const YEAR = 365.25 * 86_400_000;

export interface TimeFloorOptions {
  /** The default floor (BUILD_TIME_FLOOR). */
  readonly buildFloor?: Date;
  /** The wall clock (injected in tests: a device at 1970). */
  readonly wallClock?: () => Date;
  /** Milliseconds of uptime (performance.now by default). */
  readonly monotonic?: () => number;
  /** A wall clock further than this beyond the floor is not believed (a reset RTC can also read 2099). */
  readonly maxAheadMs?: number;
  /** The file is rewritten only when the floor rose at least this much, to spare flash (1 h). */
  readonly persistStepMs?: number;
}

export type TimeBasis = 'wall-clock' | 'time-floor';

export interface ValidatedServerChain {
  /** Leaf first, ending with the trust anchor. */
  readonly path: readonly Certificate[];
  /** The instant the chain was validated at. */
  readonly at: Date;
  readonly basis: TimeBasis;
}

export class TimeFloor {
  private persisted: number;
  private floorMs: number;
  private floorSetAt: number;

  private constructor(
    private readonly file: string,
    floorMs: number,
    private readonly opts: Required<Pick<TimeFloorOptions, 'wallClock' | 'monotonic' | 'maxAheadMs' | 'persistStepMs'>>,
  ) {
    this.floorMs = floorMs;
    this.persisted = floorMs;
    this.floorSetAt = opts.monotonic();
  }

  static async open(agentDir: string, opts: TimeFloorOptions = {}): Promise<TimeFloor> {
    const file = join(agentDir, 'time-floor.json');
    await sweepTemporaries(agentDir, { forFile: 'time-floor.json', minAgeMs: 60_000 });
    let saved = Number.NaN;
    try {
      const text = await readIfExists(file);
      if (text !== undefined) saved = Date.parse((JSON.parse(text) as { floor?: string }).floor ?? '');
    } catch {
      // An unreadable file only loses what it added over the build floor, which still holds.
    }
    const build = (opts.buildFloor ?? BUILD_TIME_FLOOR).getTime();
    return new TimeFloor(file, Number.isFinite(saved) ? Math.max(saved, build) : build, {
      wallClock: opts.wallClock ?? (() => new Date()),
      monotonic: opts.monotonic ?? (() => performance.now()),
      maxAheadMs: opts.maxAheadMs ?? 20 * YEAR,
      persistStepMs: opts.persistStepMs ?? 3_600_000,
    });
  }

  /**
   * A floor kept in memory only (the simulator's virtual devices): the same
   * rules, nothing persisted, so it starts at the build floor every time.
   */
  static inMemory(opts: TimeFloorOptions = {}): TimeFloor {
    return new TimeFloor('', (opts.buildFloor ?? BUILD_TIME_FLOOR).getTime(), {
      wallClock: opts.wallClock ?? (() => new Date()),
      monotonic: opts.monotonic ?? (() => performance.now()),
      maxAheadMs: opts.maxAheadMs ?? 20 * YEAR,
      persistStepMs: opts.persistStepMs ?? 3_600_000,
    });
  }

  /** The lower bound on real time right now: the floor plus the uptime since it was set. */
  floor(): Date {
    return new Date(this.floorMs + Math.max(0, this.opts.monotonic() - this.floorSetAt));
  }

  /** Whether the wall clock is believable: not before the floor and not absurdly far beyond it. */
  basis(): TimeBasis {
    const wall = this.opts.wallClock().getTime();
    const floor = this.floor().getTime();
    return Number.isFinite(wall) && wall >= floor && wall <= floor + this.opts.maxAheadMs ? 'wall-clock' : 'time-floor';
  }

  /** The wall clock when it is believable, else the floor (the device believes it is 1970). */
  trustedNow(): Date {
    return this.basis() === 'wall-clock' ? this.opts.wallClock() : this.floor();
  }

  /**
   * Raises the floor to `date`, time learnt from the authenticated server
   * (e.g. the Date of a response over a verified TLS session). Never lowers
   * it; refuses an implausible jump that would make every certificate look
   * expired. Returns whether the floor rose.
   */
  async acceptServerTime(date: Date): Promise<boolean> {
    const t = date.getTime();
    const floor = this.floor().getTime();
    if (!Number.isFinite(t)) throw new AgentError('bad-input', 'server time is not a date');
    if (t > floor + this.opts.maxAheadMs) throw new AgentError('bad-input', `server time ${date.toISOString()} is implausibly far beyond the floor`);
    if (t <= floor) return false;
    this.floorMs = t;
    this.floorSetAt = this.opts.monotonic();
    if (this.file !== '' && t - this.persisted >= this.opts.persistStepMs) {
      await writeFileDurable(this.file, `${JSON.stringify({ floor: date.toISOString() })}\n`, { mode: 0o644, overwrite: true });
      this.persisted = t;
    }
    return true;
  }

  /**
   * Validates the server's TLS chain (leaf first, PEM) against `roots` for
   * serverAuth. With a believable wall clock it is checked at the wall
   * clock. Without one the device cannot know how late it is, only that it
   * is past the floor and past every notBefore in the chain (an honest CA
   * issues nothing ahead of time), so the chain is checked at the latest of
   * those. Either way a certificate that expired before the floor is
   * refused: that is the one thing the floor proves.
   */
  validateServerChain(chainPems: string | readonly string[], roots: readonly Certificate[]): ValidatedServerChain {
    let chain: Certificate[];
    try {
      chain = (typeof chainPems === 'string' ? [chainPems] : chainPems).flatMap((p) => Certificate.allFromPem(p));
    } catch (err) {
      throw new AgentError('bad-input', `server chain is not PEM certificates: ${(err as Error).message}`, { cause: err });
    }
    const [leaf, ...intermediates] = chain;
    if (!leaf) throw new AgentError('bad-input', 'empty server chain');
    const floor = this.floor();
    for (const c of chain) {
      if (c.notAfter() < floor) {
        throw new AgentError('expired-before-floor', `${c.subject()} expired at ${c.notAfter().toISOString()}, before the time floor ${floor.toISOString()}`);
      }
    }
    const basis = this.basis();
    const at = basis === 'wall-clock' ? this.opts.wallClock() : new Date(Math.max(floor.getTime(), ...chain.map((c) => c.notBefore().getTime())));
    try {
      return { path: validateChain(leaf, { intermediates, roots, at, purpose: OID.serverAuth }), at, basis };
    } catch (err) {
      if (err instanceof PkiError) throw new AgentError('chain-invalid', `server chain refused at ${at.toISOString()} (${basis}): ${err.message}`, { cause: err });
      throw err;
    }
  }
}
