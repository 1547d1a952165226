/**
 * Certificate rotation as one piece for the wiring: renewal by the device
 * (renewal.ts), renewal after expiry (renewal-after-expiry.ts), rotation
 * campaigns (campaigns.ts) and the campaign bookkeeping both renewal paths
 * share with EST re-enrollment (renewal-progress.ts). `serve` starts the
 * runner and the sweep once the broker is up: the campaign runner publishes
 * through it, the renewal sweep retires old certificates.
 */
import type { EventBus } from '../events/bus.js';
import type { Authorities } from '../registry/authorities.js';
import type { CertificateRegistry } from '../registry/certificate-registry.js';
import type { Issuance } from '../registry/issuance.js';
import type { Revoker } from '../revocation/revoker.js';
import type { Store } from '../store/index.js';
import { Campaigns, type RetainedPublisher } from './campaigns.js';
import { Renewals } from './renewal.js';
import { RenewalAfterExpiry } from './renewal-after-expiry.js';
import { RenewalProgress } from './renewal-progress.js';

export interface RotationServices {
  readonly renewals: Renewals;
  readonly campaigns: Campaigns;
  /** POST /api/v1/renew-expired and each CA's renewAfterExpiryDays. */
  readonly afterExpiry: RenewalAfterExpiry;
  /** Moves campaign items on for renewals made elsewhere (EST re-enrollment). */
  readonly progress: RenewalProgress;
  /** Runs the campaign runner (publishing through `publisher`) and the renewal sweep. */
  start(publisher: RetainedPublisher): Promise<void>;
  stop(): Promise<void>;
}

export interface RotationDeps {
  readonly store: Store;
  readonly issuance: Issuance;
  readonly authorities: Authorities;
  readonly certificates: CertificateRegistry;
  readonly revoker: Revoker;
  readonly bus: EventBus;
  readonly now: () => Date;
  readonly campaignTickMs?: number;
  readonly renewalSweepMs?: number;
}

export function rotationServices(d: RotationDeps): RotationServices {
  const progress = new RenewalProgress({ store: d.store, bus: d.bus });
  const renewals = new Renewals({
    progress,
    store: d.store,
    issuance: d.issuance,
    certificates: d.certificates,
    revoker: d.revoker,
    bus: d.bus,
    now: d.now,
    ...(d.renewalSweepMs !== undefined ? { sweepIntervalMs: d.renewalSweepMs } : {}),
  });
  const campaigns = new Campaigns({ store: d.store, authorities: d.authorities, bus: d.bus, now: d.now, ...(d.campaignTickMs !== undefined ? { tickMs: d.campaignTickMs } : {}) });
  const afterExpiry = new RenewalAfterExpiry({ store: d.store, authorities: d.authorities, renewals, now: d.now });
  return {
    renewals,
    campaigns,
    afterExpiry,
    progress,
    async start(publisher) {
      renewals.start();
      await campaigns.start(publisher);
    },
    async stop() {
      await campaigns.stop();
      await renewals.stop();
    },
  };
}
