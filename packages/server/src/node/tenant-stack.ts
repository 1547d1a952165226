/**
 * One tenant's running stack: its services (store, signer, registry), its
 * API and device-facing HTTP apps, its MQTT device endpoint, and the timers
 * `serve` runs for it. A stack listens on nothing: the node's listeners
 * (listeners.ts) hand it the connections its server names select, so every
 * tenant, the default one included, is served the same way.
 */
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { Admission, startDeviceEndpoint, type DeviceEndpoint } from '../broker/index.js';
import type { DataDir } from '../config/data-dir.js';
import { publishLifecycleEvents } from '../events/lifecycle-topics.js';
import { buildApi } from '../http/api.js';
import { buildPublic } from '../http/public.js';
import { DEFAULT_AUDIT_INTERVAL_HOURS, SETTING_AUDIT_INTERVAL } from '../lifecycle/findings.js';
import { renewalRequests } from '../lifecycle/renewal-requests.js';
import { trustBundleRequests } from '../lifecycle/trust-bundle-requests.js';
import { fleetProvisioningRequests } from '../provisioning/mqtt-requests.js';
import type { Services } from '../services.js';

export interface TenantStackOptions {
  /** undefined: the default tenant (the node's own data set). */
  readonly name?: string;
  readonly services: Services;
  readonly dir: DataDir;
  /** The tenant's server certificate (leaf and intermediates) and key. */
  readonly tls: { readonly key: string; readonly cert: string };
  /** Base URL of this tenant's documents on the http port; goes into every certificate it issues from now on (CRL, OCSP). */
  readonly publicUrl: string;
  readonly logger?: boolean;
  /** Routes only this tenant's API has (the default tenant's tenant management). */
  readonly extraRoutes?: (app: FastifyInstance) => void;
}

export interface TenantStack {
  readonly name: string | undefined;
  readonly services: Services;
  readonly dir: DataDir;
  /** What the api and mqtt listeners serve to a client that selected this tenant. */
  readonly context: SecureContext;
  /** Listens on nothing: its `server` is given the tenant's connections (`server.emit('connection', tlsSocket)`). */
  readonly api: FastifyInstance;
  /** Listens on nothing: its `server` is given the tenant's requests on the http port. */
  readonly public: FastifyInstance;
  readonly devices: DeviceEndpoint;
  /** Hands an api-port connection to this tenant's API; it is closed with the tenant. */
  acceptApi(socket: Socket): void;
  close(): Promise<void>;
}

const warnNothing = () => {};
const toStderr = (o: Record<string, unknown>, m: string) => console.error(`certfleet: ${m}`, JSON.stringify(o));

export async function startTenantStack(o: TenantStackOptions): Promise<TenantStack> {
  const s = o.services;
  // The stack owns its services from here: they close last, with it.
  const closers: Array<() => Promise<unknown>> = [() => s.close()];
  const apiSockets = new Set<Socket>();
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    closers.length = 0;
  };
  try {
    // Webhook deliveries left in the queue by the last run go out now; services.close() stops the worker.
    s.webhooks.startWorker();
    // Audits run on a schedule (setting audit.interval-hours, default 24; 0 turns it off), their findings stored (lifecycle/findings.ts).
    s.auditFindings.schedule(Number((await s.store.getSetting(SETTING_AUDIT_INTERVAL)) ?? DEFAULT_AUDIT_INTERVAL_HOURS));
    await s.authorities.setPublicUrl(o.publicUrl);

    // No `https` option: TLS is the listener's, which has already picked this tenant by SNI.
    const api = await buildApi(s, { logger: o.logger ?? false });
    o.extraRoutes?.(api);
    await api.ready();
    closers.push(async () => {
      for (const sock of apiSockets) sock.destroy();
      await api.close();
    });
    const pub = await buildPublic(s);
    await pub.ready();
    closers.push(() => pub.close());

    // An unknown certificate of an auto-registering CA is provisioned (JITP) or registered (JITR) on the spot.
    const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now, autoRegister: s.jit.register });
    const devices = await startDeviceEndpoint({
      admission,
      policies: { policies: s.store, things: s.store, certificates: s.store, claims: s.store },
      connections: s.store,
      now: s.now,
      // Revocations, CA and policy changes reach connected devices through the bus (disconnect, reload).
      events: s.bus,
      // A rejection is the device's business (it gets the answer); a failure of ours goes to stderr.
      requests: [
        // Fleet provisioning by claim on $certfleet/certificates/… and $certfleet/provisioning-templates/…
        fleetProvisioningRequests(s.fleet.provisioning, { warn: warnNothing, error: toStderr }),
        // Renewal by the device on $certfleet/things/{thing}/certificate/renew and …/confirm (docs/device-protocol.md).
        renewalRequests(s.rotation.renewals, { warn: warnNothing, error: toStderr }),
        // Trust-bundle acknowledgements on $certfleet/things/{thing}/trust-bundle/ack (docs/device-protocol.md).
        trustBundleRequests(s.trustBundles),
      ],
    });
    closers.push(() => devices.close());
    // Certificates made for a claim whose ownership token expired unspent go (fleet-provisioning.ts).
    s.fleet.provisioning.start();
    // Rotation campaigns publish retained renew-required through the broker; old certificates retire after their grace period.
    await s.rotation.start(devices);
    closers.push(() => s.rotation.stop());
    // Trust-bundle changes go out retained to every thing, and again to a thing that connects without having acknowledged the current one.
    const detachBundles = s.trustBundles.attach(devices);
    closers.push(async () => detachBundles());
    // Certificate registered/activated/revoked, thing connected/disconnected on $certfleet/events/… (lifecycle-topics.ts).
    const unpublish = publishLifecycleEvents(s.bus, devices, s.now);
    closers.push(async () => unpublish());

    return {
      name: o.name,
      services: s,
      dir: o.dir,
      context: createSecureContext({ key: o.tls.key, cert: o.tls.cert, minVersion: 'TLSv1.2' }),
      api,
      public: pub,
      devices,
      acceptApi(socket) {
        apiSockets.add(socket);
        socket.once('close', () => apiSockets.delete(socket));
        api.server.emit('connection', socket);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
