/**
 * The fleet simulator (DESIGN.md "Device agent"): N virtual devices in one
 * process, each doing what a real one does with the agent's own code — a key
 * made on the device, fleet provisioning by claim over MQTT (create-from-csr,
 * then provision), a new connection with the certificate it got, and K
 * publishes on its telemetry topic. Against the server whose data dir is
 * given: `cli.json` names the API and its token, `ports.json` the mqtt port.
 *
 * Set-up over the REST API, each step skipped if already done: the policy
 * `simulate-device` (connect as `${thing.name}`, publish to
 * `sim/${thing.name}/#`), the template (thing `${parameters.SerialNumber}`,
 * override replace, that policy), and a fresh claim credential.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { AgentError } from '../errors.js';
import { VirtualDevice, type Counters, type DeviceContext, type Faults } from './device.js';
import { HttpError, restCall, restFind, type ServerAccess } from './rest.js';

export const SIMULATE_TEMPLATE = 'simulate';
export const SIMULATE_POLICY = 'simulate-device';

export interface SimulateOptions {
  /** The server's data dir (cli.json, ports.json). */
  readonly data: string;
  readonly devices: number;
  /** Devices in flight at once (default 32). */
  readonly concurrency?: number;
  /** Provisioning template (default `simulate`, created if missing). */
  readonly template?: string;
  /** Messages each device publishes once connected with its own certificate (default 1). */
  readonly publish?: number;
  /** Keep every device connected until all are done (to measure the memory of N connected devices). */
  readonly hold?: boolean;
  /** Each device renews once over MQTT after it has published (renew, trial connection, confirm). */
  readonly renew?: boolean;
  /** Each device waits up to this long for the platform's renew-required and renews then (a rotation campaign). */
  readonly awaitRenewalMs?: number;
  /** Fault injection: percentage of devices killed once mid-flow and restarted from their persisted state. */
  readonly killPercent?: number;
  /** Fault injection: each device's clock is off by a uniform draw in [minMs, maxMs]. */
  readonly clockSkew?: { readonly minMs: number; readonly maxMs: number };
  /** Fault injection: devices' connections are cut about this often, and they reconnect. */
  readonly disconnectEveryMs?: number;
  readonly random?: () => number;
  /** Deadline of each MQTT request and connection (default 30 s). */
  readonly timeoutMs?: number;
  /** Called now and then with progress (for a CLI's stderr). */
  readonly onProgress?: (p: Progress) => void;
}

export interface Progress {
  readonly total: number;
  readonly provisioned: number;
  readonly connected: number;
  readonly failed: number;
  readonly renewed: number;
}

export interface SimulateSummary extends Progress {
  /** Failure reasons, `stage: reason` → count. */
  readonly reasons: Readonly<Record<string, number>>;
  readonly published: number;
  /** Devices killed mid-flow (each restarted from its persisted state). */
  readonly killed: number;
  /** Reconnections after a cut connection or a server restart. */
  readonly reconnects: number;
  readonly durationMs: number;
  /** Completed devices (connected and published) per second. */
  readonly devicesPerSecond: number;
  /** Resident set size before the devices started, and its peak while they ran. */
  readonly rssBaselineBytes: number;
  readonly rssPeakBytes: number;
}

interface ServerFiles {
  readonly access: ServerAccess;
  readonly mqttUrl: string;
}

async function readServer(data: string): Promise<ServerFiles> {
  const json = async (file: string): Promise<Record<string, unknown>> => {
    const path = join(data, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new AgentError('bad-input', `cannot read ${path}: is ${data} the data dir of a running certfleet server?`, { cause: err });
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new AgentError('bad-input', `${path} is not JSON`, { cause: err });
    }
  };
  const cli = await json('cli.json');
  const ports = await json('ports.json');
  if (typeof cli.url !== 'string' || typeof cli.token !== 'string') throw new AgentError('bad-input', `${join(data, 'cli.json')} lacks url or token`);
  if (typeof ports.mqtt !== 'number') throw new AgentError('bad-input', `${join(data, 'ports.json')} lacks the mqtt port`);
  let ca: string | undefined;
  if (typeof cli.caFile === 'string') ca = await readFile(isAbsolute(cli.caFile) ? cli.caFile : join(data, cli.caFile), 'utf8');
  const host = new URL(cli.url).hostname;
  return { access: { url: cli.url, token: cli.token, ...(ca ? { ca } : {}) }, mqttUrl: `mqtts://${host}:${ports.mqtt}` };
}

const POLICY_DOCUMENT = {
  statements: [
    { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
    { effect: 'allow', actions: ['publish'], resources: ['sim/${thing.name}/#'] },
  ],
};

const TEMPLATE_DOCUMENT = {
  description: 'certfleet-agent simulate: one thing per virtual device',
  parameters: { SerialNumber: { type: 'string' } },
  thing: { name: '${parameters.SerialNumber}', attributes: { simulated: 'true' }, override: 'replace' },
  policies: [SIMULATE_POLICY],
  deviceConfiguration: { telemetryTopic: 'sim/${parameters.SerialNumber}/telemetry' },
};

/** Creates what is missing; another simulator doing the same at once is fine (409 is taken as done). */
async function ensure(server: ServerAccess, path: string, create: () => Promise<unknown>): Promise<void> {
  if (await restFind(server, path)) return;
  try {
    await create();
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 409)) throw err;
  }
}

interface ClaimCredential {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly caPem: string;
}

async function setUp(server: ServerAccess, template: string): Promise<ClaimCredential> {
  await ensure(server, `/api/v1/policies/${SIMULATE_POLICY}`, () => restCall(server, 'POST', '/api/v1/policies', { name: SIMULATE_POLICY, document: POLICY_DOCUMENT }));
  await ensure(server, `/api/v1/provisioning-templates/${encodeURIComponent(template)}`, () =>
    restCall(server, 'POST', '/api/v1/provisioning-templates', { name: template, template: TEMPLATE_DOCUMENT }),
  );
  return restCall<ClaimCredential>(server, 'POST', '/api/v1/claims', { template });
}

/** Runs `work(i)` for i in [0, n) with at most `limit` at once. */
async function pool(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, n)) }, worker));
}

export async function simulate(opts: SimulateOptions): Promise<SimulateSummary> {
  if (!Number.isInteger(opts.devices) || opts.devices < 1) throw new AgentError('bad-input', '--devices must be a whole number of at least 1');
  const faults: Faults = { killPercent: opts.killPercent ?? 0, ...(opts.clockSkew ? { clockSkew: opts.clockSkew } : {}), ...(opts.disconnectEveryMs ? { disconnectEveryMs: opts.disconnectEveryMs } : {}) };
  if (!(faults.killPercent >= 0 && faults.killPercent <= 100)) throw new AgentError('bad-input', '--kill-devices is a percentage from 0 to 100');
  const { access, mqttUrl } = await readServer(opts.data);
  const claim = await setUp(access, opts.template ?? SIMULATE_TEMPLATE);

  const run = randomBytes(4).toString('hex');
  const counters: Counters = { provisioned: 0, connected: 0, failed: 0, renewed: 0, published: 0, killed: 0, reconnects: 0, reasons: {} };
  const progress = (): Progress => ({ total: opts.devices, provisioned: counters.provisioned, connected: counters.connected, failed: counters.failed, renewed: counters.renewed });
  let finish!: () => void;
  const allDone = new Promise<void>((r) => (finish = r));
  const ctx: DeviceContext = {
    mqttUrl,
    claim,
    template: opts.template ?? SIMULATE_TEMPLATE,
    publish: opts.publish ?? 1,
    renew: opts.renew ?? false,
    ...(opts.awaitRenewalMs !== undefined ? { awaitRenewalMs: opts.awaitRenewalMs } : {}),
    hold: opts.hold ?? false,
    timeoutMs: opts.timeoutMs ?? 30_000,
    faults,
    counters,
    random: opts.random ?? Math.random,
    allDone,
  };

  const rssBaselineBytes = process.memoryUsage().rss;
  let rssPeakBytes = rssBaselineBytes;
  const sampler = setInterval(() => {
    rssPeakBytes = Math.max(rssPeakBytes, process.memoryUsage().rss);
    opts.onProgress?.(progress());
  }, 250);
  const started = performance.now();
  const waiting: Promise<void>[] = [];
  await pool(opts.devices, opts.concurrency ?? 32, async (i) => {
    const device = new VirtualDevice(ctx, `sim-${run}-${i}`);
    await device.run();
    if (device.waiting) waiting.push(device.waiting);
  });
  await Promise.all(waiting);
  const durationMs = performance.now() - started;
  rssPeakBytes = Math.max(rssPeakBytes, process.memoryUsage().rss);
  clearInterval(sampler);
  finish();
  // Held devices drop their connections once everything is done.
  await new Promise((r) => setImmediate(r));
  const completed = opts.devices - counters.failed;
  return {
    ...progress(),
    reasons: counters.reasons,
    published: counters.published,
    killed: counters.killed,
    reconnects: counters.reconnects,
    durationMs,
    devicesPerSecond: completed / (durationMs / 1000),
    rssBaselineBytes,
    rssPeakBytes,
  };
}
