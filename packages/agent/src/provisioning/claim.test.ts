import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Certificate } from '@certfleet/pki';
import type { AgentError } from '../errors.js';
import { FileKeyStore } from '../keystore.js';
import { CertificateSlots } from '../slots.js';
import { startFakeProvisioning, type FakeProvisioning } from '../testing/fake-provisioning.js';
import { makeIntermediate, makeRoot } from '../testing/pki-fixtures.js';
import { provisionByClaim } from './claim.js';

// The real Mosquitto of this machine, plain MQTT: TLS and admission are the server's part, tested there.
const BROKER = process.env.CERTFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: hostname, port: Number(port || 1883), timeout: 1000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

const brokerUp = await reachable(BROKER);
if (!brokerUp) console.warn(`# skipping claim provisioning tests: no MQTT broker at ${BROKER} (set CERTFLEET_TEST_MQTT_URL)`);

describe('fleet provisioning by claim over MQTT', { skip: brokerUp ? false : `no MQTT broker at ${BROKER}` }, () => {
  let work: string;
  let fake: FakeProvisioning;
  let device: MqttClient;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certfleet-claim-'));
    fake = await startFakeProvisioning(BROKER, makeIntermediate(makeRoot()));
    device = await mqtt.connectAsync(BROKER, { clientId: `claim-${randomUUID()}`, reconnectPeriod: 0 });
  });
  after(async () => {
    await device?.endAsync();
    await fake?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('gets a certificate for its own key and a thing, writes it to the next slot, and promotes after', async () => {
    fake.behaviour = 'ok';
    const slots = await CertificateSlots.open(await mkdtemp(join(work, 'dev-')));
    const key = await slots.nextKey();
    const r = await provisionByClaim({ client: device, templateName: 'factory', parameters: { SerialNumber: 'SN-0001' }, key, slots });
    assert.equal(r.thingName, 'thing-SN-0001');
    assert.deepEqual(r.deviceConfiguration, { telemetryTopic: 'dt/SN-0001' });
    assert.equal(fake.seen.csrCn.at(-1), 'SN-0001', 'CSR subject defaults to the serial number');
    assert.deepEqual(fake.seen.provision.at(-1), { template: 'factory', parameters: { SerialNumber: 'SN-0001' } });
    assert.equal(r.next?.certificate.serial(), r.certificateId);
    assert.equal(r.next?.chain.length, 1, 'the chain after the leaf lands in chain.pem');
    assert.equal(await slots.current(), undefined, 'nothing is promoted before the caller tried it');
    const current = await slots.promote();
    assert.ok(current.key.matches(current.certificate));
    assert.ok(device.connected, 'a client passed in stays open');
  });

  const failures: { behaviour: FakeProvisioning['behaviour']; code: AgentError['code']; rejection?: object }[] = [
    { behaviour: 'reject-csr', code: 'rejected', rejection: { statusCode: 400, errorCode: 'InvalidCsr', errorMessage: 'the CSR is not acceptable' } },
    { behaviour: 'reject-provision', code: 'rejected', rejection: { statusCode: 403, errorCode: 'AccessDenied', errorMessage: 'the pre-provisioning hook refused this device' } },
    { behaviour: 'wrong-key', code: 'bad-response' },
    { behaviour: 'not-json', code: 'bad-response' },
    { behaviour: 'silent', code: 'timeout' },
  ];
  for (const f of failures) {
    it(`${f.behaviour}: fails with ${f.code}${f.rejection ? ' carrying the server\'s answer' : ''}, and next holds no certificate`, async () => {
      fake.behaviour = f.behaviour;
      const slots = await CertificateSlots.open(await mkdtemp(join(work, 'dev-')));
      const key = await slots.nextKey();
      await assert.rejects(
        provisionByClaim({ client: device, templateName: 'factory', parameters: { SerialNumber: 'SN-0002' }, key, slots, timeoutMs: 500 }),
        (e: AgentError) => {
          assert.equal(e.code, f.code, e.message);
          if (f.rejection) assert.deepEqual(e.rejection, f.rejection);
          return true;
        },
      );
      assert.equal(await slots.nextState(), 'pending-key', 'the key stays for a retry; no certificate was written');
    });
  }

  it('refuses a template name that is not one topic level before sending anything', async () => {
    fake.behaviour = 'ok';
    const before = fake.seen.csrCn.length;
    const key = await FileKeyStore.create(join(work, 'k.pem'));
    for (const templateName of ['a/b', 'x+', '#', '']) {
      await assert.rejects(provisionByClaim({ client: device, templateName, key }), (e: AgentError) => e.code === 'bad-input');
    }
    assert.equal(fake.seen.csrCn.length, before);
  });

  it('connects by itself from options and closes that connection afterwards', async () => {
    fake.behaviour = 'ok';
    const key = await FileKeyStore.create(join(work, 'own.pem'));
    const r = await provisionByClaim({ connect: { url: BROKER, clientId: `claim-${randomUUID()}` }, templateName: 'factory', parameters: { SerialNumber: 'SN-0003' }, key });
    assert.equal(r.thingName, 'thing-SN-0003');
    assert.ok(key.matches(Certificate.fromPem(r.certificatePem)));
  });
});
