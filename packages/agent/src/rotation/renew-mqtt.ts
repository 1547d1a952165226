/**
 * Renewal over MQTT (docs/device-protocol.md "Renewal and rotation
 * campaigns"), the try-then-commit way:
 *
 *  1. a new key in the next slot, and a CSR with the current certificate's
 *     subject and names, on `$certfleet/things/{thing}/certificate/renew`;
 *  2. the accepted certificate is written to the next slot;
 *  3. a second connection is made with it (the trial), and
 *     `…/certificate/confirm` is published on that connection: the platform
 *     retires the old certificate only then;
 *  4. next is promoted to current once confirm is accepted.
 *
 * On a failure before confirm the next slot is discarded and the current
 * identity, still active on the platform (nothing was confirmed), keeps
 * working. When confirm was sent but its answer was lost (timeout, dropped
 * connection) the platform may have retired the old certificate already, so
 * next is kept, and the following attempt tries it first (resume-next.ts).
 */
import type { MqttClient } from 'mqtt';
import { Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { closeWithin } from '../mqtt/close.js';
import { mqttRequest } from '../mqtt/request.js';
import { certificateTopics } from '../mqtt/topics.js';
import type { Identity } from '../slots.js';
import type { MqttRenewed, RenewalSlots } from './renewal-types.js';
import { resumeNext } from './resume-next.js';

export type { MqttRenewed, RenewalSlots } from './renewal-types.js';


export interface MqttRenewal {
  readonly slots: RenewalSlots;
  readonly thing: string;
  /** The connection made with the current identity. */
  readonly client: MqttClient;
  /** Makes a connection with an identity (the trial uses it with the next slot). */
  readonly connect: (identity: Identity) => Promise<MqttClient>;
  /** From a renew-required notification, echoed back. */
  readonly campaignId?: string;
  readonly timeoutMs?: number;
}


const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function text(body: unknown, name: string, topic: string): string {
  const v = isObject(body) ? body[name] : undefined;
  if (typeof v !== 'string' || v.length === 0) throw new AgentError('bad-response', `${topic}/accepted lacks ${name}`);
  return v;
}

export async function renewOverMqtt(r: MqttRenewal): Promise<MqttRenewed> {
  const topics = certificateTopics(r.thing);
  const timeoutMs = r.timeoutMs ?? 30_000;
  const current = await r.slots.current();
  if (!current) throw new AgentError('slot-empty', 'no current certificate to renew');
  // A next slot left complete by an earlier attempt: usable if the platform admits it, else discarded.
  const resumed = await resumeNext({ slots: r.slots, thing: r.thing, connect: r.connect, timeoutMs });
  if (resumed) {
    await closeWithin(r.client);
    return resumed;
  }
  let trial: MqttClient | undefined;
  let confirmSent = false;
  try {
    const key = await r.slots.nextKey();
    const csr = key.createCsr(current.certificate.subjectAttributes(), current.certificate.subjectAltNames());
    const answer = await mqttRequest(r.client, topics.renew, { certificateSigningRequest: csr, ...(r.campaignId ? { campaignId: r.campaignId } : {}) }, timeoutMs);
    const certificateId = text(answer, 'certificateId', topics.renew);
    const certificatePem = text(answer, 'certificatePem', topics.renew);
    const chainPem = isObject(answer) && typeof answer.chainPem === 'string' ? answer.chainPem : '';
    let cert: Certificate;
    try {
      cert = Certificate.fromPem(certificatePem);
    } catch (err) {
      throw new AgentError('bad-response', `certificatePem is not a certificate: ${(err as Error).message}`, { cause: err });
    }
    if (!key.matches(cert)) throw new AgentError('bad-response', 'the renewed certificate does not certify the new key');
    const next = await r.slots.writeNext({ certificatePem, chainPem });
    trial = await r.connect(next);
    confirmSent = true;
    const confirmed = await mqttRequest(trial, topics.confirm, { certificateId }, timeoutMs);
    const retiring = isObject(confirmed) && Array.isArray(confirmed.retiring) ? confirmed.retiring.filter((x): x is string => typeof x === 'string') : [];
    const identity = await r.slots.promote();
    const client = trial;
    trial = undefined;
    await closeWithin(r.client);
    return { identity, client, certificateId, retiring };
  } catch (err) {
    trial?.end(true);
    const answerLost = confirmSent && err instanceof AgentError && (err.code === 'timeout' || err.code === 'unreachable');
    if (!answerLost) await r.slots.discardNext();
    throw err;
  }
}
