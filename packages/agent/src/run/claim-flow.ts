/**
 * Provisioning the device from its claim credential into the slots: a new
 * key in next, create-from-csr + provision (provisioning/claim.ts), then a
 * trial connection with the new certificate, and promote only once the
 * platform admitted it. Used when the device has no identity yet, and when
 * renewal after expiry is refused.
 */
import { readFile } from 'node:fs/promises';
import type { MqttClient } from 'mqtt';
import { commonName } from '@certfleet/pki';
import { provisionByClaim } from '../provisioning/claim.js';
import type { CertificateSlots, Identity } from '../slots.js';
import type { ClaimConfig } from './config.js';

export interface ClaimFlow {
  readonly slots: CertificateSlots;
  readonly claim: ClaimConfig;
  readonly mqtt: string;
  /** Connection options shared with every other connection (server verification, name). */
  readonly verifyServer: (chainPems: string[]) => void;
  /** Connects with an identity as the thing (the trial). */
  readonly connect: (identity: Identity, thing: string) => Promise<MqttClient>;
  /** The subject of the identity being replaced, if any (a re-provisioned device keeps its name). */
  readonly subject?: string;
  readonly timeoutMs: number;
}

export async function provisionFromClaim(f: ClaimFlow): Promise<{ identity: Identity; thing: string; client: MqttClient }> {
  const [certificatePem, keyPem] = await Promise.all([readFile(f.claim.certFile, 'utf8'), readFile(f.claim.keyFile, 'utf8')]);
  if ((await f.slots.nextState()) === 'complete') await f.slots.discardNext();
  const key = await f.slots.nextKey();
  const serial = f.claim.parameters.SerialNumber;
  const result = await provisionByClaim({
    connect: { url: f.mqtt, clientId: `claim-${serial ?? key.publicKey().export({ format: 'der', type: 'spki' }).subarray(-8).toString('hex')}`, certificatePem, keyPem, verifyServer: f.verifyServer, timeoutMs: f.timeoutMs },
    templateName: f.claim.template,
    parameters: f.claim.parameters,
    key,
    ...(f.subject ? { subject: f.subject } : {}),
    slots: f.slots,
    timeoutMs: f.timeoutMs,
  });
  const next = result.next!;
  let client: MqttClient;
  try {
    client = await f.connect(next, result.thingName);
  } catch (err) {
    await f.slots.discardNext();
    throw err;
  }
  const identity = await f.slots.promote();
  return { identity, thing: result.thingName ?? commonName(identity.certificate.subjectAttributes()), client };
}
