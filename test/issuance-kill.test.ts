/**
 * A kill at any moment loses nothing acknowledged (DESIGN.md security
 * baseline): a burst of concurrent issuance against a real server, SIGKILL
 * in the middle of it, then every certificate whose 201 reached the client
 * must be in the store, byte for byte, and no serial is ever reused.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName } from '@certfleet/pki';
import { openStore } from '../packages/server/src/store/index.js';
import { certfleet, serve, tempDir } from './helpers/cli.js';

const data = tempDir();
after(() => rmSync(data, { recursive: true, force: true }));

interface Ack {
  id: string;
  serial: string;
  certificatePem: string;
}

function issue(port: number, token: string, ca: string, csr: string): Promise<Ack | undefined> {
  const body = JSON.stringify({ csr });
  return new Promise((resolve) => {
    const req = request(
      { host: 'localhost', port, path: '/api/v1/certificates', method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(res.statusCode === 201 ? (JSON.parse(text) as Ack) : undefined));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

describe('kill -9 during an issuance burst', () => {
  it('keeps every acknowledged certificate and never reuses a serial', async () => {
    assert.equal((await certfleet(['init', '--data', data])).code, 0);
    const cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string; caFile: string };
    const ca = readFileSync(cli.caFile, 'utf8');
    const csrs = Array.from({ length: 64 }, (_, i) => {
      const { privateKey, publicKey } = generateKeyPair('ec-p256');
      return buildCsrPem({ subject: parseName(`CN=burst-${i}`), privateKey, publicKey });
    });

    const acked: Ack[] = [];
    for (let round = 0; round < 2; round++) {
      const server = await serve(data);
      let stop = false;
      let sent = 0;
      let cut = 0;
      const workers = Array.from({ length: 16 }, async () => {
        while (!stop) {
          const ack = await issue(server.ports.api, cli.token, ca, csrs[sent++ % csrs.length]!);
          if (ack) acked.push(ack);
          else {
            cut++;
            break;
          }
        }
      });
      // Let the burst run, then kill the server while requests are in flight.
      const target = acked.length + 150;
      while (acked.length < target && server.child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      await server.stop('SIGKILL');
      stop = true;
      await Promise.all(workers);
      // The kill must have landed on requests in flight, or it proved nothing.
      assert.ok(cut > 0, 'no request was in flight when the server was killed');
    }
    assert.ok(acked.length >= 300, `only ${acked.length} acknowledged`);

    const store = await openStore(join(data, 'certfleet.db'));
    try {
      for (const a of acked) {
        const stored = await store.getCertificate(a.id);
        assert.ok(stored, `acknowledged certificate ${a.id} is missing after kill -9`);
        assert.equal(stored.serial, a.serial);
        assert.ok(stored.der.equals(Certificate.fromPem(a.certificatePem).der));
        assert.ok(await store.hasSerial(a.serial), 'the serial was journalled before signing');
      }
      const serials = new Set(acked.map((a) => a.serial));
      assert.equal(serials.size, acked.length, 'a serial was reused');
    } finally {
      await store.close();
    }
  });
});
