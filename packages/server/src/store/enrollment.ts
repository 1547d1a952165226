import type { Kysely } from 'kysely';
import { CertfleetError } from '../errors.js';
import * as attachments from './attachments.js';
import type { AuditInput } from './audit-records.js';
import { appendAudit, prepareAudit } from './audit.js';
import * as certificates from './certificates.js';
import { CERTIFICATE_COLUMNS, certificateRecord } from './certificates.js';
import { fromIso, fromIsoOrNull, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import * as groups from './groups.js';
import type { CertificateRecord, NewCertificate, Page, PageRequest, ThingRecord } from './records.js';
import type { Database, Db } from './schema.js';
import type { ThingChange } from './provisioning.js';
import * as things from './things.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for EST enrollment and bootstrap by network identity (schema v7,
 * migrations/007_enrollment.ts): one-time enrollment secrets, the
 * "replaces" links of re-enrolled certificates, and IMSI/IMEI bindings.
 * provisioning/ decides; each write here is one transaction, conditional on
 * the state it was decided on (compare-and-set), so concurrent requests
 * cannot both win.
 */

interface EstEnrollmentSecretsTable {
  id: string;
  username: string;
  secret_hash: string;
  thing_name: string | null;
  batch: string | null;
  template: string | null;
  profile: string;
  created_at: string;
  expires_at: string;
  spent_at: string | null;
  certificate_id: string | null;
  revoked_at: string | null;
}

interface CertificateReenrollmentsTable {
  new_certificate_id: string;
  old_certificate_id: string;
  created_at: string;
  grace_until: string;
  settled_at: string | null;
  outcome: string | null;
}

interface NetworkIdentitiesTable {
  type: string;
  value: string;
  thing_name: string;
  created_at: string;
}

/** The v7 tables seen beside the others, kept here so the shared schema file needs no change. */
type EnrollmentDb = Kysely<Database & { est_enrollment_secrets: EstEnrollmentSecretsTable; certificate_reenrollments: CertificateReenrollmentsTable; network_identities: NetworkIdentitiesTable }>;
const v7 = (db: Db): EnrollmentDb => db as unknown as EnrollmentDb;

export interface NewEnrollmentSecret {
  id: string;
  /** The HTTP Basic user name (RFC 7617); not secret, unique. */
  username: string;
  /** SHA-256 of the secret, hex: the secret itself is never stored. */
  secretHash: string;
  /** Per device: the certificate goes on this thing (created if missing). Null for a batch secret. */
  thingName: string | null;
  batch: string | null;
  /** Provisioning template applied to the thing at enrollment. */
  template: string | null;
  profile: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface EnrollmentSecretRecord extends NewEnrollmentSecret {
  spentAt: Date | null;
  /** The certificate the secret was spent on. */
  certificateId: string | null;
  revokedAt: Date | null;
}

export interface EnrollmentSecretQuery extends PageRequest {
  batch?: string;
}

/** simpleenroll with a secret: what to write, all or nothing. */
export interface SecretEnrollment {
  secretId: string;
  /** Now: the secret must not have expired by then; spent at this time. */
  at: Date;
  /** With thingName set when the certificate goes on a thing. */
  certificate: NewCertificate;
  /** The template's override rule given the thing as it is (may throw, which rolls back). Required with a thingName. */
  decideThing?: (existing: ThingRecord | undefined) => ThingChange;
  policies: readonly string[];
  groups: readonly string[];
}

export interface ThingOutcome {
  thing: ThingRecord | null;
  change: ThingChange['kind'] | null;
}

export type ReenrollmentOutcome = 'used' | 'grace-expired' | 'superseded';

export interface ReenrollmentLink {
  newCertificateId: string;
  oldCertificateId: string;
  createdAt: Date;
  graceUntil: Date;
  settledAt: Date | null;
  outcome: ReenrollmentOutcome | null;
}

export interface Reenrollment {
  /** The new certificate, on the old one's thing. */
  certificate: NewCertificate;
  oldCertificateId: string;
  at: Date;
  graceUntil: Date;
  /** For the status history of superseded certificates. */
  actor: string;
}

export interface ReenrollmentResult {
  /** Policies copied from the old certificate to the new one. */
  policies: string[];
  /** Earlier, still unused certificates of the same old one, revoked `superseded` by this re-enrollment. */
  superseded: CertificateRecord[];
}

export interface SettledReenrollment {
  link: ReenrollmentLink;
  /** The old certificate as revoked now; null if it was revoked already. */
  revoked: CertificateRecord | null;
  /** Its status before. */
  from: CertificateRecord['status'] | null;
}

export type NetworkIdentityType = 'imsi' | 'imei';

export interface NetworkBootstrap {
  type: NetworkIdentityType;
  value: string;
  /** The thing to bind; must be the identity's thing if it is bound already ('conflict' otherwise: decided on a stale read). */
  thingName: string;
  at: Date;
  certificate: NewCertificate;
  decideThing(existing: ThingRecord | undefined): ThingChange;
  policies: readonly string[];
  groups: readonly string[];
}

/** EST enrollment and network bootstrap (provisioning/). */
export interface EnrollmentStore {
  /** All or none; 'conflict' on a duplicate id or username. */
  insertEnrollmentSecrets(secrets: readonly NewEnrollmentSecret[], audit?: AuditInput): Promise<void>;
  getEnrollmentSecretByUsername(username: string): Promise<EnrollmentSecretRecord | undefined>;
  /** Oldest first. */
  listEnrollmentSecrets(query: EnrollmentSecretQuery): Promise<Page<EnrollmentSecretRecord>>;
  /** Idempotent; 'not-found', or 'invalid-state' once spent. */
  revokeEnrollmentSecret(id: string, at: Date, audit?: AuditInput): Promise<EnrollmentSecretRecord>;
  /**
   * All or nothing: spends the secret (compare-and-set: unspent, unrevoked,
   * unexpired at `at`, else 'invalid-state'), creates or updates the thing
   * as decideThing says, stores the certificate on it, attaches the policies
   * and adds the thing to the groups, and appends `audit`.
   */
  enrollWithSecret(e: SecretEnrollment, audit?: AuditInput): Promise<ThingOutcome>;

  /**
   * All or nothing: the old certificate must still be active
   * ('invalid-state'); earlier pending re-enrollments of it are settled
   * 'superseded' and their (unused) certificates revoked `superseded`; the
   * new certificate is stored with the old one's policies and the link.
   */
  insertReenrollment(r: Reenrollment, audit?: AuditInput): Promise<ReenrollmentResult>;
  /** The unsettled link whose new certificate this is. */
  pendingReenrollment(newCertificateId: string): Promise<ReenrollmentLink | undefined>;
  /**
   * Settles the link (compare-and-set: undefined if settled already) and
   * revokes the old certificate `superseded`, in one transaction.
   */
  settleReenrollment(newCertificateId: string, outcome: Exclude<ReenrollmentOutcome, 'superseded'>, at: Date, actor: string, audit?: AuditInput): Promise<SettledReenrollment | undefined>;
  /** Unsettled links whose grace ended before `before`, soonest first. */
  dueReenrollments(before: Date, limit: number): Promise<ReenrollmentLink[]>;

  /** The thing an identity is bound to. */
  networkIdentityThing(type: NetworkIdentityType, value: string): Promise<string | undefined>;
  /**
   * All or nothing: creates or updates the thing, binds the identity to it
   * if new ('conflict' when the thing holds another identity of the type,
   * or the identity went to another thing meanwhile), stores the
   * certificate on it, attaches policies, adds groups, appends `audit`.
   */
  bootstrapNetworkIdentity(b: NetworkBootstrap, audit?: AuditInput): Promise<ThingOutcome & { bound: boolean }>;
}

const SECRET_COLUMNS = ['id', 'username', 'secret_hash', 'thing_name', 'batch', 'template', 'profile', 'created_at', 'expires_at', 'spent_at', 'certificate_id', 'revoked_at'] as const;
const LINK_COLUMNS = ['new_certificate_id', 'old_certificate_id', 'created_at', 'grace_until', 'settled_at', 'outcome'] as const;
const SECRET_CURSOR = 'enrollment-secrets';

function secretRecord(r: EstEnrollmentSecretsTable): EnrollmentSecretRecord {
  return {
    id: r.id,
    username: r.username,
    secretHash: r.secret_hash,
    thingName: r.thing_name,
    batch: r.batch,
    template: r.template,
    profile: r.profile,
    createdAt: fromIso(r.created_at),
    expiresAt: fromIso(r.expires_at),
    spentAt: fromIsoOrNull(r.spent_at),
    certificateId: r.certificate_id,
    revokedAt: fromIsoOrNull(r.revoked_at),
  };
}

function linkRecord(r: CertificateReenrollmentsTable): ReenrollmentLink {
  return {
    newCertificateId: r.new_certificate_id,
    oldCertificateId: r.old_certificate_id,
    createdAt: fromIso(r.created_at),
    graceUntil: fromIso(r.grace_until),
    settledAt: fromIsoOrNull(r.settled_at),
    outcome: r.outcome as ReenrollmentOutcome | null,
  };
}

export async function insertEnrollmentSecrets(ctx: StoreContext, secrets: readonly NewEnrollmentSecret[], audit?: AuditInput): Promise<void> {
  const rows: EstEnrollmentSecretsTable[] = secrets.map((s) => ({
    id: s.id,
    username: s.username,
    secret_hash: s.secretHash,
    thing_name: s.thingName,
    batch: s.batch,
    template: s.template,
    profile: s.profile,
    created_at: toIso(s.createdAt, 'createdAt'),
    expires_at: toIso(s.expiresAt, 'expiresAt'),
    spent_at: null,
    certificate_id: null,
    revoked_at: null,
  }));
  if (rows.length === 0) throw new CertfleetError('bad-request', 'no enrollment secrets to store');
  await write(ctx, 'enrollment secret', audit, async (trx) => {
    // In chunks: SQLite binds at most 32766 parameters per statement.
    for (let i = 0; i < rows.length; i += 500) await v7(trx).insertInto('est_enrollment_secrets').values(rows.slice(i, i + 500)).execute();
  });
}

export async function getEnrollmentSecretByUsername(db: Db, username: string): Promise<EnrollmentSecretRecord | undefined> {
  const row = await guarded('enrollment secret', () => v7(db).selectFrom('est_enrollment_secrets').select(SECRET_COLUMNS).where('username', '=', username).executeTakeFirst());
  return row && secretRecord(row);
}

export async function listEnrollmentSecrets(db: Db, q: EnrollmentSecretQuery): Promise<Page<EnrollmentSecretRecord>> {
  checkLimit(q.limit);
  const after = q.cursor === undefined ? undefined : decodeCursor(SECRET_CURSOR, q.cursor, 2);
  const rows = await guarded('enrollment secret list', () => {
    let select = v7(db).selectFrom('est_enrollment_secrets').select(SECRET_COLUMNS);
    if (q.batch !== undefined) select = select.where('batch', '=', q.batch);
    if (after !== undefined) {
      const [createdAt, id] = after as [string, string];
      select = select.where((eb) => eb.or([eb('created_at', '>', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '>', id)])]));
    }
    return select.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute();
  });
  const items = rows.slice(0, q.limit).map(secretRecord);
  const last = rows.length > q.limit ? rows[q.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(SECRET_CURSOR, [last.created_at, last.id]) };
}

export async function revokeEnrollmentSecret(ctx: StoreContext, id: string, at: Date, audit?: AuditInput): Promise<EnrollmentSecretRecord> {
  const when = toIso(at, 'at');
  return write(ctx, `enrollment secret ${id}`, audit, async (trx) => {
    await v7(trx).updateTable('est_enrollment_secrets').set({ revoked_at: when }).where('id', '=', id).where('revoked_at', 'is', null).where('spent_at', 'is', null).execute();
    const row = await v7(trx).selectFrom('est_enrollment_secrets').select(SECRET_COLUMNS).where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new CertfleetError('not-found', `enrollment secret ${id} not found`);
    if (row.revoked_at === null) throw new CertfleetError('invalid-state', `enrollment secret ${id} was already spent`);
    return secretRecord(row);
  });
}

/** Creates, updates or keeps the thing as `decide` says; the rule may throw, which rolls the caller's transaction back. */
async function applyThing(inner: StoreContext, name: string, decide: (existing: ThingRecord | undefined) => ThingChange): Promise<ThingOutcome & { thing: ThingRecord }> {
  const existing = await things.getThing(inner.db, name);
  const change = decide(existing);
  if (change.kind === 'create') return { thing: await things.createThing(inner, { name, attributes: change.attributes }), change: 'create' };
  if (change.kind === 'update') return { thing: await things.updateThing(inner, name, { attributes: change.attributes }), change: 'update' };
  if (existing === undefined) throw new CertfleetError('internal', `enrollment kept thing ${name}, which does not exist`);
  return { thing: existing, change: 'keep' };
}

/** The certificate's policies and its thing's groups, those missing only. */
async function attachAll(inner: StoreContext, certificateId: string, thing: string | null, policies: readonly string[], groupNames: readonly string[]): Promise<void> {
  const attached = new Set(await attachments.policiesOfTarget(inner.db, { type: 'certificate', id: certificateId }));
  for (const p of new Set(policies)) if (!attached.has(p)) await attachments.attachPolicy(inner, p, { type: 'certificate', id: certificateId });
  if (thing === null) return;
  const memberOf = new Set((await groups.groupsOfThing(inner.db, thing)).filter((g) => g.depth === 0).map((g) => g.name));
  for (const g of new Set(groupNames)) if (!memberOf.has(g)) await groups.addThingToGroup(inner, g, thing);
}

export async function enrollWithSecret(ctx: StoreContext, e: SecretEnrollment, audit?: AuditInput): Promise<ThingOutcome> {
  const at = toIso(e.at, 'at');
  return write(ctx, `enrollment with secret ${e.secretId}`, audit, async (trx) => {
    const inner: StoreContext = { ...ctx, db: trx };
    // First, so two enrollments with one secret cannot both get past this line (SQLite: one
    // writer; PostgreSQL: the second waits for the row lock, then finds the secret spent).
    const spent = await v7(trx)
      .updateTable('est_enrollment_secrets')
      .set({ spent_at: at })
      .where('id', '=', e.secretId)
      .where('spent_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    if (spent.numUpdatedRows === 0n) throw new CertfleetError('invalid-state', 'the enrollment secret is spent, revoked or expired');
    let outcome: ThingOutcome = { thing: null, change: null };
    const name = e.certificate.thingName;
    if (name !== null) {
      if (!e.decideThing) throw new CertfleetError('internal', 'an enrollment onto a thing needs its override rule');
      outcome = await applyThing(inner, name, e.decideThing);
    }
    await certificates.insertCertificate(inner, e.certificate);
    await v7(trx).updateTable('est_enrollment_secrets').set({ certificate_id: e.certificate.id }).where('id', '=', e.secretId).execute();
    await attachAll(inner, e.certificate.id, name, e.policies, e.groups);
    return outcome;
  });
}

/** Revokes `superseded` by compare-and-set on active/inactive, with history; null if it is revoked already. Also used by renewal (campaigns.ts). */
export async function supersede(trx: Db, id: string, at: string, actor: string, note: string): Promise<{ record: CertificateRecord; from: CertificateRecord['status'] } | null> {
  const before = await trx.selectFrom('certificates').select('status').where('id', '=', id).executeTakeFirst();
  if (before === undefined || before.status === 'revoked') return null;
  const row = await trx
    .updateTable('certificates')
    .set({ status: 'revoked', revoked_at: at, revocation_reason: 'superseded' })
    .where('id', '=', id)
    .where('status', '=', before.status)
    .returning(CERTIFICATE_COLUMNS)
    .executeTakeFirst();
  if (row === undefined) return null;
  await trx.insertInto('certificate_status_history').values({ certificate_id: id, status: 'revoked', reason: note, actor, at }).execute();
  return { record: certificateRecord(row), from: before.status };
}

export async function insertReenrollment(ctx: StoreContext, r: Reenrollment, audit?: AuditInput): Promise<ReenrollmentResult> {
  const at = toIso(r.at, 'at');
  const graceUntil = toIso(r.graceUntil, 'graceUntil');
  const oldId = r.oldCertificateId;
  return write(ctx, `re-enrollment of certificate ${oldId}`, audit, async (trx) => {
    const inner: StoreContext = { ...ctx, db: trx };
    // A write that changes nothing but checks "still active" and, on PostgreSQL, takes the
    // old row's lock: two re-enrollments of one certificate run one after the other.
    const locked = await trx.updateTable('certificates').set({ status: 'active' }).where('id', '=', oldId).where('status', '=', 'active').executeTakeFirst();
    if (locked.numUpdatedRows === 0n) throw new CertfleetError('invalid-state', `certificate ${oldId} is no longer active`);

    const superseded: CertificateRecord[] = [];
    const pending = await v7(trx).selectFrom('certificate_reenrollments').select(LINK_COLUMNS).where('old_certificate_id', '=', oldId).where('settled_at', 'is', null).execute();
    for (const link of pending) {
      await v7(trx).updateTable('certificate_reenrollments').set({ settled_at: at, outcome: 'superseded' }).where('new_certificate_id', '=', link.new_certificate_id).execute();
      const revoked = await supersede(trx, link.new_certificate_id, at, r.actor, `superseded by re-enrollment ${r.certificate.id}`);
      if (revoked) superseded.push(revoked.record);
    }

    await certificates.insertCertificate(inner, r.certificate);
    const policies = await attachments.policiesOfTarget(trx, { type: 'certificate', id: oldId });
    for (const p of policies) await attachments.attachPolicy(inner, p, { type: 'certificate', id: r.certificate.id });
    await v7(trx)
      .insertInto('certificate_reenrollments')
      .values({ new_certificate_id: r.certificate.id, old_certificate_id: oldId, created_at: at, grace_until: graceUntil, settled_at: null, outcome: null })
      .execute();
    return { policies, superseded };
  });
}

export async function pendingReenrollment(db: Db, newCertificateId: string): Promise<ReenrollmentLink | undefined> {
  const row = await guarded('re-enrollment', () =>
    v7(db).selectFrom('certificate_reenrollments').select(LINK_COLUMNS).where('new_certificate_id', '=', newCertificateId).where('settled_at', 'is', null).executeTakeFirst(),
  );
  return row && linkRecord(row);
}

export async function settleReenrollment(
  ctx: StoreContext,
  newCertificateId: string,
  outcome: Exclude<ReenrollmentOutcome, 'superseded'>,
  at: Date,
  actor: string,
  audit?: AuditInput,
): Promise<SettledReenrollment | undefined> {
  const when = toIso(at, 'at');
  const entry = audit === undefined ? undefined : prepareAudit(audit, ctx.now);
  return write(ctx, `re-enrollment ${newCertificateId}`, undefined, async (trx) => {
    const row = await v7(trx)
      .updateTable('certificate_reenrollments')
      .set({ settled_at: when, outcome })
      .where('new_certificate_id', '=', newCertificateId)
      .where('settled_at', 'is', null)
      .returning(LINK_COLUMNS)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const note = outcome === 'used' ? `replaced by ${newCertificateId}, now in use` : `replaced by ${newCertificateId}; grace period over`;
    const revoked = await supersede(trx, row.old_certificate_id, when, actor, note);
    // Audited only when the old certificate was revoked here.
    if (revoked && entry) await appendAudit(trx, ctx.dialect, entry);
    return { link: linkRecord(row), revoked: revoked?.record ?? null, from: revoked?.from ?? null };
  });
}

export async function dueReenrollments(db: Db, before: Date, limit: number): Promise<ReenrollmentLink[]> {
  checkLimit(limit);
  const rows = await guarded('re-enrollments', () =>
    v7(db).selectFrom('certificate_reenrollments').select(LINK_COLUMNS).where('settled_at', 'is', null).where('grace_until', '<=', toIso(before, 'before')).orderBy('grace_until').limit(limit).execute(),
  );
  return rows.map(linkRecord);
}

export async function networkIdentityThing(db: Db, type: NetworkIdentityType, value: string): Promise<string | undefined> {
  const row = await guarded('network identity', () => v7(db).selectFrom('network_identities').select('thing_name').where('type', '=', type).where('value', '=', value).executeTakeFirst());
  return row?.thing_name;
}

export async function bootstrapNetworkIdentity(ctx: StoreContext, b: NetworkBootstrap, audit?: AuditInput): Promise<ThingOutcome & { bound: boolean }> {
  const at = toIso(b.at, 'at');
  if (b.certificate.thingName !== b.thingName) throw new CertfleetError('bad-request', 'the certificate must go on the bootstrapped thing');
  return write(ctx, `${b.type} ${b.value}`, audit, async (trx) => {
    const inner: StoreContext = { ...ctx, db: trx };
    const bound = await v7(trx).selectFrom('network_identities').select('thing_name').where('type', '=', b.type).where('value', '=', b.value).executeTakeFirst();
    if (bound !== undefined && bound.thing_name !== b.thingName) throw new CertfleetError('conflict', `${b.type} ${b.value} is bound to thing ${bound.thing_name}`);
    const outcome = await applyThing(inner, b.thingName, b.decideThing);
    if (bound === undefined) {
      const other = await v7(trx).selectFrom('network_identities').select('value').where('thing_name', '=', b.thingName).where('type', '=', b.type).executeTakeFirst();
      if (other !== undefined) throw new CertfleetError('conflict', `thing ${b.thingName} is bound to ${b.type} ${other.value}`);
      try {
        await v7(trx).insertInto('network_identities').values({ type: b.type, value: b.value, thing_name: b.thingName, created_at: at }).execute();
      } catch (err) {
        if (classifyDriverError(err) === 'unique') throw new CertfleetError('conflict', `${b.type} ${b.value} was bound by a concurrent request; retry`, { cause: err });
        throw err;
      }
    }
    await certificates.insertCertificate(inner, b.certificate);
    await attachAll(inner, b.certificate.id, b.thingName, b.policies, b.groups);
    return { ...outcome, bound: bound === undefined };
  });
}
