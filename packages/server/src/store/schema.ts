import type { Kysely } from 'kysely';
import type { CaKind, CaStatus, CertificateStatus } from './records.js';

/*
 * Row types as the database holds them (schema v1, see
 * migrations/001_initial.ts). Times are ISO-8601 UTC text
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

export interface Database {
  cas: CasTable;
  ca_keys: CaKeysTable;
  issuance_journal: IssuanceJournalTable;
  certificates: CertificatesTable;
  things: ThingsTable;
  api_tokens: ApiTokensTable;
  settings: SettingsTable;
}

export type Db = Kysely<Database>;

export type StoreDialect = 'sqlite' | 'postgres';
