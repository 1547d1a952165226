/*
 * The storage layer: the only code in certfleet that speaks SQL or imports a
 * database driver (DESIGN.md, "only store imports the database drivers").
 * Consumers import interfaces and records from here; they never see Kysely,
 * rows or SQLSTATEs.
 */
export { openStore, type OpenStoreOptions } from './open.js';
export {
  CAMPAIGN_ITEM_STATES,
  OPEN_ITEM_STATES,
  type CampaignItemRecord,
  type CampaignItemState,
  type CampaignRecord,
  type CampaignSelection,
  type CampaignStatus,
  type CampaignStore,
  type CampaignTarget,
  type NewCampaign,
  type NewRenewal,
  type RenewalRecord,
  type RenewalStore,
} from './campaigns.js';
export type { RenewalInserted } from './campaigns.js';
export type { RenewalPolicyStore } from './renewal-policy.js';
export type { DefaultIssuerStore } from './default-issuer.js';
export type { Store } from './store.js';
export type { StoreDialect } from './schema.js';
export type { ConnectionWrite, ConnectionWriteFailure } from './connections.js';
export { MAX_PAGE_SIZE } from './cursor.js';
export { MAX_GROUP_DEPTH } from './groups.js';
export { MAX_POLICY_VERSIONS } from './policies.js';
export { AUDIT_GENESIS_HASH, auditHash } from './audit.js';
export type {
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
export type { AuditBreak, AuditEntry, AuditInput, AuditQuery, AuditVerification } from './audit-records.js';
export type { AutoRegistrationStore } from './interfaces.js';
export type { BulkIssuanceStore } from './interfaces.js';
export type { BulkAudit, BulkRegistration, BulkRegistrationResult, BulkThing } from './bulk.js';
export { findingId } from './findings.js';
export type { CrossCertificateRecord, DependentCertificate, IssuerRotationStore, TrustBundleStore, TrustBundleVersionRecord } from './rollover.js';
export type {
  AuditFindingQuery,
  AuditFindingRecord,
  AuditFindingStore,
  AuditQueryStore,
  AuditRunRecord,
  AuditRunResult,
  NewAuditRun,
  RsaCertificateRow,
  SilentDeviceRow,
  Finding as StoredFinding,
} from './finding-records.js';
export type { AutoRegistration, AutoRegistrationResult } from './records.js';
export type { ExternalCaMode, ExternalCaRecord, ExternalCaRegistration, ExternalCaStore, NewRegistrationCode } from './registration-codes.js';
export type {
  ClaimedDelivery,
  DeliveryOutcome,
  NewWebhook,
  NewWebhookDelivery,
  WebhookDeliveryRecord,
  WebhookRecord,
  WebhookStore,
} from './webhook-records.js';
export type {
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
  ThingChange,
} from './provisioning.js';
export type {
  EnrollmentSecretQuery,
  EnrollmentSecretRecord,
  EnrollmentStore,
  NetworkBootstrap,
  NetworkIdentityType,
  NewEnrollmentSecret,
  Reenrollment,
  ReenrollmentLink,
  ReenrollmentOutcome,
  ReenrollmentResult,
  SecretEnrollment,
  SettledReenrollment,
  ThingOutcome,
} from './enrollment.js';
export type {
  CaKeyRecord,
  CaKind,
  CaProvisioning,
  CaProvisioningUpdate,
  CaRecord,
  CaStatus,
  CertificateFilter,
  CertificateOrder,
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
  PolicyTargetType,
  PolicyVersionRecord,
  PolicyVersionSummary,
  ReplacedCertificate,
  ThingAttributes,
  ThingGroupAncestor,
  ThingGroupRecord,
  ThingRecord,
  ThingUpdate,
  TokenRecord,
} from './records.js';
