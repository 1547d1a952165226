/**
 * EST flows on the agent's data directory: the first certificate
 * (simpleenroll) and its renewal (simplereenroll), each with a key made in
 * the next slot, the answer written there and promoted. The server is
 * recognised by the trust store's roots, checked at the time floor
 * (clock.ts), and its Date raises the floor.
 *
 * Enrollment promotes at once: there is no older identity to fall back on.
 * Re-enrollment promotes at once too, because certfleet's simplereenroll
 * supersedes the old certificate as it answers (RFC 7030 §4.2.2 leaves
 * that to the server).
 */
import { type Certificate } from '@certfleet/pki';
import { TimeFloor } from '../clock.js';
import { AgentError } from '../errors.js';
import { CertificateSlots, type Identity } from '../slots.js';
import { TrustStore } from '../trust-store.js';
import { EstClient } from './est-client.js';

export interface EstFlowOptions {
  /** The agent's data directory. */
  readonly dir: string;
  /** https://host:port of the EST server. */
  readonly url: string;
  readonly timeoutMs?: number;
}

async function clientFor(opts: EstFlowOptions): Promise<{ est: EstClient; slots: CertificateSlots }> {
  const [trust, floor, slots] = await Promise.all([TrustStore.open(opts.dir), TimeFloor.open(opts.dir), CertificateSlots.open(opts.dir)]);
  const roots = trust.list();
  if (roots.length === 0) throw new AgentError('trust-root-needed', `no trusted roots in ${opts.dir}/trust: add the server's root first (certfleet-agent trust add)`);
  const est = new EstClient({
    url: opts.url,
    verifyServer: (pems) => void floor.validateServerChain(pems, roots),
    onServerDate: (d) => void floor.acceptServerTime(d).catch(() => {}),
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  return { est, slots };
}

/** Intermediates for chain.pem: what cacerts lists that is not self-issued (the roots are in the trust store). */
function intermediates(cacerts: readonly Certificate[], issued: Certificate): string {
  return cacerts.filter((c) => !c.isSelfIssued && c.fingerprint() !== issued.fingerprint()).map((c) => c.toPem()).join('');
}

async function finish(slots: CertificateSlots, issued: Certificate[], cacerts: Certificate[]): Promise<Identity> {
  const [leaf] = issued;
  const next = await slots.nextKey();
  if (!leaf || !next.matches(leaf)) throw new AgentError('bad-response', 'the EST answer does not certify the key this device sent');
  await slots.writeNext({ certificatePem: leaf.toPem(), chainPem: intermediates([...issued.slice(1), ...cacerts], leaf) });
  return slots.promote();
}

export async function estEnroll(opts: EstFlowOptions & { subject: string; username: string; password: string }): Promise<Identity> {
  const { est, slots } = await clientFor(opts);
  const cacerts = await est.cacerts();
  const key = await slots.nextKey();
  const issued = await est.simpleenroll(key.createCsr(opts.subject), { username: opts.username, password: opts.password });
  return finish(slots, issued, cacerts);
}

export async function estRenew(opts: EstFlowOptions): Promise<Identity> {
  const { est, slots } = await clientFor(opts);
  const current = await slots.current();
  if (!current) throw new AgentError('slot-empty', 'no current certificate to re-enroll with: enroll first');
  const cacerts = await est.cacerts();
  const key = await slots.nextKey();
  // §4.2.2: same subject and subjectAltName as the certificate being renewed, a new key.
  const csr = key.createCsr(current.certificate.subjectAttributes(), current.certificate.subjectAltNames());
  const issued = await est.simplereenroll(csr, { certificatePem: current.certificatePem + current.chainPem, keyPem: current.key.tlsKeyPem() });
  return finish(slots, issued, cacerts);
}
