/**
 * Admission to the device endpoint (DESIGN.md "Device endpoint"): a device is
 * let in only with a certificate that chains to an active registered CA, is
 * itself registered and active, in its validity period and not revoked.
 *
 * Admission is ours, not OpenSSL's: the TLS server asks for a certificate but
 * accepts any, and this module decides with the store as the only source of
 * trust, so a CA deactivated at run time stops admitting without a restart and
 * every refusal carries a reason from a closed set.
 *
 * A certificate that chains to an active CA but is not registered may be
 * registered on the spot by the `autoRegister` hook (just-in-time
 * provisioning and registration, provisioning/jit.ts): admission then goes
 * on with the stored record, so a provisioned device is admitted on that
 * same connection. The broker only reads; the hook's owner writes.
 *
 * A path once validated is kept (verified-paths.ts) for as long as the CA
 * rows read every second are the same; the certificate's record, and so its
 * status, is read on every connect, and validity is checked against the clock.
 */
import { createHash } from 'node:crypto';
import { Certificate, OID, PkiError, validateChain } from '@certfleet/pki';
import type { CaRecord, CaStore, CertificateRecord, CertificateStore } from '../store/index.js';
import { pathKey, VerifiedPaths, type VerifiedPath } from './verified-paths.js';

/** Why a device was refused, checked in this order (the first that applies wins). */
export type AdmissionRefusal =
  | 'no-certificate'
  | 'not-yet-valid'
  | 'expired'
  | 'untrusted-chain'
  | 'unknown-certificate'
  | 'revoked-certificate'
  | 'pending-activation'
  | 'inactive-certificate'
  /** Auto-registration applied but could not be carried out (template, policy or group missing…). */
  | 'provisioning-failed';

/** Who an admitted connection is; later policy checks key on this. */
export interface DeviceIdentity {
  /** SHA-256 of the leaf's DER, lowercase hex: the certificate's id in the store. */
  readonly certificateId: string;
  readonly thingName: string | null;
  /** The leaf's subject CN (the last one, the most specific), for `${cert.subject.cn}`; null without one. */
  readonly subjectCn: string | null;
  /**
   * Ids of every registered CA the admitted path runs through, and of their
   * registered ancestors: deactivating any of them must end this connection.
   */
  readonly caIds: readonly string[];
  /**
   * The policy loader's epoch (policy-session.ts) read before admission read
   * the certificate's record: while it is still the loader's, no registry
   * event has come since, so the record as admission read it (active, on
   * `thingName`) still holds and the load at CONNECT need not read it again.
   * Absent: the load reads it.
   */
  readonly recordEpoch?: number;
}

export type AdmissionResult =
  | ({ readonly ok: true } & DeviceIdentity)
  | { readonly ok: false; readonly reason: AdmissionRefusal; readonly detail: string };

/** A certificate that chains to an active registered CA and is not registered itself. */
export interface UnregisteredCertificate {
  readonly leaf: Certificate;
  /**
   * Every active registration of the CA that signed the leaf directly (one CA
   * may be registered more than once). Never empty: a leaf whose direct
   * issuer is not a registered CA is not offered for auto-registration.
   */
  readonly issuerIds: readonly string[];
}

/**
 * What the auto-registration hook did: `registered` (now, or by a concurrent
 * connection) and admission goes on with that record; `refused` with why;
 * undefined when it does not apply (no issuer auto-registers): the
 * certificate stays unknown.
 */
export type AutoRegistrationOutcome =
  | { readonly registered: CertificateRecord }
  | { readonly refused: string }
  | undefined;

export type AutoRegister = (certificate: UnregisteredCertificate) => Promise<AutoRegistrationOutcome>;

export interface AdmissionDeps {
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly certificates: Pick<CertificateStore, 'getCertificate'>;
  readonly now: () => Date;
  /** How long one read of the CA list is reused, in ms of `now()`; at most (and by default) 1000. */
  readonly caCacheMs?: number;
  /** Just-in-time provisioning and registration; without it an unknown certificate is refused. */
  readonly autoRegister?: AutoRegister;
  /** How many validated paths are kept for reconnecting devices (verified-paths.ts); default 10,000, 0 keeps none. */
  readonly verifiedPaths?: number;
}

/** A CA is known by its name and key (RFC 5280 §6.1.1 (d)), so a re-issued CA certificate is the same CA. */
const caKey = (c: Certificate): string => `${c.subjectDer.toString('base64')}/${c.spki.toString('base64')}`;

interface TrustSet {
  /** Certificates of every CA that is active and whose ancestors are all active. */
  readonly anchors: Certificate[];
  /** Registered CAs that may not appear anywhere in a device's path, by caKey, with a reason. */
  readonly disabled: Map<string, string>;
  /** By caKey: the ids of each registration of that CA and of all their registered ancestors. */
  readonly lineage: Map<string, string[]>;
  /** By caKey: the ids of the registrations of that CA that may anchor a path (the issuers JIT may use). */
  readonly usable: Map<string, string[]>;
  /** The CA rows this was built from: an identical read keeps this set, and with it `verified`. */
  readonly rows: readonly CaRecord[];
  /** Paths validated against exactly this set of CAs. */
  readonly verified: VerifiedPaths;
}

/** The same CA rows in the same order: nothing a path validation depends on has changed. */
function sameCas(a: readonly CaRecord[], b: readonly CaRecord[]): boolean {
  return a.length === b.length && a.every((x, i) => {
    const y = b[i]!;
    return x.id === y.id && x.name === y.name && x.status === y.status && x.parentId === y.parentId && x.certificateDer.equals(y.certificateDer);
  });
}

const MAX_CA_DEPTH = 8;

function parse(der: Uint8Array): Certificate | undefined {
  try {
    return Certificate.fromDer(der);
  } catch {
    return undefined;
  }
}

function refuse(reason: AdmissionRefusal, detail: string): AdmissionResult & { ok: false } {
  return { ok: false, reason, detail };
}

/** A cached path still answers only while the clock is inside every validity period on it. */
function validNow(p: VerifiedPath, t: number): boolean {
  return t >= p.notBefore.getTime() && t <= p.notAfter.getTime() && t >= p.pathValidFrom && t <= p.pathValidUntil;
}

export class Admission {
  private readonly cacheMs: number;
  private cache: { readonly at: number; readonly trust: Promise<TrustSet> } | undefined;
  private parsed = new Map<string, Certificate>();
  private last: TrustSet | undefined;

  constructor(private readonly deps: AdmissionDeps) {
    this.cacheMs = Math.max(0, Math.min(deps.caCacheMs ?? 1000, 1000));
  }

  /**
   * `peerChainDer[0]` is the client's leaf; the rest are the intermediates it
   * sent, used only as hints for path building (RFC 8446 §4.4.2 lets a peer
   * send any certificates it likes). Rejects only when the store fails.
   */
  async admit(peerChainDer: readonly Uint8Array[]): Promise<AdmissionResult> {
    const [leafDer, ...sent] = peerChainDer;
    if (!leafDer || leafDer.length === 0) return refuse('no-certificate', 'the client sent no certificate');
    const at = this.deps.now();
    const trust = await this.trustAt(at);
    const id = createHash('sha256').update(leafDer).digest('hex');
    const key = pathKey(id, sent);
    const cached = trust.verified.get(key);
    let leaf: Certificate | undefined;
    let path: VerifiedPath;
    // Outside a validity period the full check runs again, and gives the refusal.
    if (cached && validNow(cached, at.getTime())) path = cached;
    else {
      leaf = parse(leafDer);
      if (!leaf) return refuse('untrusted-chain', 'the client certificate is not a DER X.509 certificate certfleet can read');
      const checked = this.validate(leaf, sent, at, trust);
      if (!('caIds' in checked)) return checked;
      path = checked;
      trust.verified.set(key, path);
    }

    let record = await this.deps.certificates.getCertificate(id);
    if (!record) {
      // JIT needs the leaf's direct issuer to be a registered CA, not an intermediate the device sent.
      const { issuerIds } = path;
      leaf ??= Certificate.fromDer(leafDer);
      const outcome = issuerIds.length > 0 && this.deps.autoRegister ? await this.deps.autoRegister({ leaf, issuerIds }) : undefined;
      if (outcome && 'refused' in outcome) return refuse('provisioning-failed', `certificate ${id} (${path.subject}): ${outcome.refused}`);
      if (!outcome) return refuse('unknown-certificate', `certificate ${id} (${path.subject}) is not registered`);
      record = outcome.registered;
    }
    if (record.status === 'revoked') {
      return refuse('revoked-certificate', `certificate ${id} was revoked${record.revocationReason ? ` (${record.revocationReason})` : ''}`);
    }
    // Told apart from 'inactive-certificate': a just-in-time registration waits for someone to activate it.
    if (record.status === 'pending-activation') return refuse('pending-activation', `certificate ${id} is registered and waits for activation`);
    if (record.status !== 'active') return refuse('inactive-certificate', `certificate ${id} is ${record.status}`);
    return { ok: true, certificateId: id, thingName: record.thingName, subjectCn: path.subjectCn, caIds: path.caIds };
  }

  /** The leaf's validity, then its path to an active registered CA (RFC 5280 §6); what the bytes and the CAs decide. */
  private validate(leaf: Certificate, sent: readonly Uint8Array[], at: Date, trust: TrustSet): VerifiedPath | (AdmissionResult & { ok: false }) {
    // Validity first, so an expired device is told apart from an untrusted one
    // (validateChain would refuse both with the same 'chain-invalid').
    if (at < leaf.notBefore()) return refuse('not-yet-valid', `${leaf.subject()} is not valid until ${leaf.notBefore().toISOString()}`);
    if (at > leaf.notAfter()) return refuse('expired', `${leaf.subject()} expired at ${leaf.notAfter().toISOString()}`);
    let path: Certificate[];
    // A registered CA that is not active may not be used even when the device
    // sends it itself: drop it from the hints so no path can pass through it.
    const intermediates = sent.flatMap((der) => parse(der) ?? []).filter((c) => !trust.disabled.has(caKey(c)));
    try {
      path = validateChain(leaf, { roots: trust.anchors, intermediates, at, purpose: OID.clientAuth });
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      const blocked = [...trust.disabled.entries()].find(([key]) => key.startsWith(`${leaf.issuerDer.toString('base64')}/`));
      return refuse('untrusted-chain', blocked ? `${err.message}; issuer ${blocked[1]}` : err.message);
    }
    const cns = leaf.subjectAttributes().filter((a) => a.type === OID.commonName);
    return {
      notBefore: leaf.notBefore(),
      notAfter: leaf.notAfter(),
      pathValidFrom: Math.max(...path.map((c) => c.notBefore().getTime())),
      pathValidUntil: Math.min(...path.map((c) => c.notAfter().getTime())),
      subject: leaf.subject(),
      subjectCn: cns.at(-1)?.value ?? null,
      caIds: [...new Set(path.flatMap((c) => trust.lineage.get(caKey(c)) ?? []))],
      // path[1] signed the leaf; JIT needs it to be a registered CA, not an intermediate the device sent.
      issuerIds: path[1] ? (trust.usable.get(caKey(path[1])) ?? []) : [],
    };
  }

  /** Forgets the CA list, so the next admission reads it again (a CA changed status). */
  invalidate(): void {
    this.cache = undefined;
  }

  /** The CA list, read at most once per cacheMs; concurrent connections share one read. */
  private trustAt(at: Date): Promise<TrustSet> {
    const t = at.getTime();
    const hit = this.cache;
    if (hit && t >= hit.at && t - hit.at < this.cacheMs) return hit.trust;
    const trust = this.deps.cas.listCas().then((cas) => this.build(cas));
    const entry = { at: t, trust };
    this.cache = entry;
    // A failed read is not remembered: the next connection tries again.
    trust.catch(() => {
      if (this.cache === entry) this.cache = undefined;
    });
    return trust;
  }

  private build(cas: readonly CaRecord[]): TrustSet {
    // Read again every second: unchanged CAs keep the paths validated so far.
    if (this.last && sameCas(this.last.rows, cas)) return this.last;
    const byId = new Map(cas.map((ca) => [ca.id, ca]));
    const why = new Map<string, string | null>();
    // Null when the CA may anchor a path; otherwise why not. A CA below an
    // inactive or revoked CA is refused too, or deactivating a root would
    // leave every intermediate under it admitting devices.
    const refusal = (ca: CaRecord, depth: number): string | null => {
      const known = why.get(ca.id);
      if (known !== undefined) return known;
      const parent = ca.parentId ? byId.get(ca.parentId) : undefined;
      let r: string | null = null;
      if (ca.status !== 'active') r = `CA "${ca.name}" is ${ca.status}`;
      else if (depth >= MAX_CA_DEPTH) r = `CA "${ca.name}" is more than ${MAX_CA_DEPTH} levels deep`;
      else if (parent) r = refusal(parent, depth + 1);
      why.set(ca.id, r);
      return r;
    };

    const parsed = new Map<string, Certificate>();
    const anchors: Certificate[] = [];
    const disabled = new Map<string, string>();
    const lineage = new Map<string, string[]>();
    const usable = new Map<string, string[]>();
    for (const ca of cas) {
      const cached = this.parsed.get(ca.id);
      // A stored CA certificate that cannot be parsed anchors nothing (fail closed for that CA only).
      const cert = cached?.der.equals(ca.certificateDer) ? cached : parse(ca.certificateDer);
      if (!cert) continue;
      parsed.set(ca.id, cert);
      const key = caKey(cert);
      const r = refusal(ca, 0);
      if (r === null) {
        anchors.push(cert);
        usable.set(key, [...(usable.get(key) ?? []), ca.id]);
      } else disabled.set(key, r);
      // This registration and its registered ancestors: a change of status
      // of any of them concerns every connection whose path has this CA.
      const ids = lineage.get(key) ?? [];
      let up: CaRecord | undefined = ca;
      for (let depth = 0; up && depth <= MAX_CA_DEPTH; depth++) {
        if (!ids.includes(up.id)) ids.push(up.id);
        up = up.parentId ? byId.get(up.parentId) : undefined;
      }
      lineage.set(key, ids);
    }
    this.parsed = parsed;
    // One CA (name and key) may be registered more than once: re-issued, or
    // cross-signed during an issuer rotation. It stays usable while any of its
    // registrations is active, so retiring the old root does not cut off the
    // devices below a CA that the new root also signed.
    for (const c of anchors) disabled.delete(caKey(c));
    this.last = { anchors, disabled, lineage, usable, rows: cas, verified: new VerifiedPaths(this.deps.verifiedPaths ?? 10_000) };
    return this.last;
  }
}
