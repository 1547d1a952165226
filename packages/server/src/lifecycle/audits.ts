/**
 * Fleet audits: what is about to break or is already unsafe. Each finding
 * has a severity, the resource, a stable reason code and the mitigations an
 * operator can apply. Reads only; lifecycle/findings.ts stores what a run
 * found. Fleet-wide checks are one indexed statement each (AuditQueryStore),
 * never a query per certificate: a million certificates audit in seconds
 * (bench/audit.ts).
 */
import { Certificate } from '@certfleet/pki';
import type { AuditQueryStore, CaStore, CertificateRecord, CertificateStore, ConnectionStore, PolicyStore, RsaCertificateRow } from '../store/index.js';
import { hasRocaFingerprint } from './roca.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low';
export type Mitigation = 'renew-certificate' | 'rotate-ca' | 'deactivate-certificate' | 'revoke-certificate' | 'add-thing-to-group' | 'replace-device' | 'edit-policy' | 'notify';

export type ReasonCode =
  | 'ca-expiring'
  | 'ca-expired'
  | 'device-certificate-expiring'
  | 'device-certificate-expired'
  | 'device-certificate-old'
  | 'revoked-ca-active-certificates'
  | 'revoked-intermediate-active-certificates'
  | 'conflicting-connections'
  | 'weak-key'
  | 'roca-key'
  | 'permissive-policy'
  | 'device-never-seen'
  | 'device-not-seen';

export interface Finding {
  readonly severity: Severity;
  readonly reasonCode: ReasonCode;
  readonly resourceType: 'ca' | 'certificate' | 'policy' | 'thing';
  readonly resource: string;
  readonly message: string;
  readonly mitigations: readonly Mitigation[];
}

export interface AuditOptions {
  /** Expiry window for CA and device certificates (default 30 days). */
  readonly expiringWithinDays?: number;
  /** Flag device certificates older than this (off by default). */
  readonly maxAgeDays?: number;
  /** Flag devices not seen for this long (default 30 days). */
  readonly notSeenDays?: number;
  /** How far back to look for one certificate on two connections at once (default 7 days). */
  readonly connectionWindowDays?: number;
}

export interface AuditDeps {
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly certificates: Pick<CertificateStore, 'listCertificates' | 'countCertificates'> & AuditQueryStore;
  readonly policies: Pick<PolicyStore, 'listPolicies' | 'getPolicy'>;
  readonly connections: Pick<ConnectionStore, 'listConnections'>;
  readonly now: () => Date;
}

const DAY = 86_400_000;

async function* all<T>(page: (cursor?: string) => Promise<{ items: T[]; next?: string }>): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    yield* p.items;
    cursor = p.next;
  } while (cursor);
}

export async function runAudit(deps: AuditDeps, opts: AuditOptions = {}): Promise<Finding[]> {
  const now = deps.now();
  const within = (opts.expiringWithinDays ?? 30) * DAY;
  const findings: Finding[] = [];
  const cas = await deps.cas.listCas();
  const activeByIssuer = await deps.certificates.activeCountsByIssuer(cas.filter((c) => c.status === 'revoked').map((c) => c.id));

  for (const ca of cas) {
    if (ca.status === 'revoked') {
      const active = activeByIssuer.get(ca.id) ?? 0;
      if (active > 0) {
        findings.push({
          severity: 'critical',
          reasonCode: ca.kind === 'intermediate' ? 'revoked-intermediate-active-certificates' : 'revoked-ca-active-certificates',
          resourceType: 'ca',
          resource: ca.id,
          message: `${ca.kind} CA ${ca.name} is revoked but ${active} device certificates under it are still active`,
          mitigations: ['replace-device', 'deactivate-certificate', 'notify'],
        });
      }
      continue;
    }
    if (ca.notAfter <= now) findings.push({ severity: 'critical', reasonCode: 'ca-expired', resourceType: 'ca', resource: ca.id, message: `CA ${ca.name} expired at ${ca.notAfter.toISOString()}`, mitigations: ['rotate-ca', 'notify'] });
    else if (ca.notAfter.getTime() - now.getTime() <= within) {
      findings.push({ severity: 'high', reasonCode: 'ca-expiring', resourceType: 'ca', resource: ca.id, message: `CA ${ca.name} expires at ${ca.notAfter.toISOString()}`, mitigations: ['rotate-ca', 'notify'] });
    }
  }

  const expiring = (cursor?: string) => deps.certificates.listCertificates({ status: 'active', expiringBefore: new Date(now.getTime() + within), limit: 1000, ...(cursor ? { cursor } : {}) });
  for await (const c of all(expiring)) {
    const expired = c.notAfter <= now;
    findings.push({
      severity: expired ? 'high' : 'medium',
      reasonCode: expired ? 'device-certificate-expired' : 'device-certificate-expiring',
      resourceType: 'certificate',
      resource: c.id,
      message: `certificate ${c.subject}${c.thingName ? ` of ${c.thingName}` : ''} ${expired ? 'expired' : 'expires'} at ${c.notAfter.toISOString()}`,
      mitigations: expired ? ['replace-device', 'deactivate-certificate'] : ['renew-certificate', 'notify'],
    });
  }

  for await (const c of all((cursor?: string) => deps.certificates.activeRsaCertificates({ limit: 1000, ...(cursor ? { cursor } : {}) }))) findings.push(...keyFindings(c));
  if (opts.maxAgeDays !== undefined) {
    // Off by default: the only check that reads every active certificate.
    for await (const c of all((cursor?: string) => deps.certificates.listCertificates({ status: 'active', limit: 1000, ...(cursor ? { cursor } : {}) }))) {
      if (now.getTime() - c.notBefore.getTime() > opts.maxAgeDays * DAY) {
        findings.push({ severity: 'low', reasonCode: 'device-certificate-old', resourceType: 'certificate', resource: c.id, message: `certificate ${c.subject} is older than ${opts.maxAgeDays} days`, mitigations: ['renew-certificate'] });
      }
    }
  }
  findings.push(...(await seenFindings(deps, now, opts.notSeenDays ?? 30)));

  findings.push(...(await conflictingConnections(deps, now, opts.connectionWindowDays ?? 7)));
  findings.push(...(await permissivePolicies(deps)));
  const order: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3 };
  return findings.sort((a, b) => order[a.severity] - order[b.severity]);
}

function keyFindings(c: RsaCertificateRow | CertificateRecord): Finding[] {
  const m = /^rsa-(\d+)$/.exec(c.keyAlgorithm);
  if (!m) return [];
  if (Number(m[1]) < 2048) {
    return [{ severity: 'high', reasonCode: 'weak-key', resourceType: 'certificate', resource: c.id, message: `certificate ${c.subject} has an RSA key of ${m[1]} bits`, mitigations: ['replace-device', 'revoke-certificate'] }];
  }
  const jwk = Certificate.fromDer(c.der).publicKey.export({ format: 'jwk' });
  const n = BigInt(`0x${Buffer.from(jwk.n ?? '', 'base64url').toString('hex')}`);
  return hasRocaFingerprint(n)
    ? [{ severity: 'critical', reasonCode: 'roca-key', resourceType: 'certificate', resource: c.id, message: `certificate ${c.subject} has an RSA key with the ROCA fingerprint (CVE-2017-15361)`, mitigations: ['replace-device', 'revoke-certificate'] }]
    : [];
}

/** Active device certificates on a thing, never connected or silent for `days`. */
async function seenFindings(deps: AuditDeps, now: Date, days: number): Promise<Finding[]> {
  const out: Finding[] = [];
  const cutoff = new Date(now.getTime() - days * DAY);
  for await (const d of all((cursor?: string) => deps.certificates.silentDevices(cutoff, now, { limit: 1000, ...(cursor ? { cursor } : {}) }))) {
    out.push(
      d.lastSeen === null
        ? { severity: 'low', reasonCode: 'device-never-seen', resourceType: 'thing', resource: d.thingName, message: `${d.thingName} has never connected with certificate ${d.certificateId.slice(0, 16)}…`, mitigations: ['notify', 'deactivate-certificate'] }
        : { severity: 'low', reasonCode: 'device-not-seen', resourceType: 'thing', resource: d.thingName, message: `${d.thingName} was last seen ${d.lastSeen.toISOString()}`, mitigations: ['notify', 'add-thing-to-group'] },
    );
  }
  return out;
}

/** One certificate on two connections at the same time, from different addresses: a cloned identity. */
async function conflictingConnections(deps: AuditDeps, now: Date, days: number): Promise<Finding[]> {
  const since = now.getTime() - days * DAY;
  const byCert = new Map<string, Array<{ from: number; to: number; remote: string }>>();
  for await (const r of all((cursor?: string) => deps.connections.listConnections({ limit: 1000, ...(cursor ? { cursor } : {}) }))) {
    if (r.connectedAt.getTime() < since) break;
    const list = byCert.get(r.certificateId) ?? [];
    list.push({ from: r.connectedAt.getTime(), to: (r.disconnectedAt ?? now).getTime(), remote: r.remoteAddress.replace(/:\d+$/, '') });
    byCert.set(r.certificateId, list);
  }
  const out: Finding[] = [];
  for (const [certId, list] of byCert) {
    list.sort((a, b) => a.from - b.from);
    const clash = list.some((a, i) => list.slice(i + 1).some((b) => b.from < a.to && b.remote !== a.remote));
    if (clash) {
      out.push({ severity: 'critical', reasonCode: 'conflicting-connections', resourceType: 'certificate', resource: certId, message: `certificate ${certId.slice(0, 16)}… was connected from several addresses at once`, mitigations: ['revoke-certificate', 'replace-device'] });
    }
  }
  return out;
}

/** Policies that allow every topic (`#`) or every client id (`${client.id}` as a connect resource). */
async function permissivePolicies(deps: AuditDeps): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const summary of all((cursor?: string) => deps.policies.listPolicies({ limit: 1000, ...(cursor ? { cursor } : {}) }))) {
    const p = await deps.policies.getPolicy(summary.name);
    const statements = ((p?.document as { statements?: Array<{ effect: string; actions: string[]; resources: string[] }> })?.statements ?? []).filter((s) => s.effect === 'allow');
    const everyTopic = statements.some((s) => s.actions.some((a) => a !== 'connect') && s.resources.some((r) => r === '#' || r === '+/#'));
    const everyClient = statements.some((s) => s.actions.includes('connect') && s.resources.includes('${client.id}'));
    if (everyTopic || everyClient) {
      out.push({
        severity: 'medium',
        reasonCode: 'permissive-policy',
        resourceType: 'policy',
        resource: summary.name,
        message: `policy ${summary.name} allows ${[everyTopic ? 'every topic (#)' : '', everyClient ? 'every client id' : ''].filter(Boolean).join(' and ')}`,
        mitigations: ['edit-policy'],
      });
    }
  }
  return out;
}
