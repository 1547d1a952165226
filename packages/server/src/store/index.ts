/*
 * The storage layer: the only code in certfleet that speaks SQL or imports a
 * database driver (DESIGN.md, "only store imports the database drivers").
 * Consumers import interfaces and records from here; they never see Kysely,
 * rows or SQLSTATEs.
 */
export { openStore, type OpenStoreOptions } from './open.js';
export type { Store } from './store.js';
export type { StoreDialect } from './schema.js';
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
export type { AutoRegistration, AutoRegistrationResult } from './records.js';
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
