/** `certfleet-agent status`: what the device holds, read without touching anything. */
import { stat } from 'node:fs/promises';
import type { Certificate } from '@certfleet/pki';
import { TimeFloor } from '../clock.js';
import { AgentError } from '../errors.js';
import { renewalWindow, type RenewalTiming } from '../renewal.js';
import { CertificateSlots, type Identity } from '../slots.js';
import { TrustStore } from '../trust-store.js';

const DAY = 86_400_000;

function describeCert(c: Certificate, now: Date, timing: RenewalTiming) {
  const window = renewalWindow(c, timing);
  return {
    subject: c.subject(),
    issuer: c.issuer(),
    serial: c.serial(),
    fingerprint: c.fingerprint(),
    keyAlgorithm: c.keyAlgorithm(),
    notBefore: c.notBefore().toISOString(),
    notAfter: c.notAfter().toISOString(),
    daysLeft: Math.floor((c.notAfter().getTime() - now.getTime()) / DAY),
    renewal: { from: window.earliest.toISOString(), by: window.latest.toISOString(), due: now >= window.earliest },
  };
}

export type Status = Awaited<ReturnType<typeof readStatus>>;

export async function readStatus(dir: string, timing: RenewalTiming = {}) {
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw new AgentError('bad-input', `${dir} is not an agent data directory`);
  const slots = await CertificateSlots.open(dir, { recover: false });
  const floor = await TimeFloor.open(dir);
  const trust = await TrustStore.open(dir);
  const now = floor.trustedNow();
  const view = (i: Identity | undefined) => (i ? { ...describeCert(i.certificate, now, timing), chainLength: i.chain.length } : null);
  let current: ReturnType<typeof view> = null;
  let currentError: string | null = null;
  try {
    current = view(await slots.current());
  } catch (err) {
    currentError = (err as Error).message;
  }
  return {
    dir,
    current,
    currentError,
    next: { state: await slots.nextState(), identity: view(await slots.next()) },
    promoteInterrupted: await slots.promoteInterrupted(),
    trust: { roots: trust.list().length, problems: trust.problems },
    time: { now: now.toISOString(), basis: floor.basis(), floor: floor.floor().toISOString() },
  };
}

export function formatStatus(s: Status): string {
  const lines: string[] = [];
  if (s.current) {
    const c = s.current;
    lines.push(`identity   ${c.subject}  (serial ${c.serial}, ${c.keyAlgorithm})`);
    lines.push(`issuer     ${c.issuer}${c.chainLength ? `, chain of ${c.chainLength}` : ''}`);
    lines.push(`valid      ${c.notBefore} → ${c.notAfter}  (${c.daysLeft < 0 ? `expired ${-c.daysLeft} days ago` : `${c.daysLeft} days left`})`);
    lines.push(`renewal    ${c.renewal.due ? 'due now' : `between ${c.renewal.from} and ${c.renewal.by}`}`);
  } else {
    lines.push(`identity   ${s.currentError ? `unusable: ${s.currentError}` : 'none (not provisioned)'}`);
  }
  const n = s.next;
  lines.push(`next slot  ${n.state === 'complete' && n.identity ? `${n.identity.subject} (serial ${n.identity.serial}), waiting for promote` : n.state === 'pending-key' ? 'key generated, waiting for a certificate' : 'empty'}`);
  if (s.promoteInterrupted) lines.push('warning    a promote is in progress or was interrupted; the agent recovers it at start');
  lines.push(`trust      ${s.trust.roots} root${s.trust.roots === 1 ? '' : 's'}${s.trust.problems.length ? `; unreadable: ${s.trust.problems.join('; ')}` : ''}`);
  lines.push(`time       ${s.time.now} (${s.time.basis === 'wall-clock' ? 'wall clock' : `time floor: the wall clock is not believable`})`);
  return lines.join('\n');
}
