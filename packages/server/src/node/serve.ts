/**
 * A running certfleet node: HTTPS API on the api port, MQTT over mutual TLS
 * on the mqtt port, plain HTTP for device-facing documents on the http port.
 * `DIR/ports.json` is written only once all three listen.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { dataDir, isInitialised, readNodeConfig, type DataDir } from '../config/data-dir.js';
import { Admission, startBroker } from '../broker/index.js';
import { publishLifecycleEvents } from '../events/lifecycle-topics.js';
import { CertfleetError } from '../errors.js';
import { buildApi } from '../http/api.js';
import { buildPublic } from '../http/public.js';
import { fleetProvisioningRequests } from '../provisioning/mqtt-requests.js';
import { renewalRequests } from '../lifecycle/renewal-requests.js';
import { trustBundleRequests } from '../lifecycle/trust-bundle-requests.js';
import { DEFAULT_AUDIT_INTERVAL_HOURS, SETTING_AUDIT_INTERVAL } from '../lifecycle/findings.js';
import { openServices, type Services } from '../services.js';
import { initDataDir, writeCliJson } from './init.js';
import { serverTls } from './tls.js';

export interface ServeOptions {
  readonly data?: string;
  readonly host?: string;
  readonly apiPort?: number;
  readonly mqttPort?: number;
  readonly httpPort?: number;
  readonly database?: string;
  readonly redis?: string;
  readonly passphrase?: string;
  /** Base URL devices use to reach the http port (CRL and OCSP locations); http://localhost:PORT by default. */
  readonly publicUrl?: string;
  /** Called with a line for the operator (ports, first-start token). */
  readonly say?: (line: string) => void;
  readonly logger?: boolean;
}

export interface Ports {
  readonly api: number;
  readonly mqtt: number;
  readonly http: number;
}

export interface RunningNode {
  readonly ports: Ports;
  readonly services: Services;
  readonly dir: DataDir;
  close(): Promise<void>;
}

/** A port that is taken or not allowed is the operator's to fix: say so plainly instead of a stack trace. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return new CertfleetError('unavailable', `cannot listen on ${host} port ${port} (${code}): choose another port (0 picks a free one)`, { cause: err });
  }
  return err;
}

async function listen(app: FastifyInstance, port: number, host: string): Promise<number> {
  try {
    await app.listen({ port, host });
  } catch (err) {
    throw listenError(err, host, port);
  }
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

export async function startNode(opts: ServeOptions): Promise<RunningNode> {
  const say = opts.say ?? ((l: string) => console.log(l));
  const dir = dataDir(opts.data);
  if (!isInitialised(dir)) {
    const r = await initDataDir({
      ...(opts.data ? { data: opts.data } : {}),
      ...(opts.database ? { database: opts.database } : {}),
      ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
    });
    say(`initialised ${dir.root}; admin token (shown once, also in ${dir.cliJson}): ${r.adminToken}`);
  }
  const database = opts.database ?? readNodeConfig(dir).database;
  const s = await openServices({ database, masterKeyFile: dir.masterKey, ...(opts.passphrase ? { passphrase: opts.passphrase } : {}) });
  const host = opts.host ?? '::';
  const closers: Array<() => Promise<unknown>> = [() => s.close()];
  // Webhook deliveries left in the queue by the last run go out now; services.close() stops the worker.
  s.webhooks.startWorker();
  // Audits run on a schedule (setting audit.interval-hours, default 24; 0 turns it off), their findings stored (lifecycle/findings.ts).
  s.auditFindings.schedule(Number((await s.store.getSetting(SETTING_AUDIT_INTERVAL)) ?? DEFAULT_AUDIT_INTERVAL_HOURS));
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    const tls = await serverTls(s, dir);
    const api = await buildApi(s, { https: tls, logger: opts.logger ?? false });
    closers.push(() => api.close());
    const pub = await buildPublic(s);
    closers.push(() => pub.close());
    // The http port first: its URL goes into every certificate issued from now on (CRL, OCSP).
    const httpPort = await listen(pub, opts.httpPort ?? 8080, host);
    await s.authorities.setPublicUrl(opts.publicUrl ?? `http://localhost:${httpPort}`);
    const apiPort = await listen(api, opts.apiPort ?? 8443, host);
    const mqttPort = await startMqtt(s, tls, opts.mqttPort ?? 8883, host, closers).catch((err: unknown) => {
      throw listenError(err, host, opts.mqttPort ?? 8883);
    });
    const ports: Ports = { api: apiPort, mqtt: mqttPort, http: httpPort };

    // The CLI follows the server to whatever port it got.
    const cli = JSON.parse(readFileSync(dir.cliJson, 'utf8')) as { token: string };
    writeCliJson(dir, `https://localhost:${apiPort}`, cli.token);
    writeFileSync(dir.portsJson, JSON.stringify(ports) + '\n');
    say(`certfleet listening: api https://localhost:${apiPort}  mqtt mqtts://localhost:${mqttPort}  http http://localhost:${httpPort}`);
    // Redis carries broker fan-out and revocation broadcast between nodes; this node runs alone until those land.
    if (opts.redis) say(`--redis ${opts.redis}: accepted; this release runs as a single node and sends nothing to Redis yet`);
    return { ports, services: s, dir, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The device endpoint on the mqtt port; returns the bound port. */
async function startMqtt(s: Services, tls: { key: string; cert: string }, port: number, host: string, closers: Array<() => Promise<unknown>>): Promise<number> {
  // An unknown certificate of an auto-registering CA is provisioned (JITP) or registered (JITR) on the spot.
  const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now, autoRegister: s.jit.register });
  const broker = await startBroker({
    host,
    port,
    tls,
    admission,
    policies: { policies: s.store, things: s.store, certificates: s.store, claims: s.store },
    connections: s.store,
    now: s.now,
    // Revocations, CA and policy changes reach connected devices through the bus (disconnect, reload).
    events: s.bus,
    // Fleet provisioning by claim on $certfleet/certificates/… and $certfleet/provisioning-templates/…
    // A rejection is the device's business (it gets the answer); a failure of ours goes to stderr.
    requests: [
      fleetProvisioningRequests(s.fleet.provisioning, { warn: () => {}, error: (o, m) => console.error(`certfleet: ${m}`, JSON.stringify(o)) }),
      // Renewal by the device on $certfleet/things/{thing}/certificate/renew and …/confirm (docs/device-protocol.md).
      renewalRequests(s.rotation.renewals, { warn: () => {}, error: (o, m) => console.error(`certfleet: ${m}`, JSON.stringify(o)) }),
      // Trust-bundle acknowledgements on $certfleet/things/{thing}/trust-bundle/ack (docs/device-protocol.md).
      trustBundleRequests(s.trustBundles),
    ],
  });
  closers.push(() => broker.close());
  // Certificates made for a claim whose ownership token expired unspent go (fleet-provisioning.ts).
  s.fleet.provisioning.start();
  // Rotation campaigns publish retained renew-required through the broker; old certificates retire after their grace period.
  await s.rotation.start(broker);
  closers.push(() => s.rotation.stop());
  // Trust-bundle changes go out retained to every thing, and again to a thing that connects without having acknowledged the current one.
  const detachBundles = s.trustBundles.attach(broker);
  closers.push(async () => detachBundles());
  // Certificate registered/activated/revoked, thing connected/disconnected on $certfleet/events/… (lifecycle-topics.ts).
  const unpublish = publishLifecycleEvents(s.bus, broker, s.now);
  closers.push(async () => unpublish());
  return broker.port;
}
