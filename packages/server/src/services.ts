/**
 * The wired graph of one certfleet node: store, signer, registry. Built once
 * at start-up from validated configuration (STYLE.md rule 6); the CLI and
 * tests are the only callers.
 */
import { EventBus } from './events/bus.js';
import { AuditFindings } from './lifecycle/findings.js';
import { IssuerRotation } from './lifecycle/issuer-rotation.js';
import { TrustBundles } from './lifecycle/trust-bundle.js';
import { Webhooks } from './events/webhooks.js';
import { JustInTimeProvisioning } from './provisioning/jit.js';
import { fleetServices, type FleetServices } from './provisioning/fleet.js';
import { rotationServices, type RotationServices } from './lifecycle/rotation.js';
import { estServices, type EstServices } from './provisioning/est-services.js';
import { Authorities } from './registry/authorities.js';
import { CertificateRegistration } from './registry/certificate-registration.js';
import { ExternalCas } from './registry/external-cas.js';
import { RegistrationCodes } from './registry/registration-codes.js';
import { CertificateRegistry } from './registry/certificate-registry.js';
import { PolicyRegistry } from './registry/policy-registry.js';
import { DeviceReplacement } from './registry/replacement.js';
import { ThingRegistry } from './registry/thing-registry.js';
import { CrlPublisher, type CrlPublisherOptions } from './revocation/crl-publisher.js';
import { OcspResponder, type OcspResponderOptions } from './revocation/ocsp-responder.js';
import { Revoker } from './revocation/revoker.js';
import { Issuance } from './registry/issuance.js';
import { BulkIssuance } from './registry/bulk-issuance.js';
import { Tokens } from './registry/tokens.js';
import { sealerFor } from './signer/sealer.js';
import { Signer } from './signer/signer.js';
import { openStore, type Store } from './store/index.js';

export interface ServicesOptions {
  /** Database URL (SQLite path or postgres://…). */
  readonly database: string;
  /** Key file used when no passphrase is given. */
  readonly masterKeyFile: string;
  readonly passphrase?: string;
  /** Create the key file if missing (init only). */
  readonly createMasterKey?: boolean;
  readonly now?: () => Date;
  /** PostgreSQL schema (tests). */
  readonly schema?: string;
  readonly crl?: CrlPublisherOptions;
  readonly ocsp?: OcspResponderOptions;
}

export interface Services {
  readonly store: Store;
  readonly signer: Signer;
  readonly authorities: Authorities;
  readonly issuance: Issuance;
  readonly tokens: Tokens;
  readonly things: ThingRegistry;
  readonly policies: PolicyRegistry;
  readonly certificates: CertificateRegistry;
  readonly revoker: Revoker;
  /** Device replacement: a new certificate for a thing, the old ones revoked, in one step. */
  readonly replacement: DeviceReplacement;
  readonly crls: CrlPublisher;
  readonly ocsp: OcspResponder;
  /** Changes the registry made, for the broker, webhooks and other nodes. */
  readonly bus: EventBus;
  /** Webhooks: every matching bus event is enqueued from the start; `serve` starts the delivery worker. */
  readonly webhooks: Webhooks;
  /** Just-in-time provisioning and registration: the broker's auto-registration hook. */
  readonly jit: JustInTimeProvisioning;
  /** Fleet provisioning by claim: templates, claim credentials, the device flow (`serve` starts its sweep). */
  readonly fleet: FleetServices;
  /** Manufacturing batches: many CSRs signed and stored with one journal and one store transaction. */
  readonly bulkIssuance: BulkIssuance;
  /** Renewal by the device over MQTT and rotation campaigns (`serve` starts the runner and the retirement sweep). */
  readonly rotation: RotationServices;
  /** EST one-time enrollment secrets, the re-enrollment grace period (its sweep runs from here), bootstrap by network identity. */
  readonly est: EstServices;
  /** CAs made outside certfleet, registered with proof of possession (or sni-only), and their registration codes. */
  readonly externalCas: ExternalCas;
  readonly registrationCodes: RegistrationCodes;
  /** Device certificates made elsewhere, registered under their registered CA. */
  readonly certificateRegistration: CertificateRegistration;
  /** Issuer rotation: cross-signing, dependents of a CA, retirement. */
  readonly issuerRotation: IssuerRotation;
  /** The versioned trust bundle and each thing's acknowledgement (`serve` attaches the broker). */
  readonly trustBundles: TrustBundles;
  /** Audit runs and their findings, stored (`serve` schedules runs). */
  readonly auditFindings: AuditFindings;
  readonly now: () => Date;
  close(): Promise<void>;
}

export async function openServices(opts: ServicesOptions): Promise<Services> {
  const now = opts.now ?? (() => new Date());
  const sealer = sealerFor(opts.masterKeyFile, opts.passphrase, opts.createMasterKey ?? false);
  const store = await openStore(opts.database, { now, ...(opts.schema ? { schema: opts.schema } : {}) });
  const bus = new EventBus();
  const webhooks = new Webhooks({ store, bus, now });
  webhooks.startDispatching();
  const jit = new JustInTimeProvisioning({ cas: store, store, bus, now });
  const signer = new Signer({ keys: store, journal: store, sealer, now });
  const authorities = new Authorities({ cas: store, settings: store, signer, bus, now, crossCertificates: store });
  const issuerRotation = new IssuerRotation({ store, authorities, signer, now });
  const trustBundles = new TrustBundles({ store, authorities, bus, now });
  const auditFindings = new AuditFindings({ audit: { cas: store, certificates: store, policies: store, connections: store }, store, bus, now });
  const issuance = new Issuance({ certificates: store, things: store, authorities, signer, now });
  const bulkIssuance = new BulkIssuance({ store, authorities, signer, now });
  const tokens = new Tokens(store, now);
  const things = new ThingRegistry({ things: store, groups: store, bus });
  const policies = new PolicyRegistry({ policies: store, certificates: store, groups: store, bus });
  const certificates = new CertificateRegistry({ certificates: store, cas: store, things: store, policies: store, bus, now });
  const revoker = new Revoker({ certificates, authorities, settings: store, now });
  const replacement = new DeviceReplacement({ issuance, things: store, certificates: store, replacements: store, bus, now });
  const fleet = fleetServices({ store, issuance, bus, now });
  const rotation = rotationServices({ store, issuance, authorities, certificates, revoker, bus, now });
  const est = estServices({ store, authorities, signer, templates: fleet.templates, bus, now });
  est.grace.start();
  est.grace.follow(rotation.progress);
  const crls = new CrlPublisher({ certificates: store, cas: store, settings: store, authorities, signer, revoker, bus, now }, opts.crl ?? {});
  const ocsp = new OcspResponder({ certificates: store, cas: store, authorities, signer, revoker, bus, now }, opts.ocsp ?? {});
  // Revocation keeps its caches right from the first change; the timers it starts do not hold the process open.
  crls.start();
  ocsp.start();
  const externalCas = new ExternalCas({ store, bus, now });
  const registrationCodes = new RegistrationCodes({ store, now });
  const certificateRegistration = new CertificateRegistration({ cas: store, certificates: store, bus, now });
  const close = async () => {
    auditFindings.stop();
    crls.stop();
    ocsp.stop();
    fleet.provisioning.stop();
    await rotation.stop();
    est.grace.stop();
    await webhooks.stop();
    await store.close();
  };
  return { bulkIssuance, issuerRotation, trustBundles, auditFindings, rotation, est, externalCas, registrationCodes, certificateRegistration, fleet, webhooks, jit, store, signer, authorities, issuance, tokens, things, policies, certificates, revoker, replacement, crls, ocsp, bus, now, close };
}
