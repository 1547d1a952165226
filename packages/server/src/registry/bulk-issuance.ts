/**
 * Manufacturing batches: the deciding layer of issuance (issuance.ts) for up
 * to MAX_BATCH_ITEMS devices at once. Per batch, in this order:
 *  1. verify every CSR and decide every certificate (profile, subject = the
 *     thing, pki prepares and lints the TBS); a bad item fails alone;
 *  2. a thing that already holds a live certificate for the same public key
 *     gets that certificate back instead of a second one, so a factory run
 *     killed after the server answered and rerun is idempotent;
 *  3. the signer journals every serial + TBS in one transaction, then signs
 *     (Boulder's issuance cycle, for the batch);
 *  4. one store transaction writes things, certificates, status history,
 *     policy attachments, group memberships and audit entries;
 * and only then does anyone see a certificate (DESIGN.md, security baseline).
 */
import {
  Certificate,
  decodePem,
  encodePem,
  isProfileName,
  newSerial,
  OID,
  PkiError,
  prepareIssuance,
  PROFILES,
  sha256Hex,
  verifyCsr,
  withValidity,
  type GeneralName,
  type PreparedIssuance,
  type Profile,
} from '@certfleet/pki';
import { CertfleetError, type ErrorCode } from '../errors.js';
import { crlPath, crlShardsSetting, SETTING_PUBLIC_URL, shardOf } from '../revocation/locations.js';
import type { Signer } from '../signer/signer.js';
import type { BulkIssuanceStore, NewCertificate, PolicyStore, SettingsStore, ThingAttributes, ThingGroupStore } from '../store/index.js';
import { audit, type Actor } from './actor.js';
import type { Authorities } from './authorities.js';
import { checkAttributes, checkGroupName, checkPolicyName, checkThingName } from './things.js';

export const MAX_BATCH_ITEMS = 1000;
const ISSUABLE = new Set(['device', 'server']);

export interface BatchItem {
  readonly thing: string;
  /** PEM. */
  readonly csr: string;
  /** For a thing this batch creates; an existing thing keeps its attributes. */
  readonly attributes?: unknown;
}

export interface BatchRequest {
  readonly items: readonly BatchItem[];
  readonly profile?: string;
  readonly validityDays?: number;
  /** Attached to every certificate issued. */
  readonly policies?: readonly string[];
  /** Every thing of the batch joins these. */
  readonly groups?: readonly string[];
  /** Issuing CA id or name; the default issuing CA when absent. */
  readonly issuer?: string;
  readonly actor: Actor;
}

export interface BatchIssued {
  readonly thing: string;
  readonly certificateId: string;
  readonly serial: string;
  readonly certificatePem: string;
  /** SHA-256 of the DER, lowercase hex (also the certificate id). */
  readonly fingerprint: string;
  /** True when the thing already held this certificate for this key (a resumed batch). */
  readonly reused: boolean;
  /** Only when it differs from the batch's chain (a reused certificate from an earlier issuer). */
  readonly chainPem?: string;
}

export interface BatchFailed {
  readonly thing: string;
  readonly error: { readonly code: ErrorCode; readonly detail: string };
}

export type BatchItemResult = BatchIssued | BatchFailed;

export interface BatchResult {
  /** In request order. */
  readonly items: readonly BatchItemResult[];
  /** The issuing chain of the batch: issuer first, root last. */
  readonly chainPem: string;
  /** The root devices trust. */
  readonly caPem: string;
}

export interface BulkIssuanceDeps {
  readonly store: BulkIssuanceStore & Pick<PolicyStore, 'getPolicy'> & Pick<ThingGroupStore, 'getGroup'> & Pick<SettingsStore, 'getSetting'>;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly now: () => Date;
}

/** An item decided and prepared, waiting for its signature. */
interface Pending {
  readonly index: number;
  readonly thing: string;
  readonly attributes: ThingAttributes;
  readonly prepared: PreparedIssuance;
}

const failure = (thing: string, err: unknown): BatchFailed => {
  if (err instanceof CertfleetError || err instanceof PkiError) return { thing, error: { code: err.code, detail: err.message } };
  throw err;
};

export class BulkIssuance {
  constructor(private readonly deps: BulkIssuanceDeps) {}

  async issue(req: BatchRequest): Promise<BatchResult> {
    const { store, authorities, signer, now } = this.deps;
    if (req.items.length === 0) throw new CertfleetError('bad-request', 'a batch needs at least one item');
    if (req.items.length > MAX_BATCH_ITEMS) throw new CertfleetError('payload-too-large', `a batch holds at most ${MAX_BATCH_ITEMS} items`);
    const profile = profileFor(req);
    const policies = [...new Set((req.policies ?? []).map(checkPolicyName))];
    const groups = [...new Set((req.groups ?? []).map(checkGroupName))];
    // Batch-wide names are the caller's mistake for every item alike: refuse the batch.
    for (const p of policies) if (!(await store.getPolicy(p))) throw new CertfleetError('not-found', `no policy named ${p}`);
    for (const g of groups) if (!(await store.getGroup(g))) throw new CertfleetError('not-found', `no thing group named ${g}`);

    const issuerId = req.issuer ? (await authorities.get(req.issuer)).id : await authorities.defaultIssuerId();
    const template = await authorities.template(issuerId, profile);
    const crlUrlOf = await this.crlUrls(issuerId);
    const chain = await authorities.chain(issuerId);
    const chainPem = chain.map((c) => c.toPem()).join('');
    const at = now();

    const results: BatchItemResult[] = new Array<BatchItemResult>(req.items.length);
    const verified: { index: number; thing: string; attributes: ThingAttributes; spki: Buffer; make: () => PreparedIssuance }[] = [];
    const seen = new Set<string>();
    req.items.forEach((item, index) => {
      const thingLabel = typeof item?.thing === 'string' ? item.thing : '';
      try {
        const thing = checkThingName(item.thing);
        if (seen.has(thing)) throw new CertfleetError('conflict', `thing ${thing} appears twice in the batch`);
        seen.add(thing);
        const attributes = checkAttributes(item.attributes);
        if (typeof item.csr !== 'string') throw new CertfleetError('bad-request', 'csr must be a PEM string');
        const csr = verifyCsr(decodePem(item.csr, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'));
        // As issuance.ts: the thing's name is the CN; names in the CSR are honoured only for servers.
        const subject = [...csr.subject.filter((a) => a.type !== OID.commonName), { type: OID.commonName, value: thing }];
        const sans: GeneralName[] = profile.name === 'server' ? [...csr.requestedSans] : [];
        const make = () => {
          const serial = newSerial();
          const crlUrl = crlUrlOf(serial.toString('hex'));
          return prepareIssuance(template, { subject, publicKey: csr.publicKey, sans, now: at, serial, ...(crlUrl ? { crlUrl } : {}) });
        };
        verified.push({ index, thing, attributes, spki: csr.publicKey.spki, make });
      } catch (err) {
        results[index] = failure(thingLabel, err);
      }
    });

    // A thing may already hold the certificate for this very key: the batch was answered once, the answer lost.
    const held = new Map<string, { id: string; serial: string; der: Uint8Array; issuerId: string }[]>();
    for (const c of await store.liveCertificatesOfThings(verified.map((v) => v.thing))) {
      if (c.thingName === null) continue;
      held.set(c.thingName, [...(held.get(c.thingName) ?? []), c]);
    }
    const pending: Pending[] = [];
    const chains = new Map<string, string>([[issuerId, chainPem]]);
    for (const v of verified) {
      const found = (held.get(v.thing) ?? []).find((c) => Certificate.fromDer(c.der).spki.equals(v.spki));
      if (found) {
        let other = chains.get(found.issuerId);
        if (other === undefined) {
          other = (await authorities.chain(found.issuerId)).map((c) => c.toPem()).join('');
          chains.set(found.issuerId, other);
        }
        results[v.index] = {
          thing: v.thing,
          certificateId: found.id,
          serial: found.serial,
          certificatePem: encodePem('CERTIFICATE', found.der),
          fingerprint: found.id,
          reused: true,
          ...(found.issuerId !== issuerId ? { chainPem: other } : {}),
        };
        continue;
      }
      try {
        pending.push({ index: v.index, thing: v.thing, attributes: v.attributes, prepared: v.make() });
      } catch (err) {
        results[v.index] = failure(v.thing, err);
      }
    }

    if (pending.length > 0) {
      const ders = await signer.issueBatch(pending.map((p) => p.prepared));
      const certificates: NewCertificate[] = pending.map((p, i) => {
        const der = ders[i]!;
        return {
          id: sha256Hex(der),
          serial: p.prepared.serial,
          issuerId,
          thingName: p.thing,
          status: 'active',
          profile: profile.name,
          subject: p.prepared.subject,
          notBefore: p.prepared.notBefore,
          notAfter: p.prepared.notAfter,
          keyAlgorithm: p.prepared.keyAlgorithm,
          der,
          createdAt: at,
        };
      });
      const actor = req.actor;
      // Durable before anyone sees it: the answer follows this commit.
      await store.registerBulk({
        things: pending.map((p) => ({ name: p.thing, attributes: p.attributes })),
        certificates,
        policies,
        groups,
        actor: actor.id,
        audit: {
          thingCreated: (t) => audit(actor, 'thing.create', `thing:${t}`),
          certificateIssued: (c) =>
            audit(actor, 'certificate.issue', `certificate:${c.id}`, { serial: c.serial, issuerId: c.issuerId, thing: c.thingName, profile: c.profile }),
          policyAttached: (p, id) => audit(actor, 'policy.attach', `policy:${p}`, { target: { type: 'certificate', id } }),
          groupJoined: (g, t) => audit(actor, 'group.add-thing', `group:${g}`, { thing: t }),
        },
      });
      pending.forEach((p, i) => {
        const c = certificates[i]!;
        results[p.index] = { thing: p.thing, certificateId: c.id, serial: c.serial, certificatePem: encodePem('CERTIFICATE', c.der), fingerprint: c.id, reused: false };
      });
    }
    return { items: results, chainPem, caPem: chain[chain.length - 1]!.toPem() };
  }

  /**
   * The CRL distribution point for a serial, as Authorities.crlUrl decides it
   * (a partitioned issuer puts each serial in its shard), with the settings
   * read once per batch instead of twice per certificate.
   */
  private async crlUrls(issuerId: string): Promise<(serialHex: string) => string | undefined> {
    const shards = Number((await this.deps.store.getSetting(crlShardsSetting(issuerId))) ?? '1');
    const base = await this.deps.store.getSetting(SETTING_PUBLIC_URL);
    if (shards === 1 || !base) return () => undefined;
    return (serial) => base + crlPath(issuerId, shardOf(serial, shards), shards);
  }
}

function profileFor(req: Pick<BatchRequest, 'profile' | 'validityDays'>): Profile {
  const name = req.profile ?? 'device';
  if (!isProfileName(name) || !ISSUABLE.has(name)) throw new CertfleetError('bad-request', `unknown profile "${name}" (device or server)`);
  const p: Profile = PROFILES[name];
  if (req.validityDays === undefined) return p;
  if (!Number.isInteger(req.validityDays) || req.validityDays < 1) throw new CertfleetError('bad-request', 'validityDays must be a positive integer');
  return withValidity(p, req.validityDays);
}
