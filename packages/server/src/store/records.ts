/**
 * Domain records the store hands out and takes in. camelCase, `Date` for
 * times, `Buffer` for DER and sealed keys; the snake_case rows and ISO-8601
 * text columns stay inside the store.
 */

export type CaKind = 'root' | 'intermediate' | 'external';
export type CaStatus = 'active' | 'inactive' | 'revoked';

export interface CaRecord {
  id: string;
  name: string;
  parentId: string | null;
  kind: CaKind;
  status: CaStatus;
  keyAlgorithm: string;
  subject: string;
  serial: string;
  certificateDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  pathLen: number | null;
  createdAt: Date;
}

/** What insertCa/createCaWithKey accept: the DER may be any byte view. */
export type NewCa = Omit<CaRecord, 'certificateDer'> & { certificateDer: Uint8Array };

export interface CaKeyRecord {
  caId: string;
  /** Which signer key store sealed the key, e.g. 'sealed-file' or 'pkcs11'. */
  keyStore: string;
  sealed: Buffer;
  createdAt: Date;
}

export interface NewCaKey {
  keyStore: string;
  sealed: Uint8Array;
}

/** Recorded before signing, so a crash after signing never leaves an unknown serial. */
export interface IssuanceIntent {
  serial: string;
  issuerId: string;
  profile: string;
  tbsDer: Uint8Array;
  createdAt: Date;
}

export type CertificateStatus =
  | 'active'
  | 'inactive'
  | 'revoked'
  | 'pending-activation'
  | 'pending-transfer';

export interface CertificateRecord {
  /** SHA-256 fingerprint of the DER, lowercase hex. */
  id: string;
  serial: string;
  issuerId: string;
  thingName: string | null;
  status: CertificateStatus;
  profile: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: string;
  der: Buffer;
  createdAt: Date;
  revokedAt: Date | null;
  revocationReason: string | null;
}

export type NewCertificate = Omit<CertificateRecord, 'der' | 'revokedAt' | 'revocationReason'> & {
  der: Uint8Array;
  revokedAt?: Date | null;
  revocationReason?: string | null;
};

export interface CertificateFilter {
  status?: CertificateStatus;
  thing?: string;
  issuerId?: string;
  /** Certificates whose notAfter is strictly before this instant (already expired included). */
  expiringBefore?: Date;
}

export interface PageRequest {
  limit: number;
  /** Opaque, from a previous page's `next`. */
  cursor?: string;
}

/**
 * 'created': by (createdAt, id), oldest first. 'expiry': by (notAfter, id),
 * soonest expiry first; served by the (not_after, id) and
 * (status, not_after, id) indexes, so a page costs the same whatever the
 * fleet size. Defaults to 'expiry' when expiringBefore is given, else 'created'.
 */
export type CertificateOrder = 'created' | 'expiry';

export type CertificateQuery = CertificateFilter & PageRequest & { order?: CertificateOrder };

export interface Page<T> {
  items: T[];
  /** Present only when more items may follow. */
  next?: string;
}

export type ThingAttributes = Record<string, string>;

export interface ThingRecord {
  name: string;
  attributes: ThingAttributes;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewThing {
  name: string;
  attributes?: ThingAttributes;
}

export interface TokenRecord {
  id: string;
  name: string;
  /** Only the hash is stored; the token itself is shown once and never kept. */
  tokenHash: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export type NewToken = Omit<TokenRecord, 'revokedAt' | 'lastUsedAt'>;

/** Read-write options that are not in CaRecord (kept apart so CaRecord's shape is unchanged for v1 callers). */
export interface CaProvisioning {
  caId: string;
  /** JITP/JITR: a device certificate signed by this CA is registered on first connection. */
  autoRegistration: boolean;
  /** Opaque to the store: the provisioning module decides whether it names a template or holds its body. */
  provisioningTemplate: string | null;
}

/** Fields left out are unchanged; provisioningTemplate: null clears it. */
export interface CaProvisioningUpdate {
  autoRegistration?: boolean;
  provisioningTemplate?: string | null;
}

export interface ThingUpdate {
  /** Replaces the whole attribute set. */
  attributes: ThingAttributes;
}

export interface ThingGroupRecord {
  name: string;
  parentName: string | null;
  description: string | null;
  attributes: ThingAttributes;
  createdAt: Date;
}

export interface NewThingGroup {
  name: string;
  parent?: string | null;
  description?: string | null;
  attributes?: ThingAttributes;
}

/** A group a thing belongs to, directly (depth 0) or through a child group (depth n: n levels above a direct group). */
export interface ThingGroupAncestor extends ThingGroupRecord {
  depth: number;
}

/** A policy document as JSON; its grammar belongs to the registry and the broker, not the store. */
export type PolicyDocument = Record<string, unknown>;

export interface PolicyVersionSummary {
  version: number;
  createdAt: Date;
  isDefault: boolean;
}

export interface PolicyRecord {
  name: string;
  defaultVersion: number;
  /** Oldest first. */
  versions: PolicyVersionSummary[];
  /** The default version's document. */
  document: PolicyDocument;
  createdAt: Date;
  updatedAt: Date;
}

export interface PolicySummary {
  name: string;
  defaultVersion: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface PolicyVersionRecord {
  policyName: string;
  version: number;
  document: PolicyDocument;
  createdAt: Date;
  isDefault: boolean;
}

export type PolicyTargetType = 'certificate' | 'group';

/** A certificate (by id) or a thing group (by name). */
export interface PolicyTarget {
  type: PolicyTargetType;
  id: string;
}

export interface PolicyAttachment {
  policyName: string;
  target: PolicyTarget;
  createdAt: Date;
}

/** What the broker evaluates on connect: the default version of each policy that applies. */
export interface EffectivePolicy {
  name: string;
  version: number;
  document: PolicyDocument;
}

export interface CertificateStatusChange {
  /** Free text for the history (why), e.g. "device replaced". */
  reason?: string | null;
  actor: string;
  at: Date;
  /** RFC 5280 reason name, stored when the new status is 'revoked'. */
  revocationReason?: string | null;
}

export interface CertificateStatusEntry {
  certificateId: string;
  status: CertificateStatus;
  reason: string | null;
  actor: string;
  at: Date;
}

/** An old certificate a replacement revokes, compare-and-set like setCertificateStatus. */
export interface ReplacedCertificate {
  id: string;
  /** The status the decider saw; the whole replacement fails if it changed since. */
  expectedStatus: CertificateStatus;
  /** RFC 5280 reason name. */
  revocationReason: string;
}

/** Device replacement (CertificateReplacementStore, replacement.ts). */
export interface CertificateReplacement {
  /** Signed (and journalled) but not yet stored; its thingName (required) is the thing being replaced. */
  newCertificate: NewCertificate;
  /** At least one, each on that thing. */
  revoke: readonly ReplacedCertificate[];
  /** Attach to the new certificate every policy attached directly to a revoked one. */
  copyPolicies: boolean;
  /** When the old certificates are revoked. */
  at: Date;
  /** For the status history of every certificate involved. */
  actor: string;
  /** The old certificates' history reason; default "replaced by <new id>". */
  note?: string;
}

export interface CertificateReplacementResult {
  /** The old certificates as now stored (revoked), in the order given. */
  revoked: CertificateRecord[];
  /** Policies attached to the new certificate, by name. */
  policies: string[];
}

/**
 * Just-in-time registration of a device certificate on its first connection
 * (AutoRegistrationStore, auto-registration.ts; provisioning/jit.ts decides).
 */
export interface AutoRegistration {
  /** The device's own certificate; a thingName that does not exist yet is created. */
  certificate: NewCertificate;
  /** Attributes of the thing if it is created here; an existing thing keeps its own. */
  thingAttributes?: ThingAttributes;
  /** Groups the thing is added to (it may already be in some). Needs a thingName. */
  groups: readonly string[];
  /** Policies attached to the certificate. */
  policies: readonly string[];
}

export interface AutoRegistrationResult {
  certificate: CertificateRecord;
  /** False when the certificate was already registered: nothing was written. */
  registered: boolean;
  /** The thing was created by this registration (not reused). */
  thingCreated: boolean;
}

/** One MQTT connection of a device, as the broker recorded it. */
export interface ConnectionRecord {
  /** Chosen by the broker (a UUID). */
  id: string;
  certificateId: string;
  /** The MQTT client identifier from CONNECT. */
  clientId: string;
  /** `address:port` as the broker saw it. */
  remoteAddress: string;
  connectedAt: Date;
  /** Null while the connection is open. */
  disconnectedAt: Date | null;
  /** Why it ended, e.g. 'client-disconnect', 'certificate-revoked', 'node-restart'; null while open. */
  disconnectReason: string | null;
  /** The node whose broker holds (or held) the connection. */
  nodeId: string;
}

export type NewConnection = Omit<ConnectionRecord, 'disconnectedAt' | 'disconnectReason'>;

/** Newest first, by (connectedAt, id). */
export interface ConnectionQuery extends PageRequest {
  certificateId?: string;
  /** true: only open connections; false: only closed ones; absent: both. */
  open?: boolean;
}
