/**
 * A "null broker" for bench/mqtt-connect.ts: node:tls with mutual TLS and
 * nothing else. OpenSSL verifies the client chain against the CA file (as
 * Mosquitto does), and every first read is answered with CONNACK 0 (MQTT
 * 3.1.1 §3.2) without looking at it, then the connection is left to the
 * client. What one Node process carries here with no MQTT or admission
 * work at all: the most a Node broker could show.
 *
 * Run as a child: `node --import tsx null-broker.ts DIR`, with DIR holding
 * server.pem (leaf and issuing CA), server.key and clients-ca.pem; it prints
 * `port N` once listening.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:tls';

const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const dir = process.argv[2]!;
const server = createServer({
  key: readFileSync(join(dir, 'server.key')),
  cert: readFileSync(join(dir, 'server.pem')),
  ca: readFileSync(join(dir, 'clients-ca.pem')),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
});
server.on('secureConnection', (socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', () => socket.write(CONNACK_ACCEPTED));
  socket.on('end', () => socket.end());
});
server.on('tlsClientError', (_err, socket) => socket.destroy());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
