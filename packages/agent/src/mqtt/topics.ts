/**
 * The platform's reserved MQTT topics the agent uses (DESIGN.md "Public
 * contract"). They mirror the AWS IoT fleet-provisioning API with the prefix
 * `$certfleet/`, so firmware written for AWS ports by changing the prefix.
 * Every request topic is answered on `…/accepted` or `…/rejected`.
 */
import { AgentError } from '../errors.js';

export const PREFIX = '$certfleet/';

/** CSR in, certificate out: the key never leaves the device. */
export const CREATE_FROM_CSR = `${PREFIX}certificates/create-from-csr/json`;

/** Thing and policy from a provisioning template, for a certificate shown by its ownership token. */
export function provisionTopic(templateName: string): string {
  return `${PREFIX}provisioning-templates/${topicLevel(templateName, 'template name')}/provision/json`;
}

/** Where the platform pushes trust bundles to one thing (trust-anchor rollover). */
export function trustBundleTopic(thingName: string): string {
  return `${PREFIX}things/${topicLevel(thingName, 'thing name')}/trust-bundle`;
}

/** The renewal and rotation topics of one thing (docs/device-protocol.md "Renewal and rotation campaigns"). */
export function certificateTopics(thingName: string) {
  const base = `${PREFIX}things/${topicLevel(thingName, 'thing name')}/certificate`;
  return { renewRequired: `${base}/renew-required`, renew: `${base}/renew`, confirm: `${base}/confirm` } as const;
}

/** Where the device acknowledges a stored trust bundle. */
export const trustBundleAckTopic = (thingName: string) => `${trustBundleTopic(thingName)}/ack`;

export const acceptedTopic = (request: string) => `${request}/accepted`;
export const rejectedTopic = (request: string) => `${request}/rejected`;

/**
 * A name placed in one topic level: no separators or wildcards
 * ([MQTT-4.7.1-1]: '+' and '#' are not allowed in topic names) and no NUL
 * ([MQTT-1.5.3-2]), so it can never address another level or thing.
 */
function topicLevel(name: string, what: string): string {
  if (name.length === 0 || name.length > 128 || /[/+#\u0000-\u001f]/.test(name)) {
    throw new AgentError('bad-input', `${what} ${JSON.stringify(name)} cannot be one MQTT topic level`);
  }
  return name;
}
