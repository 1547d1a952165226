import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { connectPacket, DISCONNECT } from './mqtt-load.js';

/** Our hand-written packets, read back by the parser MQTT.js and aedes use. */
function parse(buf: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (err) => assert.fail(err));
  parser.parse(buf);
  return out;
}

describe('bench MQTT packets', () => {
  for (const [name, clientId] of [
    ['short client id', 'bench-1'],
    ['client id that needs a two-byte remaining length', 'd'.repeat(200)],
    ['UTF-8 client id', 'capteur-é-1'],
  ] as const) {
    it(`CONNECT, ${name}`, () => {
      const [p] = parse(connectPacket(clientId, 60));
      assert.equal(p?.cmd, 'connect');
      const c = p as mqttPacket.IConnectPacket;
      assert.equal(c.protocolId, 'MQTT');
      assert.equal(c.protocolVersion, 4);
      assert.equal(c.clean, true);
      assert.equal(c.keepalive, 60);
      assert.equal(c.clientId, clientId);
      assert.equal(c.username, undefined);
      assert.equal(c.will, undefined);
    });
  }

  it('DISCONNECT', () => {
    assert.equal(parse(DISCONNECT)[0]?.cmd, 'disconnect');
  });
});
