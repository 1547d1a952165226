/**
 * A stand-in for the platform's fleet-provisioning answers, as an MQTT client
 * on a real broker: it listens on the contract's request topics and answers
 * on `…/accepted|rejected` the way DESIGN.md specifies, or misbehaves on
 * request (rejects, stays silent, answers for the wrong key).
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { commonName, decodePem, verifyCsr } from '@certfleet/pki';
import { CREATE_FROM_CSR } from '../mqtt/topics.js';
import { issueLeaf, type TestCa } from './pki-fixtures.js';

export type Behaviour = 'ok' | 'reject-csr' | 'reject-provision' | 'silent' | 'wrong-key' | 'not-json';

export interface FakeProvisioning {
  behaviour: Behaviour;
  /** CSR subjects' CNs and provision requests seen, in order. */
  readonly seen: { csrCn: string[]; provision: { template: string; parameters: unknown }[] };
  close(): Promise<void>;
}

const PROVISION = /^\$certfleet\/provisioning-templates\/([^/]+)\/provision\/json$/;

export async function startFakeProvisioning(brokerUrl: string, ca: TestCa): Promise<FakeProvisioning> {
  const client: MqttClient = await mqtt.connectAsync(brokerUrl, { clientId: `fake-platform-${randomUUID()}`, reconnectPeriod: 0 });
  const tokens = new Map<string, string>(); // ownership token → certificate id
  const fake: FakeProvisioning = {
    behaviour: 'ok',
    seen: { csrCn: [], provision: [] },
    close: () => client.endAsync(),
  };
  const answer = (topic: string, outcome: 'accepted' | 'rejected', body: unknown) =>
    void client.publish(`${topic}/${outcome}`, fake.behaviour === 'not-json' ? '{oops' : JSON.stringify(body), { qos: 1 });

  client.on('message', (topic, payload) => {
    if (fake.behaviour === 'silent') return;
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    if (topic === CREATE_FROM_CSR) {
      if (fake.behaviour === 'reject-csr') return answer(topic, 'rejected', { statusCode: 400, errorCode: 'InvalidCsr', errorMessage: 'the CSR is not acceptable' });
      const csr = verifyCsr(decodePem(String(body.certificateSigningRequest), 'CERTIFICATE REQUEST'));
      fake.seen.csrCn.push(commonName(csr.subject) ?? '');
      const leaf = issueLeaf(ca, { name: `CN=${commonName(csr.subject)}`, ...(fake.behaviour === 'wrong-key' ? {} : { publicKey: csr.publicKey.key }) });
      const token = randomUUID();
      tokens.set(token, leaf.cert.serial());
      return answer(topic, 'accepted', {
        certificateId: leaf.cert.serial(),
        certificatePem: leaf.certPem + ca.cert.toPem(),
        certificateOwnershipToken: token,
      });
    }
    const m = PROVISION.exec(topic);
    if (m) {
      fake.seen.provision.push({ template: m[1]!, parameters: body.parameters });
      const token = String(body.certificateOwnershipToken);
      if (fake.behaviour === 'reject-provision' || !tokens.has(token)) {
        return answer(topic, 'rejected', { statusCode: 403, errorCode: 'AccessDenied', errorMessage: 'the pre-provisioning hook refused this device' });
      }
      tokens.delete(token);
      const serial = (body.parameters as { SerialNumber?: string }).SerialNumber ?? 'anonymous';
      return answer(topic, 'accepted', { thingName: `thing-${serial}`, deviceConfiguration: { telemetryTopic: `dt/${serial}` } });
    }
  });
  await client.subscribeAsync([CREATE_FROM_CSR, '$certfleet/provisioning-templates/+/provision/json'], { qos: 1 });
  return fake;
}
