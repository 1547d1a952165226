/** EST enrollment secrets, the re-enrollment grace period and network bootstrap, wired (services.ts). */
import type { EventBus } from '../events/index.js';
import type { Authorities } from '../registry/authorities.js';
import { Issuance } from '../registry/issuance.js';
import type { Signer } from '../signer/signer.js';
import type { CertificateStore, EnrollmentStore, ThingStore } from '../store/index.js';
import { EnrollmentSecrets } from './enrollment-secrets.js';
import { NetworkBootstrap } from './network-bootstrap.js';
import { parseGrace, ReenrollmentGrace } from './reenrollment-grace.js';
import type { ProvisioningTemplates } from './template-registry.js';

export interface EstServices {
  readonly secrets: EnrollmentSecrets;
  readonly grace: ReenrollmentGrace;
  readonly networkBootstrap: NetworkBootstrap;
}

export interface EstServicesDeps {
  readonly store: EnrollmentStore & Pick<ThingStore, 'getThing'> & Pick<CertificateStore, 'getCertificate' | 'insertCertificate'>;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly templates: Pick<ProvisioningTemplates, 'load'>;
  readonly bus: Pick<EventBus, 'emit' | 'on'>;
  readonly now: () => Date;
  /** Default: CERTFLEET_EST_REENROLL_GRACE (e.g. `7d`, `36h`), else 7 days. */
  readonly reenrollGraceMs?: number;
}

export function estServices(deps: EstServicesDeps): EstServices {
  const env = process.env.CERTFLEET_EST_REENROLL_GRACE;
  const graceMs = deps.reenrollGraceMs ?? (env ? parseGrace(env) : undefined);
  // Enrollment by secret and network bootstrap may create the device's thing; they do so in the
  // store transaction that stores its certificate (store/enrollment.ts), where the foreign key
  // checks it. Issuance's own "does the thing exist" check is therefore told yes here: only the
  // name matters to signing (it becomes the CN), and nothing is handed out before that commit.
  const issuance = new Issuance({
    certificates: deps.store,
    things: { getThing: async (name) => (await deps.store.getThing(name)) ?? { name, attributes: {}, createdAt: deps.now(), updatedAt: deps.now() } },
    authorities: deps.authorities,
    signer: deps.signer,
    now: deps.now,
  });
  return {
    secrets: new EnrollmentSecrets({ store: deps.store, templates: deps.templates, issuance, bus: deps.bus, now: deps.now }),
    grace: new ReenrollmentGrace({ store: deps.store, bus: deps.bus, now: deps.now, ...(graceMs !== undefined ? { graceMs } : {}) }),
    networkBootstrap: new NetworkBootstrap({ store: deps.store, templates: deps.templates, issuance, bus: deps.bus, now: deps.now }),
  };
}
