/** Fleet provisioning by claim, wired: templates, claim credentials, the device flow and its MQTT edge. */
import type { EventBus } from '../events/index.js';
import type { Issuance } from '../registry/issuance.js';
import type { CertificateStore, ClaimStore, ProvisioningStore } from '../store/index.js';
import { ClaimCredentials } from './claims.js';
import { FleetProvisioning } from './fleet-provisioning.js';
import type { HookCaller } from './hook.js';
import { ProvisioningTemplates } from './template-registry.js';

export interface FleetServices {
  readonly templates: ProvisioningTemplates;
  readonly claims: ClaimCredentials;
  readonly provisioning: FleetProvisioning;
}

export interface FleetDeps {
  readonly store: ProvisioningStore & ClaimStore & Pick<CertificateStore, 'getCertificate'>;
  readonly issuance: Pick<Issuance, 'fromCsr' | 'withGeneratedKey'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
  readonly hook?: HookCaller;
}

export function fleetServices(deps: FleetDeps): FleetServices {
  const templates = new ProvisioningTemplates(deps.store);
  const claims = new ClaimCredentials({ store: deps.store, issuance: deps.issuance });
  const provisioning = new FleetProvisioning({
    store: deps.store,
    issuance: deps.issuance,
    templates,
    bus: deps.bus,
    now: deps.now,
    ...(deps.hook ? { hook: deps.hook } : {}),
    onSweepError: (err) => console.error('certfleet: fleet provisioning sweep failed:', err),
  });
  return { templates, claims, provisioning };
}
