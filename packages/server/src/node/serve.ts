/**
 * A running certfleet node: HTTPS API on the api port, MQTT over mutual TLS
 * on the mqtt port, plain HTTP for device-facing documents on the http port.
 * `DIR/ports.json` is written only once all three listen.
 *
 * The node is its listeners (listeners.ts, broker/listener.ts) and the stacks
 * of its tenants (tenant-stack.ts): the node's own data set is the default
 * tenant, and every tenant listed in DIR/tenants.json is another (tenants.ts),
 * selected on the api and mqtt ports by the TLS server name (RFC 6066 §3).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { DEFAULT_LIMITS, startDeviceListener } from '../broker/index.js';
import { dataDir, isInitialised, readNodeConfig, type DataDir } from '../config/data-dir.js';
import { tenantRoutes } from '../http/routes/tenants.js';
import { openServices, type Services } from '../services.js';
import { sniCallback } from '../tenancy/sni-router.js';
import { initDataDir, writeCliJson } from './init.js';
import { listenError, startApiListener, startPublicListener, type Listening } from './listeners.js';
import { startTenantStack, type TenantStack } from './tenant-stack.js';
import { Tenancy } from './tenants.js';
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
  /** The default tenant's (the node's own data set). */
  readonly services: Services;
  readonly dir: DataDir;
  readonly tenancy: Tenancy;
  close(): Promise<void>;
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
  let publicBase = '';
  let apiPort = 0;
  const tenancy = new Tenancy({
    root: dir,
    database,
    ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
    publicBase: () => publicBase,
    apiPort: () => apiPort,
    logger: opts.logger ?? false,
  });
  let node: TenantStack | undefined;
  const listeners: Listening[] = [];
  let mqtt: Awaited<ReturnType<typeof startDeviceListener>> | undefined;
  // Listeners first, so nothing new arrives; then every tenant's stack ends its sessions (recorded as a shutdown) before the mqtt sockets go.
  const close = async () => {
    for (const l of listeners.splice(0)) await l.close().catch(() => {});
    const stacks = async () => {
      await tenancy.closeAll();
      if (node) await node.close().catch(() => {});
      else await s.close().catch(() => {});
    };
    if (mqtt) await mqtt.close(stacks).catch(() => {});
    else await stacks();
  };
  try {
    const tls = await serverTls(s, dir);
    // The http port first: its URL goes into every certificate issued from now on (CRL, OCSP).
    const pub = await startPublicListener({ host, port: opts.httpPort ?? 8080, fallback: () => tenancy.fallback, tenant: (name) => tenancy.stack(name) });
    listeners.push(pub);
    publicBase = opts.publicUrl ?? `http://localhost:${pub.port}`;
    node = await startTenantStack({ services: s, dir, tls, publicUrl: publicBase, logger: opts.logger ?? false, extraRoutes: (app) => tenantRoutes(app, s, tenancy) });
    tenancy.fallback = node;

    // One listener per port for every tenant: the server name picks the tenant's certificate and stack.
    const sni = sniCallback((servername) => tenancy.router.route(servername).value?.context);
    const api = await startApiListener({ host, port: opts.apiPort ?? 8443, tls, sniCallback: sni, route: (socket) => tenancy.route(socket.servername) });
    listeners.push(api);
    apiPort = api.port;
    mqtt = await startDeviceListener({
      host,
      port: opts.mqttPort ?? 8883,
      tls,
      sniCallback: sni,
      handshakeTimeoutMs: DEFAULT_LIMITS.handshakeTimeoutMs,
      // stderr: stdout carries the operator lines `certfleet serve` prints.
      log: pino({ name: 'certfleet-broker' }, pino.destination(2)),
      route: (socket) => tenancy.route(socket.servername)?.devices,
    }).catch((err: unknown) => {
      throw listenError(err, host, opts.mqttPort ?? 8883);
    });
    await tenancy.openAll();
    const ports: Ports = { api: apiPort, mqtt: mqtt.port, http: pub.port };

    // The CLI follows the server to whatever port it got.
    const cli = JSON.parse(readFileSync(dir.cliJson, 'utf8')) as { token: string };
    writeCliJson(dir, `https://localhost:${apiPort}`, cli.token);
    writeFileSync(dir.portsJson, JSON.stringify(ports) + '\n');
    say(`certfleet listening: api https://localhost:${apiPort}  mqtt mqtts://localhost:${mqtt.port}  http http://localhost:${pub.port}`);
    const tenants = tenancy.list();
    if (tenants.length > 0) say(`tenants: ${tenants.map((t) => `${t.name} (${t.sniHosts.join(', ')})`).join('; ')}`);
    // Redis carries broker fan-out and revocation broadcast between nodes; this node runs alone until those land.
    if (opts.redis) say(`--redis ${opts.redis}: accepted; this release runs as a single node and sends nothing to Redis yet`);
    return { ports, services: s, dir, tenancy, close };
  } catch (err) {
    await close();
    throw err;
  }
}
