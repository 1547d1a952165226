import type { AuditEntry, AuditInput, AuditQuery, AuditVerification } from './audit-records.js';
import type { ConnectionWrite, ConnectionWriteFailure } from './connections.js';
import type {
  CaKeyRecord,
  CaProvisioning,
  CaProvisioningUpdate,
  CaRecord,
  CaStatus,
  CertificateFilter,
  CertificateQuery,
  CertificateRecord,
  CertificateReplacement,
  CertificateReplacementResult,
  CertificateStatus,
  CertificateStatusChange,
  CertificateStatusEntry,
  ConnectionQuery,
  ConnectionRecord,
  EffectivePolicy,
  IssuanceIntent,
  NewCa,
  NewCaKey,
  NewCertificate,
  NewConnection,
  NewThing,
  NewThingGroup,
  NewToken,
  Page,
  PageRequest,
  PolicyAttachment,
  PolicyDocument,
  PolicyRecord,
  PolicySummary,
  PolicyTarget,
  PolicyVersionRecord,
  ThingGroupAncestor,
  ThingGroupRecord,
  ThingRecord,
  ThingUpdate,
  TokenRecord,
} from './records.js';
import type { AutoRegistration, AutoRegistrationResult } from './records.js';
import type { BulkRegistration, BulkRegistrationResult } from './bulk.js';

/*
 * One narrow interface per consumer (STYLE.md, after Boulder's storage
 * authority): a module that only needs to read certificates is handed a
 * CertificateStore, never the whole Store. Lookups return `undefined` for a
 * missing row; the caller decides whether that is an error. Writes throw
 * CertfleetError: 'conflict' on a duplicate, 'not-found' on a missing
 * referenced row, 'bad-request' on input the schema cannot hold,
 * 'unavailable' when the database cannot be reached or is busy,
 * 'invalid-state' when the change is refused by the current state (a policy
 * still attached, a certificate not in the expected status).
 *
 * Every mutating method takes an optional last `audit` argument: the entry is
 * appended to the hash-chained audit log in the same transaction as the
 * change (audit.ts). Not audited, by design: recordIntent (the journal is
 * its own evidence), touchToken and putSetting (bookkeeping).
 */

export interface CaStore {
  insertCa(ca: NewCa, audit?: AuditInput): Promise<void>;
  getCa(id: string): Promise<CaRecord | undefined>;
  getCaByName(name: string): Promise<CaRecord | undefined>;
  /** All CAs, oldest first (so roots come before what they signed). */
  listCas(): Promise<CaRecord[]>;
  setCaStatus(id: string, status: CaStatus, audit?: AuditInput): Promise<void>;
}

/** CA settings for just-in-time provisioning and registration (the provisioning module). */
export interface CaProvisioningStore {
  getCaProvisioning(caId: string): Promise<CaProvisioning | undefined>;
  /** Returns the settings after the update; 'not-found' for an unknown CA. */
  updateCa(caId: string, update: CaProvisioningUpdate, audit?: AuditInput): Promise<CaProvisioning>;
}

/** Only the signer holds this one: sealed CA keys never leave it. */
export interface CaKeyStore {
  /** Insert-only: a CA's key is never replaced (that would orphan what it signed). */
  putCaKey(caId: string, keyStore: string, sealed: Uint8Array, audit?: AuditInput): Promise<void>;
  getCaKey(caId: string): Promise<CaKeyRecord | undefined>;
  /** The CA row and its sealed key in one transaction: never a CA without its key. */
  createCaWithKey(ca: NewCa, key: NewCaKey, audit?: AuditInput): Promise<void>;
}

export interface IssuanceJournal {
  /** Throws 'conflict' if the serial was ever recorded: a serial is never reused. */
  recordIntent(intent: IssuanceIntent): Promise<void>;
  /** A batch's serials in one transaction: all recorded, or none ('conflict' if any was ever recorded). */
  recordIntents(intents: readonly IssuanceIntent[]): Promise<void>;
  hasSerial(serial: string): Promise<boolean>;
}

/** Manufacturing batches (bulk.ts): one transaction per batch for what the one-at-a-time path writes per device. */
export interface BulkIssuanceStore {
  /** Non-revoked certificates held by these things (a resumed batch finds what it was already given). */
  liveCertificatesOfThings(names: readonly string[]): Promise<CertificateRecord[]>;
  /** All or nothing; see bulk.ts registerBulk. */
  registerBulk(registration: BulkRegistration): Promise<BulkRegistrationResult>;
}

export interface CertificateStore {
  /**
   * The certificate and the first entry of its status history, in one
   * transaction; 'not-found' if the thing or issuer does not exist,
   * 'conflict' on a duplicate id or serial. `audit` is optional: this is the
   * issuance hot path, and issuance is usually audited by its caller's action.
   */
  insertCertificate(certificate: NewCertificate, audit?: AuditInput): Promise<void>;
  getCertificate(id: string): Promise<CertificateRecord | undefined>;
  getCertificateBySerial(serial: string): Promise<CertificateRecord | undefined>;
  /** Keyset pagination ordered by query.order (records.ts, CertificateOrder); a bad cursor is 'bad-request'. */
  listCertificates(query: CertificateQuery): Promise<Page<CertificateRecord>>;
  countCertificates(filter?: CertificateFilter): Promise<number>;
}

/**
 * Status changes are compare-and-set: the registry decides which transitions
 * are allowed, the store only guarantees that the status was still `from`.
 */
export interface CertificateLifecycleStore {
  /** 'invalid-state' if the status is no longer `from`; writes the history entry; returns the updated record. */
  setCertificateStatus(
    id: string,
    from: CertificateStatus,
    to: CertificateStatus,
    change: CertificateStatusChange,
    audit?: AuditInput,
  ): Promise<CertificateRecord>;
  /** No-op if already on that thing; 'invalid-state' if on another one. */
  attachCertificateToThing(id: string, thing: string, audit?: AuditInput): Promise<void>;
  detachCertificate(id: string, audit?: AuditInput): Promise<void>;
  /** Oldest first. */
  certificateHistory(id: string): Promise<CertificateStatusEntry[]>;
}

/** Device replacement: the new certificate in and the old ones out, in one transaction (replacement.ts). */
export interface CertificateReplacementStore {
  /**
   * All or nothing: inserts the new certificate (and its first history
   * entry), revokes each old one by compare-and-set on its status and its
   * thing (with history), copies their policy attachments if asked, and
   * appends `audit`. 'invalid-state' if an old certificate changed status or
   * is not on the new certificate's thing, 'not-found' for an unknown one or
   * issuer, 'conflict' on a duplicate id or serial.
   */
  replaceCertificates(replacement: CertificateReplacement, audit?: AuditInput): Promise<CertificateReplacementResult>;
}

export interface ThingStore {
  createThing(thing: NewThing, audit?: AuditInput): Promise<ThingRecord>;
  getThing(name: string): Promise<ThingRecord | undefined>;
  /** Ordered by name. */
  listThings(page: PageRequest): Promise<Page<ThingRecord>>;
  /** Replaces the attributes. */
  updateThing(name: string, update: ThingUpdate, audit?: AuditInput): Promise<ThingRecord>;
  /** 'invalid-state' while certificates are attached; group memberships go with the thing. */
  deleteThing(name: string, audit?: AuditInput): Promise<void>;
}

/** Thing groups: a forest at most 16 levels deep. */
export interface ThingGroupStore {
  /** 'not-found' for a missing parent, 'invalid-state' if it would be deeper than 16 levels. */
  createGroup(group: NewThingGroup, audit?: AuditInput): Promise<ThingGroupRecord>;
  getGroup(name: string): Promise<ThingGroupRecord | undefined>;
  /** Ordered by name. */
  listGroups(page: PageRequest): Promise<Page<ThingGroupRecord>>;
  /** Moves the group and its subtree; null makes it a root. 'invalid-state' on a cycle or beyond 16 levels. */
  setGroupParent(name: string, parent: string | null, audit?: AuditInput): Promise<ThingGroupRecord>;
  /** 'invalid-state' while it has child groups; memberships and policy attachments go with it. */
  deleteGroup(name: string, audit?: AuditInput): Promise<void>;
  addThingToGroup(group: string, thing: string, audit?: AuditInput): Promise<void>;
  removeThingFromGroup(group: string, thing: string, audit?: AuditInput): Promise<void>;
  /** Direct members, ordered by name. */
  listGroupMembers(group: string, page: PageRequest): Promise<Page<ThingRecord>>;
  /** Direct groups (depth 0) and all their ancestors, nearest first. */
  groupsOfThing(thing: string): Promise<ThingGroupAncestor[]>;
}

/** Versioned policies and their attachments (the registry). */
export interface PolicyStore {
  /** Version 1, the default. */
  createPolicy(name: string, document: PolicyDocument, audit?: AuditInput): Promise<PolicyRecord>;
  getPolicy(name: string): Promise<PolicyRecord | undefined>;
  getPolicyVersion(name: string, version: number): Promise<PolicyVersionRecord | undefined>;
  /** Ordered by name. */
  listPolicies(page: PageRequest): Promise<Page<PolicySummary>>;
  /** 'invalid-state' when 5 versions exist (delete one first). */
  createPolicyVersion(
    name: string,
    document: PolicyDocument,
    options?: { setDefault?: boolean },
    audit?: AuditInput,
  ): Promise<PolicyVersionRecord>;
  setDefaultPolicyVersion(name: string, version: number, audit?: AuditInput): Promise<void>;
  /** 'invalid-state' for the default version. */
  deletePolicyVersion(name: string, version: number, audit?: AuditInput): Promise<void>;
  /** 'invalid-state' while attached. */
  deletePolicy(name: string, audit?: AuditInput): Promise<void>;
  /** 'conflict' if already attached. */
  attachPolicy(name: string, target: PolicyTarget, audit?: AuditInput): Promise<void>;
  detachPolicy(name: string, target: PolicyTarget, audit?: AuditInput): Promise<void>;
  listAttachments(name: string, page: PageRequest): Promise<Page<PolicyAttachment>>;
  /** Attached directly to this certificate or group (not inherited), by name. */
  policiesOfTarget(target: PolicyTarget): Promise<string[]>;
}

/** The broker's only policy read, on connect. */
export interface EffectivePolicyStore {
  /** Default documents of the policies on the certificate and on every group (and ancestor) of its thing. */
  effectivePolicies(certificateId: string): Promise<EffectivePolicy[]>;
}

/**
 * Device connections, written by the broker as they happen (not audited:
 * bookkeeping, like touchToken). Each write is one statement, so a record
 * is either written whole or not at all.
 */
export interface ConnectionStore {
  /** 'conflict' on a duplicate id. */
  recordConnect(connection: NewConnection): Promise<void>;
  /** Closes an open row; a row already closed keeps its first close. 'not-found' for an unknown id. */
  recordDisconnect(id: string, at: Date, reason: string): Promise<void>;
  /** Several connects and disconnects in order, in one transaction; a write that cannot apply is reported and skipped, not thrown. */
  recordConnectionWrites(writes: readonly ConnectionWrite[]): Promise<ConnectionWriteFailure[]>;
  /** Newest first; a bad cursor is 'bad-request'. */
  listConnections(query: ConnectionQuery): Promise<Page<ConnectionRecord>>;
  /** The certificate's open connections, on any node, newest first. */
  openConnectionsByCertificate(certificateId: string): Promise<ConnectionRecord[]>;
  /**
   * Closes every row `nodeId` left open (a node that crashed or was killed
   * and starts again under the same id); returns how many.
   */
  closeOpenConnections(nodeId: string, at: Date, reason: string): Promise<number>;
}

/** Just-in-time provisioning and registration on a device's first connection (auto-registration.ts). */
export interface AutoRegistrationStore {
  /**
   * All or nothing, with `audit`: creates the thing if missing, inserts the
   * certificate (and its first history entry), attaches the policies to it
   * and adds the thing to the groups it is not in yet. An already registered
   * certificate is returned untouched (registered: false); 'conflict' when a
   * concurrent registration of it committed first (read it again) or its
   * serial is taken; 'not-found' for a missing policy, group or issuer.
   */
  autoRegisterCertificate(registration: AutoRegistration, audit?: AuditInput): Promise<AutoRegistrationResult>;
}

export interface AuditLogStore {
  /** For actions that change nothing in the store (e.g. a CRL signed); changes pass `audit` to their own method. */
  appendAudit(entry: AuditInput): Promise<AuditEntry>;
  listAuditLog(query: AuditQuery): Promise<Page<AuditEntry>>;
  /** Streams the log in pages of 1000; the first entry that breaks the chain, or the head. */
  verifyAuditLog(): Promise<AuditVerification>;
}

export interface TokenStore {
  insertToken(token: NewToken, audit?: AuditInput): Promise<void>;
  /** Returns revoked and expired tokens too: the caller decides what they mean. */
  findTokenByHash(tokenHash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  /** Idempotent: revoking twice keeps the first revocation time. */
  revokeToken(id: string, at?: Date, audit?: AuditInput): Promise<void>;
  /** Records a use; coarse (see tokens.ts) so the auth path rarely writes. */
  touchToken(id: string, at: Date): Promise<void>;
}

export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string): Promise<void>;
}

/** Issuer rotation and trust-anchor rollover (rollover.ts); stored audit results and the audit's fleet-wide reads (finding-records.ts). */
export type { IssuerRotationStore, TrustBundleStore } from './rollover.js';
export type { AuditFindingStore, AuditQueryStore } from './finding-records.js';
export type { DefaultIssuerStore } from './default-issuer.js';
