/**
 * Finishing a renewal that was cut after its certificate arrived: the next
 * slot is complete, current is still the old identity. The confirm may or
 * may not have reached the platform before the cut (a killed device, a
 * killed server, a lost answer). If it did, the old certificate is already
 * deactivated and throwing the new one away would lock the device out; so
 * the new identity is tried first. A connection the platform admits proves
 * it is an active certificate of this thing: confirm it (again — a repeated
 * confirm is answered as the first, docs/device-protocol.md) and promote.
 * A connection refused means it is not usable: discard it, current stays.
 */
import type { MqttClient } from 'mqtt';
import { AgentError } from '../errors.js';
import { mqttRequest } from '../mqtt/request.js';
import { certificateTopics } from '../mqtt/topics.js';
import type { Identity } from '../slots.js';
import type { MqttRenewed, RenewalSlots } from './renewal-types.js';

export interface PendingNext {
  readonly slots: RenewalSlots;
  readonly thing: string;
  readonly connect: (identity: Identity) => Promise<MqttClient>;
  readonly timeoutMs?: number;
}

/** Promotes a complete next slot the platform accepts; undefined when there was none or it was discarded. Throws (keeping next) when the platform could not be asked. */
export async function resumeNext(p: PendingNext): Promise<MqttRenewed | undefined> {
  const next = await p.slots.next();
  if (!next) return undefined;
  let trial: MqttClient;
  try {
    trial = await p.connect(next);
  } catch (err) {
    // Refused by the platform (CONNACK refusal, MQTT 3.1.1 §3.2.2.3, or a TLS alert about the certificate): not usable.
    // Anything else (server down, no answer, server not recognised) says nothing about it: keep it for the next attempt.
    if (err instanceof AgentError && err.code === 'unreachable' && /Connection refused:|not authori[sz]ed|alert|certificate/i.test(err.message)) {
      await p.slots.discardNext();
      return undefined;
    }
    throw err;
  }
  const certificateId = next.certificate.fingerprint();
  let retiring: string[] = [];
  try {
    const confirmed = await mqttRequest(trial, certificateTopics(p.thing).confirm, { certificateId }, p.timeoutMs ?? 30_000);
    const r = (confirmed as { retiring?: unknown } | null)?.retiring;
    retiring = Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : [];
  } catch (err) {
    // Not a renewal the platform tracks (a certificate installed by hand): admitted is enough to use it.
    const notTracked = err instanceof AgentError && err.rejection?.errorCode === 'NothingToConfirm';
    if (!notTracked) {
      trial.end(true);
      if (err instanceof AgentError && err.code === 'rejected') {
        await p.slots.discardNext();
        return undefined;
      }
      throw err;
    }
  }
  const identity = await p.slots.promote();
  return { identity, client: trial, certificateId, retiring };
}
