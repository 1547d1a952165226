/**
 * Certificate rotation as one piece for the wiring: renewal by the device
 * (renewal.ts) and rotation campaigns (campaigns.ts). `serve` starts both
 * once the broker is up: the campaign runner publishes through it, the
 * renewal sweep retires old certificates.
 */
import type { EventBus } from '../events/bus.js';
import type { Authorities } from '../registry/authorities.js';
import type { CertificateRegistry } from '../registry/certificate-registry.js';
import type { Issuance } from '../registry/issuance.js';
import type { Revoker } from '../revocation/revoker.js';
import type { Store } from '../store/index.js';
import { Campaigns, type RetainedPublisher } from './campaigns.js';
import { Renewals } from './renewal.js';

export interface RotationServices {
  readonly renewals: Renewals;
  readonly campaigns: Campaigns;
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
  const renewals = new Renewals({
    store: d.store,
    issuance: d.issuance,
    certificates: d.certificates,
    revoker: d.revoker,
    bus: d.bus,
    now: d.now,
    ...(d.renewalSweepMs !== undefined ? { sweepIntervalMs: d.renewalSweepMs } : {}),
  });
  const campaigns = new Campaigns({ store: d.store, authorities: d.authorities, bus: d.bus, now: d.now, ...(d.campaignTickMs !== undefined ? { tickMs: d.campaignTickMs } : {}) });
  return {
    renewals,
    campaigns,
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
