import * as attachments from './attachments.js';
import * as audit from './audit.js';
import * as campaigns from './campaigns.js';
import type { CampaignItemRecord, CampaignItemState, CampaignRecord, CampaignStatus, CampaignStore, CampaignTarget, NewCampaign, NewRenewal, RenewalRecord, RenewalStore } from './campaigns.js';
import type { RenewalInserted } from './campaigns.js';
import * as renewalPolicy from './renewal-policy.js';
import type { RenewalPolicyStore } from './renewal-policy.js';
import type { AuditEntry, AuditInput, AuditQuery, AuditVerification } from './audit-records.js';
import * as cas from './cas.js';
import * as certificates from './certificates.js';
import * as connections from './connections.js';
import { guarded } from './driver-errors.js';
import * as groups from './groups.js';
import type {
  AuditLogStore,
  CaKeyStore,
  CaProvisioningStore,
  CaStore,
  CertificateLifecycleStore,
  CertificateReplacementStore,
  CertificateStore,
  ConnectionStore,
  EffectivePolicyStore,
  IssuanceJournal,
  PolicyStore,
  SettingsStore,
  ThingGroupStore,
  ThingStore,
  TokenStore,
} from './interfaces.js';
import * as journal from './journal.js';
import * as bulk from './bulk.js';
import type { BulkRegistration, BulkRegistrationResult } from './bulk.js';
import * as lifecycle from './lifecycle.js';
import * as policies from './policies.js';
import * as provisioning from './provisioning.js';
import * as enrollment from './enrollment.js';
import type { EnrollmentSecretQuery, EnrollmentSecretRecord, EnrollmentStore, NetworkBootstrap, NetworkIdentityType, NewEnrollmentSecret, Reenrollment, ReenrollmentLink, ReenrollmentResult, SecretEnrollment, SettledReenrollment, ThingOutcome } from './enrollment.js';
import type {
  ClaimRecord,
  ClaimStore,
  DeviceProvisioning,
  DeviceProvisioningResult,
  DiscardOutcome,
  NewOwnershipToken,
  OwnershipTokenRecord,
  ProvisioningStore,
  ProvisioningTemplateDocument,
  ProvisioningTemplateRecord,
} from './provisioning.js';
import * as replacement from './replacement.js';
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
import type { Db, StoreDialect } from './schema.js';
import * as settings from './settings.js';
import * as things from './things.js';
import * as tokens from './tokens.js';
import { transaction, type StoreContext } from './transaction.js';
import * as autoRegistration from './auto-registration.js';
import type { AutoRegistrationStore } from './interfaces.js';
import type { AutoRegistration, AutoRegistrationResult } from './records.js';
import * as webhooks from './webhooks.js';
import * as rollover from './rollover.js';
import type { CrossCertificateRecord, DependentCertificate, IssuerRotationStore, TrustBundleStore, TrustBundleVersionRecord } from './rollover.js';
import * as findings from './findings.js';
import * as defaultIssuer from './default-issuer.js';
import type { AuditFindingQuery, AuditFindingRecord, AuditFindingStore, AuditQueryStore, AuditRunRecord, AuditRunResult, Finding, NewAuditRun, RsaCertificateRow, SilentDeviceRow } from './finding-records.js';
import * as externalCas from './registration-codes.js';
import type { ExternalCaRecord, ExternalCaRegistration, ExternalCaStore, NewRegistrationCode } from './registration-codes.js';
import type {
  ClaimedDelivery,
  DeliveryOutcome,
  NewWebhook,
  NewWebhookDelivery,
  WebhookDeliveryRecord,
  WebhookRecord,
  WebhookStore,
} from './webhook-records.js';

/**
 * The one object that holds the database connection. It implements every
 * consumer interface by handing its connection to the per-table module; wiring
 * code (cmd/ in Boulder's terms) passes each consumer only the interface it
 * needs. Made by openStore().
 */
export class Store
  implements
    IssuerRotationStore,
    TrustBundleStore,
    AuditFindingStore,
    AuditQueryStore,
    CaStore,
    CaKeyStore,
    CaProvisioningStore,
    IssuanceJournal,
    CertificateStore,
    CertificateLifecycleStore,
    CertificateReplacementStore,
    ThingStore,
    ThingGroupStore,
    PolicyStore,
    EffectivePolicyStore,
    AuditLogStore,
    TokenStore,
    SettingsStore,
    ConnectionStore,
    AutoRegistrationStore,
    WebhookStore,
    ProvisioningStore,
    ClaimStore,
    CampaignStore,
    RenewalStore,
    RenewalPolicyStore,
    ExternalCaStore,
    EnrollmentStore
{
  readonly #db: Db;
  readonly #ctx: StoreContext;
  #closing: Promise<void> | undefined;

  /** @internal Use openStore(): it configures the connection and migrates. */
  constructor(
    readonly dialect: StoreDialect,
    db: Db,
    now: () => Date,
  ) {
    this.#db = db;
    this.#ctx = { db, dialect, now };
  }

  /** Closes the connection (or pool). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#db.destroy();
    return this.#closing;
  }

  // CaStore, CaProvisioningStore
  insertCa(ca: NewCa, a?: AuditInput): Promise<void> { return cas.insertCa(this.#ctx, ca, a); }
  getCa(id: string): Promise<CaRecord | undefined> { return cas.getCa(this.#db, id); }
  getCaByName(name: string): Promise<CaRecord | undefined> { return cas.getCaByName(this.#db, name); }
  listCas(): Promise<CaRecord[]> { return cas.listCas(this.#db); }
  setCaStatus(id: string, status: CaStatus, a?: AuditInput): Promise<void> { return cas.setCaStatus(this.#ctx, id, status, a); }
  getCaProvisioning(caId: string): Promise<CaProvisioning | undefined> { return cas.getCaProvisioning(this.#db, caId); }
  updateCa(caId: string, update: CaProvisioningUpdate, a?: AuditInput): Promise<CaProvisioning> {
    return cas.updateCa(this.#ctx, caId, update, a);
  }

  // CaKeyStore
  putCaKey(caId: string, keyStore: string, sealed: Uint8Array, a?: AuditInput): Promise<void> {
    return cas.putCaKey(this.#ctx, caId, { keyStore, sealed }, a);
  }
  getCaKey(caId: string): Promise<CaKeyRecord | undefined> { return cas.getCaKey(this.#db, caId); }
  createCaWithKey(ca: NewCa, key: NewCaKey, a?: AuditInput): Promise<void> { return cas.createCaWithKey(this.#ctx, ca, key, a); }

  // IssuanceJournal
  recordIntent(intent: IssuanceIntent): Promise<void> { return journal.recordIntent(this.#db, intent); }
  hasSerial(serial: string): Promise<boolean> { return journal.hasSerial(this.#db, serial); }

  // BulkIssuanceStore (bulk.ts)
  recordIntents(intents: readonly IssuanceIntent[]): Promise<void> { return bulk.recordIntents(this.#db, intents); }
  liveCertificatesOfThings(names: readonly string[]): Promise<CertificateRecord[]> { return bulk.liveCertificatesOfThings(this.#db, names); }
  registerBulk(r: BulkRegistration): Promise<BulkRegistrationResult> { return bulk.registerBulk(this.#ctx, r); }

  // CertificateStore, CertificateLifecycleStore
  insertCertificate(certificate: NewCertificate, a?: AuditInput): Promise<void> {
    return certificates.insertCertificate(this.#ctx, certificate, a);
  }
  getCertificate(id: string): Promise<CertificateRecord | undefined> { return certificates.getCertificate(this.#db, id); }
  getCertificateBySerial(serial: string): Promise<CertificateRecord | undefined> {
    return certificates.getCertificateBySerial(this.#db, serial);
  }
  listCertificates(query: CertificateQuery): Promise<Page<CertificateRecord>> { return certificates.listCertificates(this.#db, query); }
  countCertificates(filter?: CertificateFilter): Promise<number> { return certificates.countCertificates(this.#db, filter); }
  setCertificateStatus(
    id: string,
    from: CertificateStatus,
    to: CertificateStatus,
    change: CertificateStatusChange,
    a?: AuditInput,
  ): Promise<CertificateRecord> {
    return lifecycle.setCertificateStatus(this.#ctx, id, from, to, change, a);
  }
  attachCertificateToThing(id: string, thing: string, a?: AuditInput): Promise<void> {
    return lifecycle.attachCertificateToThing(this.#ctx, id, thing, a);
  }
  detachCertificate(id: string, a?: AuditInput): Promise<void> { return lifecycle.detachCertificate(this.#ctx, id, a); }
  certificateHistory(id: string): Promise<CertificateStatusEntry[]> { return lifecycle.certificateHistory(this.#db, id); }

  // CertificateReplacementStore
  replaceCertificates(r: CertificateReplacement, a?: AuditInput): Promise<CertificateReplacementResult> {
    return replacement.replaceCertificates(this.#ctx, r, a);
  }

  // ThingStore
  createThing(thing: NewThing, a?: AuditInput): Promise<ThingRecord> { return things.createThing(this.#ctx, thing, a); }
  getThing(name: string): Promise<ThingRecord | undefined> { return things.getThing(this.#db, name); }
  listThings(page: PageRequest): Promise<Page<ThingRecord>> { return things.listThings(this.#db, page); }
  updateThing(name: string, update: ThingUpdate, a?: AuditInput): Promise<ThingRecord> {
    return things.updateThing(this.#ctx, name, update, a);
  }
  deleteThing(name: string, a?: AuditInput): Promise<void> { return things.deleteThing(this.#ctx, name, a); }

  // ThingGroupStore
  createGroup(group: NewThingGroup, a?: AuditInput): Promise<ThingGroupRecord> { return groups.createGroup(this.#ctx, group, a); }
  getGroup(name: string): Promise<ThingGroupRecord | undefined> { return groups.getGroup(this.#db, name); }
  listGroups(page: PageRequest): Promise<Page<ThingGroupRecord>> { return groups.listGroups(this.#db, page); }
  setGroupParent(name: string, parent: string | null, a?: AuditInput): Promise<ThingGroupRecord> {
    return groups.setGroupParent(this.#ctx, name, parent, a);
  }
  deleteGroup(name: string, a?: AuditInput): Promise<void> { return groups.deleteGroup(this.#ctx, name, a); }
  addThingToGroup(group: string, thing: string, a?: AuditInput): Promise<void> {
    return groups.addThingToGroup(this.#ctx, group, thing, a);
  }
  removeThingFromGroup(group: string, thing: string, a?: AuditInput): Promise<void> {
    return groups.removeThingFromGroup(this.#ctx, group, thing, a);
  }
  listGroupMembers(group: string, page: PageRequest): Promise<Page<ThingRecord>> {
    return groups.listGroupMembers(this.#db, group, page);
  }
  groupsOfThing(thing: string): Promise<ThingGroupAncestor[]> { return groups.groupsOfThing(this.#db, thing); }

  // PolicyStore, EffectivePolicyStore
  createPolicy(name: string, document: PolicyDocument, a?: AuditInput): Promise<PolicyRecord> {
    return policies.createPolicy(this.#ctx, name, document, a);
  }
  getPolicy(name: string): Promise<PolicyRecord | undefined> { return policies.getPolicy(this.#db, name); }
  getPolicyVersion(name: string, version: number): Promise<PolicyVersionRecord | undefined> {
    return policies.getPolicyVersion(this.#db, name, version);
  }
  listPolicies(page: PageRequest): Promise<Page<PolicySummary>> { return policies.listPolicies(this.#db, page); }
  createPolicyVersion(
    name: string,
    document: PolicyDocument,
    options?: { setDefault?: boolean },
    a?: AuditInput,
  ): Promise<PolicyVersionRecord> {
    return policies.createPolicyVersion(this.#ctx, name, document, options, a);
  }
  setDefaultPolicyVersion(name: string, version: number, a?: AuditInput): Promise<void> {
    return policies.setDefaultPolicyVersion(this.#ctx, name, version, a);
  }
  deletePolicyVersion(name: string, version: number, a?: AuditInput): Promise<void> {
    return policies.deletePolicyVersion(this.#ctx, name, version, a);
  }
  deletePolicy(name: string, a?: AuditInput): Promise<void> { return policies.deletePolicy(this.#ctx, name, a); }
  attachPolicy(name: string, target: PolicyTarget, a?: AuditInput): Promise<void> {
    return attachments.attachPolicy(this.#ctx, name, target, a);
  }
  detachPolicy(name: string, target: PolicyTarget, a?: AuditInput): Promise<void> {
    return attachments.detachPolicy(this.#ctx, name, target, a);
  }
  listAttachments(name: string, page: PageRequest): Promise<Page<PolicyAttachment>> {
    return attachments.listAttachments(this.#db, name, page);
  }
  policiesOfTarget(target: PolicyTarget): Promise<string[]> { return attachments.policiesOfTarget(this.#db, target); }
  effectivePolicies(certificateId: string): Promise<EffectivePolicy[]> {
    return attachments.effectivePolicies(this.#db, certificateId);
  }

  // AuditLogStore
  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    const prepared = audit.prepareAudit(entry, this.#ctx.now);
    return guarded('audit log', () => transaction(this.#db, (trx) => audit.appendAudit(trx, this.dialect, prepared)));
  }
  listAuditLog(query: AuditQuery): Promise<Page<AuditEntry>> { return audit.listAuditLog(this.#db, query); }
  verifyAuditLog(): Promise<AuditVerification> { return audit.verifyAuditLog(this.#db); }

  // TokenStore
  insertToken(token: NewToken, a?: AuditInput): Promise<void> { return tokens.insertToken(this.#ctx, token, a); }
  findTokenByHash(tokenHash: string): Promise<TokenRecord | undefined> { return tokens.findTokenByHash(this.#db, tokenHash); }
  listTokens(): Promise<TokenRecord[]> { return tokens.listTokens(this.#db); }
  revokeToken(id: string, at?: Date, a?: AuditInput): Promise<void> {
    return tokens.revokeToken(this.#ctx, id, at ?? this.#ctx.now(), a);
  }
  touchToken(id: string, at: Date): Promise<void> { return tokens.touchToken(this.#db, id, at); }

  // ConnectionStore
  recordConnect(connection: NewConnection): Promise<void> { return connections.recordConnect(this.#db, connection); }
  recordDisconnect(id: string, at: Date, reason: string): Promise<void> {
    return connections.recordDisconnect(this.#db, id, at, reason);
  }
  recordConnectionWrites(writes: readonly connections.ConnectionWrite[]): Promise<connections.ConnectionWriteFailure[]> {
    return connections.recordConnectionWrites(this.#db, writes);
  }
  listConnections(query: ConnectionQuery): Promise<Page<ConnectionRecord>> { return connections.listConnections(this.#db, query); }
  openConnectionsByCertificate(certificateId: string): Promise<ConnectionRecord[]> {
    return connections.openConnectionsByCertificate(this.#db, certificateId);
  }
  closeOpenConnections(nodeId: string, at: Date, reason: string): Promise<number> {
    return connections.closeOpenConnections(this.#db, nodeId, at, reason);
  }

  // ProvisioningStore, ClaimStore (provisioning.ts)
  createProvisioningTemplate(name: string, document: ProvisioningTemplateDocument, a?: AuditInput): Promise<ProvisioningTemplateRecord> {
    return provisioning.createProvisioningTemplate(this.#ctx, name, document, a);
  }
  replaceProvisioningTemplate(name: string, document: ProvisioningTemplateDocument, a?: AuditInput): Promise<ProvisioningTemplateRecord> {
    return provisioning.replaceProvisioningTemplate(this.#ctx, name, document, a);
  }
  getProvisioningTemplate(name: string): Promise<ProvisioningTemplateRecord | undefined> { return provisioning.getProvisioningTemplate(this.#db, name); }
  listProvisioningTemplates(page: PageRequest): Promise<Page<ProvisioningTemplateRecord>> { return provisioning.listProvisioningTemplates(this.#db, page); }
  deleteProvisioningTemplate(name: string, a?: AuditInput): Promise<void> { return provisioning.deleteProvisioningTemplate(this.#ctx, name, a); }
  insertClaim(claim: ClaimRecord, a?: AuditInput): Promise<void> { return provisioning.insertClaim(this.#ctx, claim, a); }
  insertClaimCertificate(certificate: NewCertificate, template: string, a?: AuditInput): Promise<void> {
    return provisioning.insertClaimCertificate(this.#ctx, certificate, template, a);
  }
  getClaim(certificateId: string): Promise<ClaimRecord | undefined> { return provisioning.getClaim(this.#db, certificateId); }
  insertCertificateWithOwnershipToken(certificate: NewCertificate, token: NewOwnershipToken, a?: AuditInput): Promise<void> {
    return provisioning.insertCertificateWithOwnershipToken(this.#ctx, certificate, token, a);
  }
  getOwnershipToken(tokenHash: string): Promise<OwnershipTokenRecord | undefined> { return provisioning.getOwnershipToken(this.#db, tokenHash); }
  provisionDevice(p: DeviceProvisioning, a?: AuditInput): Promise<DeviceProvisioningResult> { return provisioning.provisionDevice(this.#ctx, p, a); }
  expiredOwnershipTokens(before: Date, limit: number): Promise<OwnershipTokenRecord[]> { return provisioning.expiredOwnershipTokens(this.#db, before, limit); }
  discardUnprovisionedCertificate(tokenHash: string, at: Date, a?: AuditInput): Promise<DiscardOutcome> {
    return provisioning.discardUnprovisionedCertificate(this.#ctx, tokenHash, at, a);
  }
  purgeConsumedOwnershipTokens(before: Date): Promise<number> { return provisioning.purgeConsumedOwnershipTokens(this.#db, before); }

  // AutoRegistrationStore
  autoRegisterCertificate(r: AutoRegistration, a?: AuditInput): Promise<AutoRegistrationResult> {
    return autoRegistration.autoRegisterCertificate(this.#ctx, r, a);
  }

  // WebhookStore
  createWebhook(w: NewWebhook, a?: AuditInput): Promise<WebhookRecord> { return webhooks.createWebhook(this.#ctx, w, a); }
  getWebhook(id: string): Promise<WebhookRecord | undefined> { return webhooks.getWebhook(this.#db, id); }
  listWebhooks(): Promise<WebhookRecord[]> { return webhooks.listWebhooks(this.#db); }
  deleteWebhook(id: string, a?: AuditInput): Promise<void> { return webhooks.deleteWebhook(this.#ctx, id, a); }
  enqueueDeliveries(d: readonly NewWebhookDelivery[]): Promise<void> { return webhooks.enqueueDeliveries(this.#db, d); }
  claimDueDeliveries(now: Date, limit: number, leaseUntil: Date): Promise<ClaimedDelivery[]> {
    return webhooks.claimDueDeliveries(this.#db, now, limit, leaseUntil);
  }
  finishDelivery(id: string, outcome: DeliveryOutcome): Promise<void> { return webhooks.finishDelivery(this.#db, id, outcome); }
  listDeliveries(webhookId: string, limit: number): Promise<WebhookDeliveryRecord[]> {
    return webhooks.listDeliveries(this.#db, webhookId, limit);
  }
  pruneDeliveries(before: Date): Promise<number> { return webhooks.pruneDeliveries(this.#db, before); }

  // ExternalCaStore (registration-codes.ts)
  insertRegistrationCode(code: NewRegistrationCode): Promise<void> { return externalCas.insertRegistrationCode(this.#ctx, code); }
  registerExternalCa(r: ExternalCaRegistration, a?: AuditInput): Promise<void> { return externalCas.registerExternalCa(this.#ctx, r, a); }
  getExternalCa(caId: string): Promise<ExternalCaRecord | undefined> { return externalCas.getExternalCa(this.#db, caId); }
  purgeRegistrationCodes(before: Date): Promise<number> { return externalCas.purgeRegistrationCodes(this.#db, before); }

  // EnrollmentStore (enrollment.ts)
  insertEnrollmentSecrets(x: readonly NewEnrollmentSecret[], a?: AuditInput): Promise<void> { return enrollment.insertEnrollmentSecrets(this.#ctx, x, a); }
  getEnrollmentSecretByUsername(username: string): Promise<EnrollmentSecretRecord | undefined> { return enrollment.getEnrollmentSecretByUsername(this.#db, username); }
  listEnrollmentSecrets(q: EnrollmentSecretQuery): Promise<Page<EnrollmentSecretRecord>> { return enrollment.listEnrollmentSecrets(this.#db, q); }
  revokeEnrollmentSecret(id: string, at: Date, a?: AuditInput): Promise<EnrollmentSecretRecord> { return enrollment.revokeEnrollmentSecret(this.#ctx, id, at, a); }
  enrollWithSecret(e: SecretEnrollment, a?: AuditInput): Promise<ThingOutcome> { return enrollment.enrollWithSecret(this.#ctx, e, a); }
  insertReenrollment(r: Reenrollment, a?: AuditInput): Promise<ReenrollmentResult> { return enrollment.insertReenrollment(this.#ctx, r, a); }
  pendingReenrollment(id: string): Promise<ReenrollmentLink | undefined> { return enrollment.pendingReenrollment(this.#db, id); }
  settleReenrollment(id: string, outcome: 'used' | 'grace-expired', at: Date, actor: string, a?: AuditInput): Promise<SettledReenrollment | undefined> {
    return enrollment.settleReenrollment(this.#ctx, id, outcome, at, actor, a);
  }
  dueReenrollments(before: Date, limit: number): Promise<ReenrollmentLink[]> { return enrollment.dueReenrollments(this.#db, before, limit); }
  networkIdentityThing(type: NetworkIdentityType, value: string): Promise<string | undefined> { return enrollment.networkIdentityThing(this.#db, type, value); }
  bootstrapNetworkIdentity(b: NetworkBootstrap, a?: AuditInput): Promise<ThingOutcome & { bound: boolean }> { return enrollment.bootstrapNetworkIdentity(this.#ctx, b, a); }

  // CampaignStore, RenewalStore (campaigns.ts)
  createCampaign(c: NewCampaign, targets: readonly CampaignTarget[], a?: AuditInput): Promise<CampaignRecord> { return campaigns.createCampaign(this.#ctx, c, targets, a); }
  getCampaign(id: string): Promise<CampaignRecord | undefined> { return campaigns.getCampaign(this.#db, id); }
  listCampaigns(page: { limit: number; cursor?: string }): Promise<Page<CampaignRecord>> { return campaigns.listCampaigns(this.#db, page); }
  campaignsIn(statuses: readonly CampaignStatus[]): Promise<CampaignRecord[]> { return campaigns.campaignsIn(this.#db, statuses); }
  setCampaignStatus(id: string, from: readonly CampaignStatus[], to: CampaignStatus, a?: AuditInput): Promise<CampaignRecord> {
    return campaigns.setCampaignStatus(this.#ctx, id, from, to, a);
  }
  countCampaignItems(id: string): Promise<Record<CampaignItemState, number>> { return campaigns.countCampaignItems(this.#db, id); }
  listCampaignItems(id: string, q: { state?: CampaignItemState; limit: number; cursor?: string }): Promise<Page<CampaignItemRecord>> {
    return campaigns.listCampaignItems(this.#db, id, q);
  }
  countNotifiedSince(id: string, since: Date): Promise<number> { return campaigns.countNotifiedSince(this.#db, id, since); }
  setCampaignItemState(id: string, certificateId: string, from: readonly CampaignItemState[], to: CampaignItemState, f?: { reason?: string | null; notifiedAt?: Date; newCertificateId?: string }): Promise<boolean> {
    return campaigns.setCampaignItemState(this.#ctx, id, certificateId, from, to, f);
  }
  openItemOfCertificate(certificateId: string): Promise<CampaignItemRecord | undefined> { return campaigns.openItemOfCertificate(this.#db, certificateId); }
  itemOfNewCertificate(newCertificateId: string): Promise<CampaignItemRecord | undefined> { return campaigns.itemOfNewCertificate(this.#db, newCertificateId); }
  insertRenewal(c: NewCertificate, r: NewRenewal, a?: AuditInput): Promise<RenewalInserted> { return campaigns.insertRenewal(this.#ctx, c, r, a); }
  getRenewal(certificateId: string): Promise<RenewalRecord | undefined> { return campaigns.getRenewal(this.#db, certificateId); }
  confirmRenewal(certificateId: string, at: Date, retireAt: Date): Promise<RenewalRecord> { return campaigns.confirmRenewal(this.#ctx, certificateId, at, retireAt); }
  confirmedWithActiveOld(limit: number): Promise<RenewalRecord[]> { return campaigns.confirmedWithActiveOld(this.#db, limit); }
  renewalsDue(at: Date, limit: number): Promise<RenewalRecord[]> { return campaigns.renewalsDue(this.#db, at, limit); }
  markRenewalRetired(certificateId: string, at: Date): Promise<void> { return campaigns.markRenewalRetired(this.#ctx, certificateId, at); }
  // RenewalPolicyStore (renewal-policy.ts)
  renewAfterExpiryDays(caId: string): Promise<number | undefined> { return renewalPolicy.renewAfterExpiryDays(this.#db, caId); }
  setRenewAfterExpiryDays(caId: string, days: number, a?: AuditInput): Promise<void> { return renewalPolicy.setRenewAfterExpiryDays(this.#ctx, caId, days, a); }

  // IssuerRotationStore, TrustBundleStore (rollover.ts)
  insertCrossCertificate(c: CrossCertificateRecord, a?: AuditInput): Promise<void> { return rollover.insertCrossCertificate(this.#ctx, c, a); }
  crossCertificatesOf(caId: string): Promise<CrossCertificateRecord[]> { return rollover.crossCertificatesOf(this.#db, caId); }
  listDependents(issuerIds: readonly string[], page: PageRequest): Promise<Page<DependentCertificate>> { return rollover.listDependents(this.#db, issuerIds, page); }
  countDependents(issuerIds: readonly string[]): Promise<number> { return rollover.countDependents(this.#db, issuerIds); }
  latestTrustBundle(): Promise<TrustBundleVersionRecord | undefined> { return rollover.latestTrustBundle(this.#db); }
  trustBundleVersions(): Promise<TrustBundleVersionRecord[]> { return rollover.trustBundleVersions(this.#db); }
  appendTrustBundleVersion(previous: number, roots: readonly string[], a?: AuditInput): Promise<TrustBundleVersionRecord> {
    return rollover.appendTrustBundleVersion(this.#ctx, previous, roots, a);
  }
  acknowledgeTrustBundle(thing: string, version: number, at: Date): Promise<number> { return rollover.acknowledgeTrustBundle(this.#db, thing, version, at); }
  trustBundleAckOf(thing: string): Promise<number | undefined> { return rollover.trustBundleAckOf(this.#db, thing); }
  countThingsNotAcknowledging(versions: readonly number[]): Promise<number> { return rollover.countThingsNotAcknowledging(this.#db, versions); }
  listThingsNotAcknowledging(versions: readonly number[], page: PageRequest): Promise<Page<string>> { return rollover.listThingsNotAcknowledging(this.#db, versions, page); }
  thingsWithActiveCertificates(page: PageRequest): Promise<Page<string>> { return rollover.thingsWithActiveCertificates(this.#db, page); }
  countThingsWithActiveCertificates(): Promise<number> { return rollover.countThingsWithActiveCertificates(this.#db); }

  // DefaultIssuerStore (default-issuer.ts)
  putDefaultIssuer(key: string, caId: string, a: AuditInput): Promise<void> { return defaultIssuer.putDefaultIssuer(this.#ctx, key, caId, a); }
  // AuditFindingStore, AuditQueryStore (findings.ts)
  recordAuditRun(run: NewAuditRun, f: readonly Finding[]): Promise<AuditRunResult> { return findings.recordAuditRun(this.#ctx, run, f); }
  listFindings(q: AuditFindingQuery): Promise<Page<AuditFindingRecord>> { return findings.listFindings(this.#db, q); }
  latestAuditRun(): Promise<AuditRunRecord | undefined> { return findings.latestAuditRun(this.#db); }
  activeRsaCertificates(page: PageRequest): Promise<Page<RsaCertificateRow>> { return findings.activeRsaCertificates(this.#db, page); }
  activeCountsByIssuer(issuerIds: readonly string[]): Promise<Map<string, number>> { return findings.activeCountsByIssuer(this.#db, issuerIds); }
  silentDevices(cutoff: Date, now: Date, page: PageRequest): Promise<Page<SilentDeviceRow>> { return findings.silentDevices(this.#db, cutoff, now, page); }

  // SettingsStore
  getSetting(key: string): Promise<string | undefined> { return settings.getSetting(this.#db, key); }
  putSetting(key: string, value: string): Promise<void> { return settings.putSetting(this.#db, key, value); }
}
