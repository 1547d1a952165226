/**
 * The only code that reaches into aedes' (1.2) and mqtt-packet's (9.x)
 * private fields, for what their public API does not offer. The broker
 * tests exercise each of them (an oversized packet, a malformed one, a
 * DISCONNECT), so an upgrade that moves them fails there, not in the field.
 */
import type { Client } from 'aedes';

interface ParserInternals {
  packet: { cmd?: string; length: number };
  _parseLength(): boolean;
  _emitError(err: Error): void;
  prependListener(event: 'error', listener: (err: Error) => void): unknown;
}

interface ClientInternals {
  _parser?: ParserInternals;
  /** Set when the client sent DISCONNECT [MQTT-3.14.4-3]. */
  _disconnected?: boolean;
}

export interface PacketGuard {
  /** The fixed header announced more than the limit; the body is never buffered. */
  tooLarge(size: number, cmd: string | undefined): void;
  /** mqtt-packet refused the bytes (any other parse error). */
  malformed(err: Error): void;
}

/**
 * Refuses a packet as soon as its fixed header says it is larger than
 * `maxPacketSize` (the Remaining Length, MQTT 3.1.1 §2.2.3, may announce up
 * to 256 MB, which mqtt-packet would otherwise buffer whole), and reports
 * parse errors before aedes closes the connection for them. Returns false
 * if the parser does not have the expected shape (the caller then relies on
 * its payload check alone).
 */
export function guardPackets(client: Client, maxPacketSize: number, guard: PacketGuard): boolean {
  const parser = (client as unknown as ClientInternals)._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') return false;
  const parseLength = parser._parseLength;
  let tooLarge = false;
  parser._parseLength = function guardedParseLength(this: ParserInternals): boolean {
    const done = parseLength.call(this);
    if (done && this.packet.length > maxPacketSize) {
      tooLarge = true;
      guard.tooLarge(this.packet.length, this.packet.cmd);
      // The parse loop stops on an error; aedes closes this client only.
      this._emitError(new Error(`${this.packet.cmd ?? 'packet'} of ${this.packet.length} bytes exceeds the limit of ${maxPacketSize}`));
      return false;
    }
    return done;
  };
  // Before aedes' own listener, which closes the connection and reports it.
  parser.prependListener('error', (err) => {
    if (!tooLarge) guard.malformed(err);
  });
  return true;
}

/** True if the client ended with DISCONNECT rather than by dropping the connection. */
export function sentDisconnect(client: Client): boolean {
  return (client as unknown as ClientInternals)._disconnected === true;
}
