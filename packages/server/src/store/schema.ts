import type { ColumnType, Generated, Kysely } from 'kysely';
import type { CaKind, CaStatus, CertificateStatus, PolicyTargetType } from './records.js';

/*
 * Row types as the database holds them (schema v3, see
 * migrations/001_initial.ts, 002_registry.ts and 003_connections.ts). Times are ISO-8601 UTC text
 * (YYYY-MM-DDTHH:MM:SS.sssZ) on both dialects so comparisons are plain,
 * identical string comparisons; blobs come back as Buffer from both drivers.
 */

export interface CasTable {
  id: string;
  name: string;
  parent_id: string | null;
  kind: CaKind;
  status: CaStatus;
  key_algorithm: string;
  subject: string;
  serial: string;
  certificate_der: Buffer;
  not_before: string;
  not_after: string;
  path_len: number | null;
  created_at: string;
  /** v2. PostgreSQL boolean, SQLite integer 0/1: read with Boolean(), written as 0/1 (both accept it). */
  auto_registration: ColumnType<boolean | number, number | undefined, number>;
  /** v2. */
  provisioning_template: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface CaKeysTable {
  ca_id: string;
  key_store: string;
  sealed: Buffer;
  created_at: string;
}

export interface IssuanceJournalTable {
  serial: string;
  issuer_id: string;
  profile: string;
  tbs_der: Buffer;
  created_at: string;
}

export interface CertificatesTable {
  id: string;
  serial: string;
  issuer_id: string;
  thing_name: string | null;
  status: CertificateStatus;
  profile: string;
  subject: string;
  not_before: string;
  not_after: string;
  key_algorithm: string;
  der: Buffer;
  created_at: string;
  revoked_at: string | null;
  revocation_reason: string | null;
}

export interface ThingsTable {
  name: string;
  /** JSON object of string -> string. */
  attributes: string;
  created_at: string;
  updated_at: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  /** Comma-separated. */
  scopes: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface ThingGroupsTable {
  name: string;
  parent_name: string | null;
  description: string | null;
  /** JSON object of string -> string. */
  attributes: string;
  created_at: string;
}

export interface ThingGroupMembersTable {
  group_name: string;
  thing_name: string;
  created_at: string;
}

export interface PoliciesTable {
  name: string;
  default_version: number;
  /** Highest version number ever given: numbers are never reused. */
  latest_version: number;
  created_at: string;
  updated_at: string;
}

export interface PolicyVersionsTable {
  policy_name: string;
  version: number;
  /** JSON object. */
  document: string;
  created_at: string;
}

export interface PolicyAttachmentsTable {
  policy_name: string;
  target_type: PolicyTargetType;
  target_id: string;
  created_at: string;
}

export interface CertificateStatusHistoryTable {
  /** bigserial comes back from pg as a string. */
  id: Generated<number | string>;
  certificate_id: string;
  status: CertificateStatus;
  reason: string | null;
  actor: string;
  at: string;
}

export interface AuditLogTable {
  /** bigint comes back from pg as a string. */
  seq: ColumnType<number | string, number, never>;
  at: string;
  actor: string;
  action: string;
  target: string;
  /** Canonical JSON (audit.ts), hashed as stored. */
  details: string;
  prev_hash: string;
  hash: string;
}

/** v3. */
export interface ConnectionsTable {
  id: string;
  certificate_id: string;
  client_id: string;
  remote_address: string;
  connected_at: string;
  disconnected_at: string | null;
  disconnect_reason: string | null;
  node_id: string;
}

/** v5 (005_provisioning.ts). */
export interface ProvisioningTemplatesTable {
  name: string;
  /** JSON object, validated by provisioning/templates.ts. */
  document: string;
  created_at: string;
  updated_at: string;
}

/** v6. */
export interface ProvisioningClaimsTable {
  certificate_id: string;
  template: string;
  created_at: string;
}

/** v6. */
export interface OwnershipTokensTable {
  token_hash: string;
  certificate_id: string;
  claim_certificate_id: string;
  created_at: string;
  expires_at: string;
  consumed_at: string | null;
}

/** v4 (004_webhooks.ts). */
export interface WebhooksTable {
  id: string;
  url: string;
  /** JSON array of event names, or ["*"]. */
  events: string;
  /** Kept as given: every delivery is signed with it (HMAC-SHA256). */
  secret: string;
  created_at: string;
}

/** v5. */
export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  /** The JSON body sent, byte for byte the same on every attempt. */
  event: string;
  /** int4 on PostgreSQL, which pg returns as a number (unlike bigint). */
  attempts: number;
  /** Null once delivered or given up. */
  next_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
  created_at: string;
}

/** v7 (006_external_cas.ts). */
export interface CaRegistrationCodesTable {
  /** SHA-256 of the code, lowercase hex: the code itself is never kept. */
  code_hash: string;
  token_id: string;
  created_at: string;
  expires_at: string;
  consumed_at: string | null;
  ca_id: string | null;
}

/** v7: a CA registered from outside, beside its `cas` row (kind 'external'). */
export interface ExternalCasTable {
  ca_id: string;
  mode: 'default' | 'sni-only';
  certificate_sha256: string;
  registered_by: string;
  created_at: string;
}

export interface Database {
  cas: CasTable;
  ca_keys: CaKeysTable;
  issuance_journal: IssuanceJournalTable;
  certificates: CertificatesTable;
  things: ThingsTable;
  api_tokens: ApiTokensTable;
  settings: SettingsTable;
  thing_groups: ThingGroupsTable;
  thing_group_members: ThingGroupMembersTable;
  policies: PoliciesTable;
  policy_versions: PolicyVersionsTable;
  policy_attachments: PolicyAttachmentsTable;
  certificate_status_history: CertificateStatusHistoryTable;
  audit_log: AuditLogTable;
  connections: ConnectionsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  provisioning_templates: ProvisioningTemplatesTable;
  provisioning_claims: ProvisioningClaimsTable;
  ownership_tokens: OwnershipTokensTable;
  ca_registration_codes: CaRegistrationCodesTable;
  external_cas: ExternalCasTable;
}

export type Db = Kysely<Database>;

export type StoreDialect = 'sqlite' | 'postgres';
