/**
 * One request/response exchange in the platform's `…/accepted|rejected`
 * style: subscribe to both answers before publishing (else a fast answer is
 * lost), publish at QoS 1, wait for the first answer or the deadline, and
 * always unsubscribe.
 */
import type { MqttClient } from 'mqtt';
import { AgentError, type Rejection } from '../errors.js';
import { acceptedTopic, rejectedTopic } from './topics.js';

/** Pulls the contract's `{ statusCode, errorCode, errorMessage }` out of a rejected answer, tolerating gaps. */
function rejection(body: unknown): Rejection {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  return {
    statusCode: typeof b.statusCode === 'number' ? b.statusCode : 0,
    errorCode: typeof b.errorCode === 'string' ? b.errorCode : 'Unknown',
    errorMessage: typeof b.errorMessage === 'string' ? b.errorMessage : JSON.stringify(body),
  };
}

function parse(topic: string, payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new AgentError('bad-response', `answer on ${topic} is not JSON`, { cause: err });
  }
}

/** Sends `body` as JSON to `topic`; resolves with the accepted answer, rejects with AgentError 'rejected' or 'timeout'. */
export async function mqttRequest(client: MqttClient, topic: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const accepted = acceptedTopic(topic);
  const rejected = rejectedTopic(topic);
  let onMessage: ((t: string, payload: Buffer) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const answer = new Promise<unknown>((resolve, reject) => {
    onMessage = (t, payload) => {
      try {
        if (t === accepted) resolve(parse(t, payload));
        else if (t === rejected) {
          const r = rejection(parse(t, payload));
          reject(new AgentError('rejected', `${topic} rejected: ${r.statusCode} ${r.errorCode}: ${r.errorMessage}`, { rejection: r }));
        }
      } catch (err) {
        reject(err);
      }
    };
    client.on('message', onMessage);
  });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AgentError('timeout', `no answer to ${topic} within ${timeoutMs} ms`)), timeoutMs);
  });
  const exchange = (async () => {
    const grants = await client.subscribeAsync([accepted, rejected], { qos: 1 });
    // 0x80 in SUBACK: the broker refused the subscription ([MQTT-3.9.3], typically a policy denial).
    const refused = grants.filter((g) => g.qos === 128).map((g) => g.topic);
    if (refused.length > 0) throw new AgentError('rejected', `the broker refused the subscription to ${refused.join(', ')}`);
    await client.publishAsync(topic, JSON.stringify(body), { qos: 1 });
    return answer;
  })();
  try {
    return await Promise.race([exchange, deadline]);
  } finally {
    clearTimeout(timer);
    if (onMessage) client.off('message', onMessage);
    // Settled or abandoned: nobody awaits these any more, so a late failure must not surface as unhandled.
    answer.catch(() => {});
    exchange.catch(() => {});
    // Not awaited: a broker that never sends UNSUBACK must not hold the caller past its deadline.
    if (client.connected) client.unsubscribeAsync([accepted, rejected]).catch(() => {});
  }
}
