/**
 * The long-running device agent (`certfleet-agent run`): it keeps one MQTT
 * connection with the current identity, listens on its thing's
 * `certificate/renew-required` and `trust-bundle` (docs/device-protocol.md),
 * renews on schedule or when asked, renews after expiry over the api port,
 * applies and acknowledges trust bundles, and reconnects with capped backoff
 * after a drop.
 *
 * The server is recognised by the trust store's roots, checked at the time
 * floor (clock.ts) until the device has trusted time; the validated chain
 * itself raises the floor (a CA issues nothing ahead of time) and, when the
 * api port is known, so does the Date of an answer over a verified TLS
 * session there.
 *
 * Every step is one JSON line (log.ts). All state that must survive a kill
 * is in the slots, the trust store, the time floor and agent.json, each
 * written crash-safely; the process itself holds nothing worth keeping.
 */
import type { MqttClient } from 'mqtt';
import { commonName, type Certificate } from '@certfleet/pki';
import { TimeFloor, type ValidatedServerChain } from '../clock.js';
import { AgentError } from '../errors.js';
import { estRenew } from '../est/enrollment.js';
import { verifiedRequest } from '../http/verified-request.js';
import { closeWithin } from '../mqtt/close.js';
import { connectMqtt } from '../mqtt/connect.js';
import { mqttRequest } from '../mqtt/request.js';
import { certificateTopics, trustBundleTopic } from '../mqtt/topics.js';
import { backoffDelay, RenewalLoop, type RenewReason } from '../renewal.js';
import { isFallbackRefusal, isNotExpired, renewExpired } from '../rotation/renew-expired.js';
import { renewOverMqtt } from '../rotation/renew-mqtt.js';
import { resumeNext } from '../rotation/resume-next.js';
import { applyTrustBundle, parseTrustBundle } from '../rotation/trust-bundle.js';
import { CertificateSlots, type Identity } from '../slots.js';
import { TrustStore } from '../trust-store.js';
import { provisionFromClaim } from './claim-flow.js';
import { updateConfig, type AgentConfig } from './config.js';
import { errorFields, type StepLog } from './log.js';

export interface DeviceAgentOptions {
  readonly dir: string;
  readonly config: AgentConfig;
  readonly log: StepLog;
  /** The device's wall clock (injected: a device at 1970, a clock set ahead). */
  readonly wallClock?: () => Date;
  readonly random?: () => number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class DeviceAgent {
  private client: MqttClient | undefined;
  private validated: ValidatedServerChain | undefined;
  private loop: RenewalLoop | undefined;
  private thing: string | undefined;
  private campaignId: string | undefined;
  private lastBundle: string | number | undefined;
  /** A renewal is swapping connections: a close of the old one is expected. */
  private handoff = false;
  private stopping = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectAttempt = 0;
  private provisioned: Promise<void> | undefined;
  private readonly timeoutMs: number;

  private constructor(
    private readonly opts: DeviceAgentOptions,
    private readonly slots: CertificateSlots,
    private readonly trust: TrustStore,
    private readonly floor: TimeFloor,
  ) {
    this.timeoutMs = opts.config.timeoutMs ?? 30_000;
    this.thing = opts.config.thing;
  }

  static async open(opts: DeviceAgentOptions): Promise<DeviceAgent> {
    const slots = await CertificateSlots.open(opts.dir);
    const [trust, floor] = await Promise.all([TrustStore.open(opts.dir), TimeFloor.open(opts.dir, opts.wallClock ? { wallClock: opts.wallClock } : {})]);
    const agent = new DeviceAgent(opts, slots, trust, floor);
    const r = slots.recovery;
    opts.log('start', { dir: opts.dir, recovery: r.action, ...(r.removed.length ? { removed: r.removed } : {}), roots: trust.list().length, now: floor.trustedNow().toISOString(), basis: floor.basis() });
    return agent;
  }

  private get config(): AgentConfig {
    return this.opts.config;
  }

  private log(step: string, fields?: Record<string, unknown>): void {
    this.opts.log(step, fields);
  }

  /** Provisions if needed, connects (or schedules reconnecting), and starts the renewal schedule. Resolves once the first attempt is over. */
  async start(): Promise<void> {
    if (!this.config.mqtt) throw new AgentError('bad-input', 'no MQTT URL: pass --mqtt mqtts://host:port once (it is kept in agent.json)');
    if (this.trust.list().length === 0) throw new AgentError('trust-root-needed', `no trusted roots in ${this.opts.dir}/trust: pass --ca FILE or run certfleet-agent trust add`);
    this.loop = new RenewalLoop({
      current: async () => (await this.slots.current())?.certificate,
      renew: (reason) => this.renew(reason),
      now: () => this.floor.trustedNow(),
      ...(this.opts.random ? { random: this.opts.random } : {}),
      ...(this.config.threshold ? { threshold: this.config.threshold } : {}),
      ...(this.config.jitter !== undefined ? { jitter: this.config.jitter } : {}),
      backoff: { baseMs: this.config.retryMinMs ?? 30_000, capMs: this.config.retryMaxMs ?? 3_600_000 },
      onEvent: (e) => {
        if (e.type === 'scheduled') this.log('renewal-scheduled', { at: e.at.toISOString() });
        else if (e.type === 'renewing') this.log('renewing', { reason: e.reason, attempt: e.attempt });
        else if (e.type === 'renewed') this.log('renewed', { reason: e.reason });
        else if (e.type === 'failed') this.log('renewal-failed', { attempt: e.attempt, retryInMs: e.retryInMs, ...errorFields(e.error) });
        else this.log('renewal-idle');
      },
    });
    if (!(await this.slots.current())) {
      this.provisioned = this.provisionUntilDone();
      await this.provisioned;
      if (this.stopping) return;
    } else {
      await this.connectOrRetry();
    }
    this.loop.start();
  }

  /** Disconnects cleanly (MQTT DISCONNECT) and stops every timer. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.loop?.stop();
    clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = undefined;
    if (c) await closeWithin(c);
    this.log('stopped');
  }

  private verifyServer = (pems: string[]): void => {
    this.validated = this.floor.validateServerChain(pems, this.trust.list());
  };

  private thingOf(identity: Identity): string {
    const t = this.thing ?? commonName(identity.certificate.subjectAttributes());
    if (!t) throw new AgentError('bad-input', 'the certificate has no CN to take the thing name from: pass --thing NAME');
    return t;
  }

  private connectWith(identity: Identity, thing = this.thingOf(identity)): Promise<MqttClient> {
    return connectMqtt({
      url: this.config.mqtt!,
      clientId: thing,
      certificatePem: identity.certificatePem + identity.chainPem,
      keyPem: identity.key.tlsKeyPem(),
      verifyServer: this.verifyServer,
      timeoutMs: this.timeoutMs,
    });
  }

  private expired(cert: Certificate): boolean {
    return cert.notAfter().getTime() <= this.floor.trustedNow().getTime();
  }

  /** One connection attempt with the current identity (or a pending next one); on failure, a reconnect is scheduled. */
  private connectOrRetry(): Promise<void> {
    this.connecting ??= this.connectOnce()
      .then(() => {
        this.reconnectAttempt = 0;
      })
      .catch((err: unknown) => {
        this.log('connect-failed', errorFields(err));
        this.scheduleReconnect();
      })
      .finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connectOnce(): Promise<void> {
    if (this.stopping) return;
    const current = await this.slots.current();
    if (!current) throw new AgentError('slot-empty', 'no current identity');
    const thing = this.thingOf(current);
    // A renewal cut after its certificate arrived: the new identity first (resume-next.ts).
    const resumed = await resumeNext({ slots: this.slots, thing, connect: (id) => this.connectWith(id, thing), timeoutMs: this.timeoutMs });
    if (resumed) {
      this.log('promoted', { serial: resumed.identity.certificate.serial(), resumed: true });
      await this.adopt(resumed.client, resumed.identity);
      this.loop?.reschedule();
      return;
    }
    if (this.expired(current.certificate)) {
      // The endpoint admits no expired certificate: the renewal loop renews after expiry, then connects.
      this.log('expired', { notAfter: current.certificate.notAfter().toISOString() });
      this.loop?.reschedule();
      return;
    }
    this.log('connecting', { url: this.config.mqtt, thing, serial: current.certificate.serial() });
    await this.adopt(await this.connectWith(current, thing), current);
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer || this.handoff) return;
    const inMs = backoffDelay(++this.reconnectAttempt, { baseMs: this.config.reconnectMinMs ?? 1000, capMs: this.config.reconnectMaxMs ?? 60_000 }, this.opts.random);
    this.log('reconnect-scheduled', { attempt: this.reconnectAttempt, inMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connectOrRetry();
    }, inMs);
  }

  /** Makes `client` the agent's connection: handlers, subscriptions, trusted time. */
  private async adopt(client: MqttClient, identity: Identity): Promise<void> {
    const thing = this.thingOf(identity);
    this.client = client;
    client.on('close', () => {
      if (client !== this.client || this.handoff || this.stopping) return;
      this.client = undefined;
      this.log('disconnected');
      this.scheduleReconnect();
    });
    client.on('message', (topic, payload) => void this.onMessage(topic, payload, client, thing));
    this.log('connected', { thing, serial: identity.certificate.serial(), notAfter: identity.certificate.notAfter().toISOString(), basis: this.validated?.basis });
    const topics = [certificateTopics(thing).renewRequired, trustBundleTopic(thing)];
    const grants = await client.subscribeAsync(topics, { qos: 1 });
    const refused = grants.filter((g) => g.qos === 128).map((g) => g.topic);
    this.log('subscribed', { topics, ...(refused.length ? { refused } : {}) });
    await this.takeTime();
  }

  /**
   * Raises the time floor from what the verified server proved: the chain's
   * validation instant, then (api port known) the Date of a verified HTTPS
   * answer. Only while the wall clock is not believable.
   */
  private async takeTime(): Promise<void> {
    if (this.floor.basis() === 'wall-clock' || !this.validated) return;
    const before = this.floor.floor();
    try {
      await this.floor.acceptServerTime(this.validated.at);
      let source = 'server-certificate';
      if (this.config.api) {
        const res = await verifiedRequest({ url: new URL('/.well-known/est/cacerts', this.config.api).href, method: 'GET', verifyServer: this.verifyServer, timeoutMs: this.timeoutMs });
        const date = Date.parse(String(res.headers.date ?? ''));
        if (Number.isFinite(date) && (await this.floor.acceptServerTime(new Date(date)))) source = 'server-date';
      }
      this.log('time', { source, from: before.toISOString(), floor: this.floor.floor().toISOString(), basis: this.floor.basis() });
    } catch (err) {
      this.log('time-failed', errorFields(err));
    }
  }

  private async onMessage(topic: string, payload: Buffer, client: MqttClient, thing: string): Promise<void> {
    try {
      if (topic === certificateTopics(thing).renewRequired) {
        // An empty retained message clears the request (MQTT 3.1.1 §3.3.1.3).
        if (payload.length === 0) return;
        const body: unknown = JSON.parse(payload.toString('utf8'));
        const current = await this.slots.current();
        if (!isObject(body) || !current || body.certificateId !== current.certificate.fingerprint()) {
          this.log('renew-required-ignored', { certificateId: isObject(body) ? body.certificateId : undefined });
          return;
        }
        this.campaignId = typeof body.campaignId === 'string' ? body.campaignId : undefined;
        this.log('renew-required', { campaignId: this.campaignId, reason: body.reason });
        void this.loop?.renewNow();
      } else if (topic === trustBundleTopic(thing)) {
        const bundle = parseTrustBundle(payload);
        if (!bundle || bundle.version === this.lastBundle) return;
        // A root leaves only when the chain this connection was verified with no longer needs it.
        const path = this.validated?.path ?? [];
        const receipt = await applyTrustBundle(client, thing, this.trust, bundle, {
          policy: this.trust.neededToReach(path, this.validated?.at ?? this.floor.trustedNow()),
          timeoutMs: this.timeoutMs,
        });
        this.lastBundle = bundle.version;
        this.log('trust-bundle', { version: bundle.version, added: receipt.added, removed: receipt.removed, retained: receipt.retained, roots: receipt.roots.length, acknowledged: true });
      }
    } catch (err) {
      this.log('message-failed', { topic, ...errorFields(err) });
    }
  }

  /** RenewalLoop's renew: after expiry over the api port, else over EST or MQTT. */
  private async renew(reason: RenewReason): Promise<void> {
    const current = await this.slots.current();
    if (!current) throw new AgentError('slot-empty', 'no current identity to renew');
    if (reason === 'expired' || this.expired(current.certificate)) return this.renewAfterExpiry(current);
    return this.renewValid(current);
  }

  /** The ordinary renewal of a certificate the platform still admits: over EST, or over MQTT on the connection made with it. */
  private async renewValid(current: Identity): Promise<void> {
    if (this.config.renewVia === 'est') {
      const id = await estRenew({ dir: this.opts.dir, url: this.config.est ?? this.config.api!, timeoutMs: this.timeoutMs });
      this.log('promoted', { serial: id.certificate.serial(), via: 'est' });
      return this.replaceConnection(id);
    }
    const client = this.client;
    if (!client?.connected) throw new AgentError('unreachable', 'not connected to the platform');
    const thing = this.thingOf(current);
    this.handoff = true;
    try {
      const r = await renewOverMqtt({ slots: this.slots, thing, client, connect: (id) => this.connectWith(id, thing), ...(this.campaignId ? { campaignId: this.campaignId } : {}), timeoutMs: this.timeoutMs });
      this.campaignId = undefined;
      this.log('promoted', { serial: r.identity.certificate.serial(), certificateId: r.certificateId, retiring: r.retiring, via: 'mqtt' });
      await this.adopt(r.client, r.identity);
    } finally {
      this.handoff = false;
      if (!this.client?.connected) {
        this.client = undefined;
        this.scheduleReconnect();
      }
    }
  }

  /** After a renewal that did not come with a connection: drop the old one, connect with the new identity. */
  private async replaceConnection(identity: Identity): Promise<void> {
    this.handoff = true;
    const old = this.client;
    this.client = undefined;
    if (old) await closeWithin(old);
    this.handoff = false;
    try {
      await this.adopt(await this.connectWith(identity), identity);
    } catch (err) {
      this.log('connect-failed', errorFields(err));
      this.scheduleReconnect();
    }
  }

  private async renewAfterExpiry(current: Identity): Promise<void> {
    if (!this.config.api) {
      if (this.config.claim) return this.reprovision(current, 'no api URL for renewal after expiry');
      throw new AgentError('bad-input', `the certificate expired at ${current.certificate.notAfter().toISOString()} and neither an api URL (--api) nor a claim credential is configured: this device cannot renew`);
    }
    try {
      const next = await renewExpired({ slots: this.slots, api: this.config.api, verifyServer: this.verifyServer, timeoutMs: this.timeoutMs });
      this.log('renewed-after-expiry', { serial: next.certificate.serial(), certificateId: next.certificateId });
    } catch (err) {
      if (isNotExpired(err)) return this.renewNotExpired(current, err);
      if (!isFallbackRefusal(err)) throw err;
      await this.slots.discardNext();
      this.log('renew-expired-refused', errorFields(err));
      if (!this.config.claim) {
        throw new AgentError('rejected', `renewal after expiry refused and no claim credential configured (--claim-cert): ${(err as Error).message}`, {
          ...((err as AgentError).rejection ? { rejection: (err as AgentError).rejection! } : {}),
        });
      }
      return this.reprovision(current, 'renewal after expiry refused');
    }
    // Trial: the platform must admit the new identity before it replaces the old one.
    const thing = this.thingOf(current);
    const next = (await this.slots.next())!;
    const client = await this.connectWith(next, thing).catch(async (err: unknown) => {
      await this.slots.discardNext();
      throw err;
    });
    try {
      await mqttRequest(client, certificateTopics(thing).confirm, { certificateId: next.certificate.fingerprint() }, this.timeoutMs);
    } catch (err) {
      // Confirm retires the expired certificate; a platform that tracks no renewal here has nothing to retire.
      if (!(err instanceof AgentError && err.code === 'rejected')) {
        client.end(true);
        throw err;
      }
    }
    const identity = await this.slots.promote();
    this.log('promoted', { serial: identity.certificate.serial(), via: 'renew-expired' });
    await this.replaceWith(client, identity);
  }

  /**
   * 409 NotExpired: the platform still admits this certificate (this
   * device's clock runs ahead of it), so the ordinary renewal applies; over
   * MQTT it needs the connection the expired-looking certificate was never
   * given.
   */
  private async renewNotExpired(current: Identity, err: unknown): Promise<void> {
    this.log('renew-expired-not-expired', { notAfter: current.certificate.notAfter().toISOString(), ...errorFields(err) });
    if (this.config.renewVia !== 'est' && !this.client?.connected) {
      const thing = this.thingOf(current);
      this.log('connecting', { url: this.config.mqtt, thing, serial: current.certificate.serial() });
      await this.adopt(await this.connectWith(current, thing), current);
    }
    return this.renewValid(current);
  }

  private async reprovision(current: Identity | undefined, why: string): Promise<void> {
    const claim = this.config.claim!;
    this.log('provisioning', { template: claim.template, why });
    const subject = current?.certificate.subject();
    const r = await provisionFromClaim({
      slots: this.slots,
      claim,
      mqtt: this.config.mqtt!,
      verifyServer: this.verifyServer,
      connect: (id, thing) => this.connectWith(id, thing),
      ...(subject ? { subject } : {}),
      timeoutMs: this.timeoutMs,
    });
    if (r.thing !== this.thing) {
      this.thing = r.thing;
      await updateConfig(this.opts.dir, { thing: r.thing });
    }
    this.log('provisioned', { thing: r.thing, serial: r.identity.certificate.serial() });
    await this.replaceWith(r.client, r.identity);
  }

  private async replaceWith(client: MqttClient, identity: Identity): Promise<void> {
    const old = this.client;
    this.handoff = true;
    this.client = undefined;
    old?.end(true);
    this.handoff = false;
    await this.adopt(client, identity);
  }

  /** First identity from the claim credential, retried with the renewal backoff until it works or the agent stops. */
  private async provisionUntilDone(): Promise<void> {
    if (!this.config.claim) {
      throw new AgentError('slot-empty', `${this.opts.dir} holds no identity and no claim credential is configured: install a certificate (certfleet-agent install) or pass --claim-cert, --claim-key and --template`);
    }
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.reprovision(undefined, 'no identity');
        return;
      } catch (err) {
        const retryInMs = backoffDelay(attempt, { baseMs: this.config.retryMinMs ?? 30_000, capMs: this.config.retryMaxMs ?? 3_600_000 }, this.opts.random);
        this.log('provisioning-failed', { attempt, retryInMs, ...errorFields(err) });
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  }
}
