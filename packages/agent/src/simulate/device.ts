/**
 * One virtual device of the simulator, with its faults. Its "flash" (the
 * slots, the thing name) outlives a kill; its "RAM" (connections, requests
 * in flight) does not:
 *
 * - kill: at a random instant inside a random stage of its first life
 *   (claim, first connection, publish, renewal) every socket is destroyed
 *   without DISCONNECT and the flow is abandoned; the device then starts
 *   again from what its flash holds (a pending key, a next slot, current),
 *   as a rebooted device would;
 * - clock skew: its wall clock is off by a fixed amount, and it recognises
 *   the server with a time floor (clock.ts) as a real device does;
 * - disconnect-every: its TCP connection is cut every S seconds (± 20 %),
 *   and it reconnects with capped backoff.
 */
import type { MqttClient } from 'mqtt';
import { Certificate } from '@certfleet/pki';
import { TimeFloor } from '../clock.js';
import { AgentError } from '../errors.js';
import { closeWithin } from '../mqtt/close.js';
import { connectMqtt } from '../mqtt/connect.js';
import { certificateTopics } from '../mqtt/topics.js';
import { provisionByClaim } from '../provisioning/claim.js';
import { backoffDelay } from '../renewal.js';
import { renewOverMqtt } from '../rotation/renew-mqtt.js';
import { resumeNext } from '../rotation/resume-next.js';
import type { Identity } from '../slots.js';
import { MemorySlots } from './memory-slots.js';

export const KILL_STAGES = ['claim', 'connect', 'publish', 'renew'] as const;
export type KillStage = (typeof KILL_STAGES)[number];

export interface Faults {
  /** Percentage (0..100) of devices killed once, mid-flow. */
  readonly killPercent: number;
  /** Each device's clock is off by a uniform draw in [minMs, maxMs]. */
  readonly clockSkew?: { readonly minMs: number; readonly maxMs: number };
  readonly disconnectEveryMs?: number;
}

export interface Counters {
  provisioned: number;
  connected: number;
  failed: number;
  renewed: number;
  published: number;
  killed: number;
  reconnects: number;
  readonly reasons: Record<string, number>;
}

export interface DeviceContext {
  readonly mqttUrl: string;
  readonly claim: { readonly certificatePem: string; readonly privateKeyPem: string; readonly caPem: string };
  readonly template: string;
  readonly publish: number;
  readonly renew: boolean;
  /** Stay connected up to this long for the platform's renew-required, and renew when it comes (rotation campaigns). */
  readonly awaitRenewalMs?: number;
  readonly hold: boolean;
  readonly timeoutMs: number;
  readonly faults: Faults;
  readonly counters: Counters;
  readonly random: () => number;
  /** Resolves when every device is done: held devices (and their disconnect cycles) stop then. */
  readonly allDone: Promise<void>;
}

class Killed extends Error {
  constructor(readonly stage: KillStage | 'power-off') {
    super(`killed during ${stage}`);
  }
}

/**
 * The flash as one life of a device sees it. A kill only stops awaiting what
 * was in flight (promises cannot be cancelled); without this fence a renewal
 * of the killed life would go on writing and promoting slots under the next
 * life, which a real power cut never does. Each MemorySlots call is
 * synchronous inside, so a call that passed the check completes whole.
 */
function fenced<T extends object>(target: T, alive: () => boolean): T {
  return new Proxy(target, {
    get(t, prop) {
      const v: unknown = Reflect.get(t, prop, t);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => (alive() ? (v as (...a: unknown[]) => unknown).apply(t, args) : Promise.reject(new Killed('power-off')));
    },
  });
}

function reason(stage: string, err: unknown): string {
  if (err instanceof AgentError) return `${stage}: ${err.rejection ? `${err.rejection.statusCode} ${err.rejection.errorCode}` : err.code}`;
  return `${stage}: ${(err as Error).message?.slice(0, 80) ?? String(err)}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Persisted across a kill, as a device's flash is across a power cut. */
interface Flash {
  readonly slots: MemorySlots;
  thing: string | undefined;
  renewedOnce: boolean;
}

export class VirtualDevice {
  private readonly flash: Flash = { slots: new MemorySlots(), thing: undefined, renewedOnce: false };
  private readonly floor: TimeFloor | undefined;
  private readonly root: Certificate;
  private counted = { provisioned: false, connected: false };
  // "RAM": replaced at every (re)start.
  private sockets = new Set<MqttClient>();
  private dead: Promise<never> = new Promise<never>(() => {});
  private killTimer: NodeJS.Timeout | undefined;
  private killAt: KillStage | undefined;
  private stage: string = 'claim';
  /** Counts lives; what an earlier life still has in flight finds its power cut (fenced). */
  private generation = 0;
  private slots: MemorySlots = this.flash.slots;
  /** connectAs for the current life only: a killed life's trial connection would take over the live one's client id. */
  private connectLive: (id: Identity) => Promise<MqttClient> = (id) => this.connectAs(id);

  constructor(
    private readonly ctx: DeviceContext,
    readonly serial: string,
  ) {
    const skew = ctx.faults.clockSkew;
    if (skew) {
      const offset = skew.minMs + ctx.random() * (skew.maxMs - skew.minMs);
      this.floor = TimeFloor.inMemory({ wallClock: () => new Date(Date.now() + offset) });
    }
    this.root = Certificate.fromPem(ctx.claim.caPem);
    if (ctx.random() * 100 < ctx.faults.killPercent) {
      const stages = KILL_STAGES.filter((s) => s !== 'renew' || ctx.renew);
      this.killAt = stages[Math.floor(ctx.random() * stages.length)];
    }
  }

  /**
   * Waiting for a campaign's renew-required, after run() returned: a device
   * that waits must not hold one of the simulator's concurrency slots, or
   * only that many devices would ever be connected at once.
   */
  waiting: Promise<void> | undefined;

  /** Runs the device to its end (done, or failed with a counted reason), or until it waits for a campaign (see waiting). */
  async run(): Promise<void> {
    for (;;) {
      this.dead = new Promise<never>(() => {});
      const life = ++this.generation;
      this.slots = fenced(this.flash.slots, () => life === this.generation);
      this.connectLive = (id) => (life === this.generation ? this.connectAs(id) : Promise.reject(new Killed('power-off')));
      try {
        await this.life();
        return;
      } catch (err) {
        this.dropAll();
        if (err instanceof Killed) {
          this.ctx.counters.killed++;
          continue; // reboot: flash kept, RAM lost
        }
        this.fail(err);
        return;
      }
    }
  }

  private fail(err: unknown): void {
    this.ctx.counters.failed++;
    const r = reason(this.stage, err);
    this.ctx.counters.reasons[r] = (this.ctx.counters.reasons[r] ?? 0) + 1;
  }

  /** Enters a stage; in the stage chosen for the kill, arms it at a random instant (0-150 ms in). */
  private enter(stage: KillStage): void {
    this.stage = stage;
    if (this.killAt !== stage) return;
    this.killAt = undefined;
    let fire!: (e: Killed) => void;
    this.dead = new Promise<never>((_, reject) => (fire = reject));
    this.dead.catch(() => {});
    this.killTimer = setTimeout(() => {
      this.dropAll();
      fire(new Killed(stage));
    }, Math.floor(this.ctx.random() * 150));
  }

  /** Awaits `p` unless the device is killed first; a late failure of `p` is then nobody's concern. */
  private guard<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {});
    return Promise.race([p, this.dead]);
  }

  /** Every socket cut at once, no DISCONNECT: the device lost power. */
  private dropAll(): void {
    for (const c of this.sockets) {
      c.stream?.destroy();
      c.end(true);
    }
    this.sockets.clear();
  }

  private async connect(opts: { clientId: string; certificatePem: string; keyPem: string }): Promise<MqttClient> {
    const c = await connectMqtt({
      url: this.ctx.mqttUrl,
      ...opts,
      timeoutMs: this.ctx.timeoutMs,
      ...(this.floor ? { verifyServer: (pems: string[]) => void this.floor!.validateServerChain(pems, [this.root]) } : { ca: this.ctx.claim.caPem }),
    });
    this.sockets.add(c);
    c.once('close', () => this.sockets.delete(c));
    return c;
  }

  private connectAs = (id: Identity): Promise<MqttClient> =>
    this.connect({ clientId: this.flash.thing!, certificatePem: id.certificatePem + id.chainPem, keyPem: id.key.tlsKeyPem() });

  private async life(): Promise<void> {
    const { slots } = this;
    // Recovery at boot: a claim answer written to next but never promoted becomes current (as slots.ts rolls forward).
    if (!(await slots.current()) && (await slots.nextState()) === 'complete') await slots.promote();
    if (!(await slots.current())) await this.provision();
    if (!this.counted.provisioned) {
      this.counted.provisioned = true;
      this.ctx.counters.provisioned++;
    }

    this.enter('connect');
    let client = await this.guard(this.connectCurrent());
    if (!this.counted.connected) {
      this.counted.connected = true;
      this.ctx.counters.connected++;
    }

    if (this.ctx.faults.disconnectEveryMs !== undefined) client = await this.guard(this.disconnectCycle(client));

    this.enter('publish');
    const topic = `sim/${this.flash.thing}/telemetry`;
    for (let k = 0; k < this.ctx.publish; k++) {
      await this.guard(this.withDeadline(client.publishAsync(topic, JSON.stringify({ seq: k, at: Date.now() }), { qos: 1 }), `no PUBACK within ${this.ctx.timeoutMs} ms`));
      this.ctx.counters.published++;
    }

    if (this.ctx.renew && !this.flash.renewedOnce) {
      this.enter('renew');
      const r = await this.guard(renewOverMqtt({ slots, thing: this.flash.thing!, client, connect: this.connectLive, timeoutMs: this.ctx.timeoutMs }));
      this.sockets.delete(client);
      client = r.client;
      this.flash.renewedOnce = true;
      this.ctx.counters.renewed++;
    }
    clearTimeout(this.killTimer);
    if (this.ctx.awaitRenewalMs !== undefined && !this.flash.renewedOnce) {
      this.stage = 'renew';
      this.waiting = this.awaitRenewal(client).then(
        (c) => this.finish(c),
        (err: unknown) => {
          this.dropAll();
          this.fail(err);
        },
      );
      return;
    }
    await this.finish(client);
  }

  private async finish(client: MqttClient): Promise<void> {
    if (this.ctx.hold) {
      void this.holdUntilDone(client);
      return;
    }
    this.sockets.delete(client);
    await closeWithin(client);
  }

  private async provision(): Promise<void> {
    this.enter('claim');
    const key = await this.slots.nextKey();
    const claimed = await this.guard(
      provisionByClaim({
        connect: { url: this.ctx.mqttUrl, clientId: `claim-${this.serial}`, certificatePem: this.ctx.claim.certificatePem, keyPem: this.ctx.claim.privateKeyPem, timeoutMs: this.ctx.timeoutMs, ...this.serverCheck() },
        templateName: this.ctx.template,
        parameters: { SerialNumber: this.serial },
        key,
        timeoutMs: this.ctx.timeoutMs,
      }),
    );
    this.flash.thing = claimed.thingName;
    await this.slots.writeNext({ certificatePem: claimed.certificatePem });
    await this.slots.promote();
  }

  private serverCheck(): { verifyServer: (pems: string[]) => void } | { ca: string } {
    return this.floor ? { verifyServer: (pems) => void this.floor!.validateServerChain(pems, [this.root]) } : { ca: this.ctx.claim.caPem };
  }

  /** Current, or a next slot a cut renewal left (resume-next.ts). */
  private async connectCurrent(): Promise<MqttClient> {
    const resumed = await resumeNext({ slots: this.slots, thing: this.flash.thing!, connect: this.connectLive, timeoutMs: this.ctx.timeoutMs });
    if (resumed) {
      if (!this.flash.renewedOnce) {
        this.flash.renewedOnce = true;
        this.ctx.counters.renewed++;
      }
      return resumed.client;
    }
    return this.connectLive((await this.slots.current())!);
  }

  /** Reconnects with capped backoff until connected or `deadline`. */
  private async reconnect(deadline: number): Promise<MqttClient> {
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await this.connectCurrent();
        this.ctx.counters.reconnects++;
        return c;
      } catch (err) {
        const wait = backoffDelay(attempt, { baseMs: 250, capMs: 5000 }, this.ctx.random);
        if (Date.now() + wait > deadline) throw err;
        await sleep(wait);
      }
    }
  }

  private jittered(ms: number): number {
    return ms * (0.8 + 0.4 * this.ctx.random());
  }

  /** One cut-and-reconnect: the connection dies under the device, which notices and connects again. */
  private async disconnectCycle(client: MqttClient): Promise<MqttClient> {
    await sleep(this.jittered(this.ctx.faults.disconnectEveryMs!));
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.stream.destroy();
    await closed;
    return this.reconnect(Date.now() + this.ctx.timeoutMs);
  }

  private async holdUntilDone(client: MqttClient): Promise<void> {
    let done = false;
    void this.ctx.allDone.then(() => (done = true));
    const every = this.ctx.faults.disconnectEveryMs;
    while (every !== undefined && !done) {
      try {
        client = await Promise.race([this.disconnectCycle(client), this.ctx.allDone.then(() => client)]);
      } catch {
        break;
      }
    }
    await this.ctx.allDone;
    this.dropAll();
  }

  /**
   * Waits for a renew-required naming the current certificate, then renews
   * (docs/device-protocol.md). A dropped connection (a server restart) is
   * reconnected with backoff; the retained message comes again.
   */
  private async awaitRenewal(client: MqttClient): Promise<MqttClient> {
    const deadline = Date.now() + this.ctx.awaitRenewalMs!;
    for (;;) {
      const thing = this.flash.thing!;
      const topics = certificateTopics(thing);
      const asked = new Promise<string | undefined>((resolve) => {
        client.on('message', async (topic, payload) => {
          if (topic !== topics.renewRequired || payload.length === 0) return;
          try {
            const body = JSON.parse(payload.toString('utf8')) as { certificateId?: unknown; campaignId?: unknown };
            const current = await this.slots.current();
            if (body.certificateId === current?.certificate.fingerprint()) resolve(typeof body.campaignId === 'string' ? body.campaignId : '');
          } catch {
            // A malformed notification is not a request.
          }
        });
        client.once('close', () => resolve(undefined));
      });
      try {
        await client.subscribeAsync(topics.renewRequired, { qos: 1 });
        const left = deadline - Date.now();
        if (left <= 0) throw new AgentError('timeout', 'no renew-required arrived');
        let timer: NodeJS.Timeout | undefined;
        const campaignId = await Promise.race([asked, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new AgentError('timeout', 'no renew-required arrived')), left)))]).finally(() => clearTimeout(timer));
        if (campaignId !== undefined) {
          const r = await renewOverMqtt({ slots: this.slots, thing, client, connect: this.connectLive, ...(campaignId ? { campaignId } : {}), timeoutMs: this.ctx.timeoutMs });
          this.sockets.delete(client);
          this.flash.renewedOnce = true;
          this.ctx.counters.renewed++;
          return r.client;
        }
      } catch (err) {
        if (Date.now() >= deadline || (err instanceof AgentError && err.code === 'rejected' && err.rejection?.statusCode !== 409)) throw err;
      }
      // Dropped (or the renewal failed on the way): connect again and wait for the retained notification.
      client.end(true);
      client = await this.reconnect(deadline);
      // Reconnecting may have finished a renewal whose confirm answer was lost (resume-next.ts).
      if (this.flash.renewedOnce) return client;
    }
  }

  private async withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new AgentError('timeout', what)), this.ctx.timeoutMs)))]);
    } finally {
      clearTimeout(timer);
    }
  }
}
