/**
 * The device endpoint against a real `certfleet serve` and the real
 * mosquitto clients: a device publishes and subscribes within its policy, a
 * publish outside it is not delivered, a device without a policy, with a
 * client id its policy does not allow, with an unknown CA or no certificate
 * is refused, and revocation disconnects a connected device within 1 s —
 * over MQTT 3.1.1 and MQTT 5 (mosquitto clients with `-V mqttv5`, MQTT.js
 * with `protocolVersion: 5`), where refusals are reason codes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { connect, type IDisconnectPacket, type MqttClient } from 'mqtt';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

const HAVE_MOSQUITTO = spawnSync('mosquitto_pub', ['--help']).status !== null;
let data: string;
let server: ServerProcess;

before(async () => {
  if (!HAVE_MOSQUITTO) return;
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const policy = join(data, 'telemetry.json');
  writeFileSync(
    policy,
    JSON.stringify({
      statements: [
        // A second client id lets one device subscribe and publish at once (a second CONNECT with the same id takes over the first, [MQTT-3.1.4-2]).
        { effect: 'allow', actions: ['connect'], resources: ['${thing.name}', '${thing.name}-sub'] },
        { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['things/${thing.name}/#'] },
      ],
    }),
  );
  assert.equal((await certfleet(['policy', 'create', 'telemetry', '--file', policy, '--data', data])).code, 0);
});
after(async () => {
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

async function device(name: string, withPolicy = true): Promise<{ dir: string; id: string }> {
  assert.equal((await certfleet(['thing', 'create', name, '--data', data])).code, 0);
  const dir = join(data, name);
  const r = await certfleet(['cert', 'issue', '--thing', name, '--out', dir, '--json', '--data', data]);
  assert.equal(r.code, 0, r.stderr);
  const { id } = JSON.parse(r.stdout) as { id: string };
  if (withPolicy) assert.equal((await certfleet(['policy', 'attach', 'telemetry', '--cert', id, '--data', data])).code, 0);
  return { dir, id };
}

const tls = (dir: string) => ['--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '-h', 'localhost', '-p', String(server.ports.mqtt)];

function pub(dir: string, clientId: string, topic: string, version: string[] = []): number {
  return spawnSync('mosquitto_pub', [...tls(dir), ...version, '-i', clientId, '-t', topic, '-m', 'hello', '-q', '1'], { timeout: 15_000 }).status ?? -1;
}

/** Subscribes in the background; resolves with what arrived and how it ended. */
function sub(dir: string, clientId: string, topic: string, version: string[] = []) {
  const child = spawn('mosquitto_sub', [...tls(dir), ...version, '-i', clientId, '-t', topic, '-v', '-q', '1']);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  return { child, output: () => out, exited };
}

describe('device endpoint with mosquitto clients', { skip: HAVE_MOSQUITTO ? false : 'mosquitto clients are not installed' }, () => {
  it('publishes and subscribes within its policy; a publish outside it is not delivered', async () => {
    const d = await device('meter-1');
    const s = sub(d.dir, 'meter-1-sub', 'things/meter-1/#');
    await sleep(700);
    assert.equal(pub(d.dir, 'meter-1', 'things/meter-1/temp'), 0);
    assert.notEqual(pub(d.dir, 'meter-1', 'things/meter-2/temp'), 0, 'a publish outside the policy ends the connection');
    await sleep(500);
    s.child.kill();
    await s.exited;
    assert.match(s.output(), /things\/meter-1\/temp hello/);
    assert.doesNotMatch(s.output(), /meter-2/);
  });

  it('refuses a device without a policy, a client id the policy does not allow, an unknown CA and no certificate', async () => {
    const noPolicy = await device('meter-3', false);
    assert.notEqual(pub(noPolicy.dir, 'meter-3', 'things/meter-3/x'), 0);
    const d = await device('meter-4');
    assert.notEqual(pub(d.dir, 'someone-else', 'things/meter-4/x'), 0);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(d.dir, 'rogue.key'), '-out', join(d.dir, 'rogue.pem'), '-subj', '/CN=meter-4', '-days', '1']);
    const r1 = spawnSync('mosquitto_pub', ['--cafile', join(d.dir, 'ca.pem'), '--cert', join(d.dir, 'rogue.pem'), '--key', join(d.dir, 'rogue.key'), '-h', 'localhost', '-p', String(server.ports.mqtt), '-i', 'meter-4', '-t', 'things/meter-4/x', '-m', 'x'], { timeout: 15_000 });
    assert.notEqual(r1.status, 0);
    const r2 = spawnSync('mosquitto_pub', ['--cafile', join(d.dir, 'ca.pem'), '-h', 'localhost', '-p', String(server.ports.mqtt), '-i', 'meter-4', '-t', 'things/meter-4/x', '-m', 'x'], { timeout: 15_000 });
    assert.notEqual(r2.status, 0);
  });

  it('revocation disconnects a connected device within 1 s, and it is refused afterwards', async () => {
    const d = await device('meter-5');
    const s = sub(d.dir, 'meter-5-sub', 'things/meter-5/#');
    await sleep(800);
    assert.equal(s.child.exitCode, null, `the subscriber is connected: ${s.output()}`);
    const t0 = Date.now();
    const r = await certfleet(['cert', 'revoke', d.id, '--reason', 'keyCompromise', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const revokedAt = Date.now();
    // mosquitto_sub retries by itself; the first drop after revocation is what we time.
    while (!/Connection lost|Error|refused|not authori/i.test(s.output()) && s.child.exitCode === null && Date.now() - revokedAt < 5000) await sleep(20);
    const dropped = Date.now() - revokedAt;
    s.child.kill();
    await s.exited;
    assert.ok(dropped < 1000, `disconnected ${dropped} ms after the revocation answer (${Date.now() - t0} ms in all): ${s.output()}`);
    assert.notEqual(pub(d.dir, 'meter-5', 'things/meter-5/x'), 0);
  });

  it('exposes Prometheus metrics on the http port', async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    assert.match(text, /certfleet_mqtt_admissions_refused_total\{reason="/);
    assert.match(text, /certfleet_mqtt_messages_in_total \d+/);
  });
});

const V5 = ['-V', 'mqttv5'];

/** An MQTT 5 device on MQTT.js with the files `certfleet cert issue` wrote; rejects with the CONNACK's reason code. */
async function mqttjs(dir: string, clientId: string): Promise<MqttClient> {
  const c = connect(`mqtts://localhost:${server.ports.mqtt}`, {
    clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000,
    ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')),
  });
  // MqttClient's typed emitter does not fit events.once().
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return c;
}

/** The reason code of a QoS 1 publish's PUBACK (MQTT 5 §3.4.2.1). */
function pubackCode(c: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve) => {
    c.publish(topic, 'hello', { qos: 1 }, (err, packet) => resolve((packet as { reasonCode?: number } | undefined)?.reasonCode ?? (err as { code?: number } | undefined)?.code ?? 0));
  });
}

describe('device endpoint over MQTT 5', { skip: HAVE_MOSQUITTO ? false : 'mosquitto clients are not installed' }, () => {
  it('mosquitto -V mqttv5 publishes and subscribes within the policy', async () => {
    const d = await device('meter-51');
    const s = sub(d.dir, 'meter-51-sub', 'things/meter-51/#', V5);
    await sleep(700);
    assert.equal(pub(d.dir, 'meter-51', 'things/meter-51/temp', V5), 0);
    await sleep(500);
    s.child.kill();
    await s.exited;
    assert.match(s.output(), /things\/meter-51\/temp hello/);
  });

  it('answers a QoS 1 publish outside the policy with PUBACK 0x87, keeps the connection and delivers nothing', async () => {
    const d = await device('meter-52');
    const watcher = sub(d.dir, 'meter-52-sub', 'things/meter-52/#', V5);
    const c = await mqttjs(d.dir, 'meter-52');
    await sleep(700);
    assert.equal(await pubackCode(c, 'things/meter-53/temp'), 0x87);
    assert.ok(c.connected, 'the connection stays up after the refusal');
    assert.equal(await pubackCode(c, 'things/meter-52/after'), 0);
    await sleep(500);
    c.end(true);
    watcher.child.kill();
    await watcher.exited;
    assert.match(watcher.output(), /things\/meter-52\/after hello/);
    assert.doesNotMatch(watcher.output(), /meter-53/);
  });

  it('answers a denied subscription with SUBACK 0x87 (MQTT.js and mosquitto_sub)', async () => {
    const d = await device('meter-54');
    // The policy grants things/meter-54/# only: mosquitto_sub's one filter is refused, and it says so.
    const s = sub(d.dir, 'meter-54-sub', 'things/#', V5);
    const code = await Promise.race([s.exited, sleep(10_000).then(() => undefined)]);
    s.child.kill();
    assert.match(s.output(), /denied/i, `exit ${code}`);
    const c = await mqttjs(d.dir, 'meter-54');
    const granted = await c.subscribeAsync(['things/meter-54/#', 'things/meter-55/#'], { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    );
    assert.deepEqual(granted, [1, 0x87]);
    assert.ok(c.connected);
    c.end(true);
  });

  it('refuses a client id the policy does not allow with CONNACK 0x87', async () => {
    const d = await device('meter-56');
    await assert.rejects(mqttjs(d.dir, 'someone-else'), (err: Error & { code?: number }) => err.code === 0x87);
    const r = spawnSync('mosquitto_pub', [...tls(d.dir), ...V5, '-i', 'someone-else', '-t', 'things/meter-56/x', '-m', 'x'], { timeout: 15_000, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(`${r.stdout}${r.stderr}`, /not authori[sz]ed/i);
  });

  it('revocation sends a connected MQTT 5 device DISCONNECT 0x87 within 1 s', async () => {
    const d = await device('meter-57');
    const c = await mqttjs(d.dir, 'meter-57');
    const told = new Promise<IDisconnectPacket>((resolve) => c.once('disconnect', resolve));
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const r = await certfleet(['cert', 'revoke', d.id, '--reason', 'keyCompromise', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const revokedAt = Date.now();
    const packet = await Promise.race([told, sleep(5000).then(() => undefined)]);
    const dropped = Date.now() - revokedAt;
    assert.ok(packet, 'a DISCONNECT arrived');
    assert.equal(packet.reasonCode, 0x87);
    assert.equal(packet.properties?.reasonString, 'certificate-revoked');
    assert.ok(dropped < 1000, `told ${dropped} ms after the revocation answer`);
    await closed;
    await assert.rejects(mqttjs(d.dir, 'meter-57'), 'and it cannot come back');
  });
});
