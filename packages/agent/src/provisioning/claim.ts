/**
 * Fleet provisioning by claim (DESIGN.md "Fleet provisioning over MQTT"),
 * the AWS IoT flow under `$certfleet/`:
 *
 *  1. connected with the claim certificate (shared by a batch, good only for
 *     this), publish `{ certificateSigningRequest }` to
 *     `$certfleet/certificates/create-from-csr/json`; the accepted answer is
 *     `{ certificateId, certificatePem, certificateOwnershipToken }`;
 *  2. publish `{ certificateOwnershipToken, parameters }` to
 *     `$certfleet/provisioning-templates/{name}/provision/json`; the accepted
 *     answer is `{ thingName, deviceConfiguration }`.
 *
 * The key is generated on the device (the caller passes slots.nextKey()) and
 * only its CSR leaves. The new certificate goes to the `next` slot; the
 * caller connects with it and promotes it only once that worked, so a bad
 * certificate never replaces a working identity.
 */
import type { MqttClient } from 'mqtt';
import { Certificate, type GeneralName, type NameAttribute } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import type { KeyStore } from '../keystore.js';
import { closeWithin } from '../mqtt/close.js';
import { connectMqtt, type MqttConnectOptions } from '../mqtt/connect.js';
import { mqttRequest } from '../mqtt/request.js';
import { CREATE_FROM_CSR, provisionTopic } from '../mqtt/topics.js';
import type { CertificateSlots, Identity } from '../slots.js';

export interface ClaimRequest {
  /** A client already connected with the claim credential, left open afterwards; or how to connect (closed afterwards). */
  readonly client?: MqttClient;
  readonly connect?: MqttConnectOptions;
  readonly templateName: string;
  /** Template parameters, e.g. { SerialNumber }; the pre-provisioning hook sees them. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** The device's new key; only its CSR is sent. */
  readonly key: KeyStore;
  /** CSR subject (the server's profile decides what is kept). Default CN=<parameters.SerialNumber or client id>. */
  readonly subject?: string | readonly NameAttribute[];
  readonly sans?: readonly GeneralName[];
  /** Where the new certificate is written (next slot). Without it the caller stores the result itself. */
  readonly slots?: CertificateSlots;
  /** Deadline per request (30 s). */
  readonly timeoutMs?: number;
}

export interface ClaimResult {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly thingName: string;
  readonly deviceConfiguration: Readonly<Record<string, unknown>>;
  /** The next slot as written, when `slots` was given. */
  readonly next?: Identity;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(body: unknown, name: string, topic: string): string {
  const v = isObject(body) ? body[name] : undefined;
  if (typeof v !== 'string' || v.length === 0) throw new AgentError('bad-response', `${topic}/accepted lacks ${name}`);
  return v;
}

export async function provisionByClaim(req: ClaimRequest): Promise<ClaimResult> {
  if (!req.client && !req.connect) throw new AgentError('bad-input', 'provisionByClaim needs a client or connection options');
  const provision = provisionTopic(req.templateName); // validates the name before anything is sent
  const timeoutMs = req.timeoutMs ?? 30_000;
  const client = req.client ?? (await connectMqtt(req.connect!));
  try {
    const subject = req.subject ?? `CN=${req.parameters?.SerialNumber ?? req.connect?.clientId ?? client.options.clientId ?? 'certfleet-device'}`;
    const created = await mqttRequest(client, CREATE_FROM_CSR, { certificateSigningRequest: req.key.createCsr(subject, req.sans ?? []) }, timeoutMs);
    const certificateId = field(created, 'certificateId', CREATE_FROM_CSR);
    const certificatePem = field(created, 'certificatePem', CREATE_FROM_CSR);
    const certificateOwnershipToken = field(created, 'certificateOwnershipToken', CREATE_FROM_CSR);
    let certificate: Certificate;
    try {
      certificate = Certificate.fromPem(certificatePem);
    } catch (err) {
      throw new AgentError('bad-response', `certificatePem is not a certificate: ${(err as Error).message}`, { cause: err });
    }
    // A certificate for another key is useless here, and a sign of answers crossing between devices.
    if (!req.key.matches(certificate)) throw new AgentError('bad-response', 'the issued certificate does not certify this device key');

    const provisioned = await mqttRequest(client, provision, { certificateOwnershipToken, parameters: req.parameters ?? {} }, timeoutMs);
    const thingName = field(provisioned, 'thingName', provision);
    const config = isObject(provisioned) ? provisioned.deviceConfiguration : undefined;
    if (config !== undefined && !isObject(config)) throw new AgentError('bad-response', `${provision}/accepted deviceConfiguration is not an object`);

    // Only now: the certificate is worth keeping once the platform has made it a thing's identity.
    const next = req.slots ? await req.slots.writeNext({ certificatePem }) : undefined;
    return { certificateId, certificatePem, thingName, deviceConfiguration: config ?? {}, ...(next ? { next } : {}) };
  } finally {
    if (!req.client) await closeWithin(client);
  }
}
