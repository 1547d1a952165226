/**
 * Issuer rotation (DESIGN.md row 7): a new root and issuing CA are created
 * beside the old ones (`ca create`), the new root is cross-certified by the
 * old one so devices that trust only the old root accept what the new
 * issuer signs (RFC 4158 §2.3, RFC 5280 §3.2), leaves are re-issued, and the
 * old CA is retired once nothing active depends on it.
 */
import {
  Certificate,
  CertificateTemplate,
  importSpki,
  prepareIssuance,
  PROFILES,
  sha256Hex,
  validateChain,
  withPathLen,
} from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import { SETTING_ISSUER, type Authorities } from '../registry/authorities.js';
import { audit, SYSTEM, type Actor } from '../registry/actor.js';
import type { Revoker } from '../revocation/revoker.js';
import type { Signer } from '../signer/signer.js';
import type { CaRecord, CaStore, CertificateStore, CrossCertificateRecord, DefaultIssuerStore, DependentCertificate, IssuerRotationStore, Page, PageRequest } from '../store/index.js';

const DAY = 86_400_000;

export interface IssuerRotationDeps {
  readonly store: IssuerRotationStore & Pick<CaStore, 'listCas'> & DefaultIssuerStore & Pick<CertificateStore, 'getCertificate'>;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly now: () => Date;
}

export interface Dependents extends Page<DependentCertificate> {
  /** Every active certificate under the CA, not only this page. */
  readonly count: number;
  /** The CA and every CA below it. */
  readonly issuers: readonly string[];
}

/** Retiring a CA that active certificates still depend on, without `force`. */
export class StillDependedOn extends CertfleetError {
  constructor(
    readonly ca: CaRecord,
    readonly dependents: number,
  ) {
    super('invalid-state', `${dependents} active certificates still depend on CA ${ca.name}; re-issue them first, or retire with force`);
  }
}

/** Retiring the CA new certificates are issued from (or a CA above it) before another is the default. */
export class DefaultIssuerInUse extends CertfleetError {
  constructor(
    readonly ca: CaRecord,
    readonly defaultIssuer: CaRecord,
  ) {
    super(
      'conflict',
      ca.id === defaultIssuer.id
        ? `CA ${ca.name} is the default issuer: make another CA the default issuer first (certfleet ca set-default)`
        : `CA ${ca.name} is above the default issuer ${defaultIssuer.name}: make a CA outside it the default issuer first (certfleet ca set-default)`,
    );
  }
}

export class IssuerRotation {
  constructor(private readonly deps: IssuerRotationDeps) {}

  /**
   * A certificate for `caId`'s subject and key signed by the root `byId`,
   * with the intermediate-ca profile: the same subject DER and key, so it
   * has the same subject key identifier and chains from the old root to
   * whatever the new CA signed. Its validity is the new CA's remaining life,
   * clamped to the old root's (prepareIssuance never lets a certificate
   * outlive its issuer). Its path length is the new CA's own: a root
   * (unconstrained) stays unconstrained, so the intermediates below it fit.
   */
  async crossSign(actor: Actor, caId: string, byId: string): Promise<CrossCertificateRecord> {
    const ca = await this.deps.authorities.get(caId);
    const by = await this.deps.authorities.get(byId);
    if (ca.id === by.id) throw new CertfleetError('bad-request', 'a CA cannot cross-sign itself');
    if (by.kind !== 'root') throw new CertfleetError('bad-request', `CA ${by.name} is not a root: cross-sign with the old root`);
    if (by.status !== 'active') throw new CertfleetError('invalid-state', `CA ${by.name} is ${by.status} and cannot sign`);
    if (ca.status !== 'active') throw new CertfleetError('invalid-state', `CA ${ca.name} is ${ca.status}`);
    if (ca.kind === 'external') throw new CertfleetError('bad-request', `CA ${ca.name} was registered from outside; cross-sign only CAs made in certfleet`);
    const cert = Certificate.fromDer(ca.certificateDer);
    const now = this.deps.now();
    const remaining = Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY);
    if (remaining < 1) throw new CertfleetError('invalid-state', `CA ${ca.name} expires within a day`);
    const profile = withPathLen(PROFILES['intermediate-ca'], ca.pathLen);
    const issuer = (await this.deps.authorities.issuer(by.id)).info;
    const prepared = prepareIssuance(new CertificateTemplate(issuer, profile), {
      subject: cert.subjectAttributes(),
      publicKey: importSpki(cert.spki),
      validityDays: Math.min(remaining, profile.maxValidityDays),
      now,
    });
    const der = await this.deps.signer.issue(prepared);
    const issued = Certificate.fromDer(der);
    // The chain only works if the names match byte for byte (RFC 5280 §7.1).
    if (!issued.subjectDer.equals(cert.subjectDer)) throw new CertfleetError('internal', `the cross certificate's subject differs from CA ${ca.name}'s`);
    const record: CrossCertificateRecord = {
      id: sha256Hex(der),
      caId: ca.id,
      signedBy: by.id,
      serial: prepared.serial,
      der,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      createdAt: now,
    };
    await this.deps.store.insertCrossCertificate(record, audit(actor, 'ca.cross-sign', `ca:${ca.id}`, { by: by.id, serial: record.serial, notAfter: record.notAfter.toISOString() }));
    // Chains are cached per CA: the next chain built carries the cross certificate.
    this.deps.authorities.invalidate();
    return record;
  }

  async crossCertificates(caId: string): Promise<CrossCertificateRecord[]> {
    const ca = await this.deps.authorities.get(caId);
    return this.deps.store.crossCertificatesOf(ca.id);
  }

  /** Active certificates issued by the CA or by any CA below it. */
  async dependents(caId: string, page: PageRequest): Promise<Dependents> {
    const ca = await this.deps.authorities.get(caId);
    const issuers = subtree(await this.deps.store.listCas(), ca.id);
    const [count, p] = await Promise.all([this.deps.store.countDependents(issuers), this.deps.store.listDependents(issuers, page)]);
    return { ...p, count, issuers };
  }

  /**
   * Retires a CA: it becomes inactive, so it signs nothing more and the
   * broker stops admitting certificates under it. Refused while active
   * certificates depend on it (StillDependedOn), unless forced, and while
   * it is or is above the default issuer (DefaultIssuerInUse), even forced.
   */
  async retire(actor: Actor, caId: string, force = false): Promise<{ ca: CaRecord; dependents: number }> {
    const ca = await this.deps.authorities.get(caId);
    if (ca.status === 'revoked') throw new CertfleetError('invalid-state', `CA ${ca.name} is revoked, which is final`);
    const below = subtree(await this.deps.store.listCas(), ca.id);
    // Even forced: issuance, EST and fleet provisioning would fail from then on.
    const current = await this.deps.authorities.defaultIssuerId().catch(() => undefined);
    if (current !== undefined && below.includes(current)) throw new DefaultIssuerInUse(ca, await this.deps.authorities.get(current));
    const dependents = await this.deps.store.countDependents(below);
    if (dependents > 0 && !force) throw new StillDependedOn(ca, dependents);
    const retired = await this.deps.authorities.setStatus(actor, ca.id, 'inactive');
    return { ca: retired, dependents };
  }

  /**
   * Makes `caId` the CA new certificates are issued from when a request
   * names none: `cert issue`, `POST /certificates`, EST (its `cacerts` too,
   * RFC 7030 §4.1), fleet provisioning, manufacturing batches and the node's
   * own TLS certificate all read the default issuer each time. Only an
   * intermediate made in certfleet (roots sign CAs, not devices; an external
   * CA's key is not here), active and in its validity, under CAs that are
   * all active and valid too: a certificate it issues must chain to a root
   * the broker admits under (DESIGN.md row 5).
   */
  async setDefaultIssuer(actor: Actor, caId: string): Promise<{ ca: CaRecord; previous: string | undefined }> {
    const ca = await this.deps.authorities.get(caId);
    if (ca.kind === 'external') throw new CertfleetError('bad-request', `CA ${ca.name} was registered from outside: certfleet holds no key for it and cannot issue under it`);
    if (ca.kind === 'root') throw new CertfleetError('bad-request', `CA ${ca.name} is a root: roots sign CAs, not devices; make an intermediate under it the default issuer`);
    const now = this.deps.now();
    for (let c: CaRecord | undefined = ca, depth = 0; c; depth++) {
      if (depth > 8) throw new CertfleetError('internal', 'CA hierarchy deeper than 8: a parent loop?');
      const what = c === ca ? `CA ${c.name}` : `CA ${c.name} above ${ca.name}`;
      if (c.status !== 'active') throw new CertfleetError('invalid-state', `${what} is ${c.status}: only an active CA can be the default issuer`);
      if (c.notAfter <= now) throw new CertfleetError('invalid-state', `${what} expired at ${c.notAfter.toISOString()}`);
      if (c.notBefore > now) throw new CertfleetError('invalid-state', `${what} is not valid before ${c.notBefore.toISOString()}`);
      c = c.parentId === null ? undefined : await this.deps.authorities.get(c.parentId);
    }
    const previous = await this.deps.authorities.defaultIssuerId().catch(() => undefined);
    if (previous !== ca.id) {
      await this.deps.store.putDefaultIssuer(SETTING_ISSUER, ca.id, audit(actor, 'ca.set-default-issuer', `ca:${ca.id}`, { from: previous ?? null, to: ca.id }));
    }
    return { ca, previous };
  }

  /**
   * Whether the node's own TLS certificate `leaf` should be re-issued by the
   * default issuer (node/tls.ts, at start): it came from another CA, and a
   * client holding only `trusted` (the node's ca.pem, which the CLI and
   * devices pin) still verifies a certificate of the default issuer — its
   * chain ends at that root or passes a cross certificate from it (RFC 4158
   * §2.3). Otherwise the node keeps its certificate rather than lock them out.
   */
  async serverCertificateMoves(leaf: Certificate, trusted: Certificate): Promise<boolean> {
    const issuerId = await this.deps.authorities.defaultIssuerId().catch(() => undefined);
    // Deactivated behind set-default's back (PATCH /cas/{id}): keep serving rather than fail to start.
    if (issuerId === undefined || (await this.deps.authorities.get(issuerId)).status !== 'active') return false;
    const current = await this.deps.store.getCertificate(sha256Hex(leaf.der));
    if (current ? current.issuerId === issuerId : leaf.issuerDer.equals((await this.deps.authorities.issuer(issuerId)).cert.subjectDer)) return false;
    const [issuer, ...above] = await this.deps.authorities.chain(issuerId);
    try {
      validateChain(issuer!, { intermediates: above, roots: [trusted], at: this.deps.now() });
      return true;
    } catch {
      return false;
    }
  }

  /** The node's previous TLS certificate, replaced by one of the default issuer: superseded (RFC 5280 §5.3.1), so nothing active depends on the old issuer for it. */
  async serverCertificateReplaced(revoker: Pick<Revoker, 'revoke'>, old: Certificate): Promise<void> {
    const record = await this.deps.store.getCertificate(sha256Hex(old.der));
    if (record?.status === 'active') await revoker.revoke(SYSTEM, record.id, 'superseded', 'the node moved to the default issuer');
  }

  /** The CA new certificates are issued from unless a request names another. */
  async defaultIssuer(): Promise<CaRecord> {
    return this.deps.authorities.get(await this.deps.authorities.defaultIssuerId());
  }
}

/** `rootId` and every CA below it. */
export function subtree(cas: readonly CaRecord[], rootId: string): string[] {
  const out = [rootId];
  for (let i = 0; i < out.length; i++) for (const c of cas) if (c.parentId === out[i] && !out.includes(c.id)) out.push(c.id);
  return out;
}
