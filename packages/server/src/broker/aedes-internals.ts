/**
 * The only code that reaches into aedes' (2.0) and mqtt-packet's (9.x)
 * private fields, or relies on the shape of aedes' errors, for what their
 * public API does not offer. The broker tests exercise each of them (a
 * malformed packet, an oversized one, a DISCONNECT), so an upgrade that
 * moves them fails there, not in the field.
 */
import type { Client } from 'aedes';

interface ParserInternals {
  prependListener(event: 'error', listener: (err: Error) => void): unknown;
}

interface ClientInternals {
  _parser?: ParserInternals;
  /** Set when the client sent DISCONNECT [MQTT-3.14.4-3] (MQTT 5: with any reason code but 0x04). */
  _disconnected?: boolean;
}

/**
 * Reports mqtt-packet's parse errors before aedes closes the connection for
 * them (aedes only says "an error"). Returns false if the parser does not
 * have the expected shape.
 */
export function watchParseErrors(client: Client, malformed: (err: Error) => void): boolean {
  const parser = (client as unknown as ClientInternals)._parser;
  if (!parser || typeof parser.prependListener !== 'function') return false;
  // Before aedes' own listener, which closes the connection and reports it.
  parser.prependListener('error', malformed);
  return true;
}

/**
 * The size of a refused packet, fixed header included, if `err` is aedes'
 * "packet too large" (its `maximumPacketSize` option: a packet is refused as
 * soon as its fixed header announces it, before the body is buffered).
 */
export function packetTooLarge(err: Error): { readonly size: number } | undefined {
  const e = err as Error & { size?: unknown; maximumPacketSize?: unknown };
  if (typeof e.size !== 'number' || typeof e.maximumPacketSize !== 'number') return undefined;
  return { size: e.size };
}

/**
 * The size of a whole MQTT packet whose Remaining Length is `remaining`: the
 * fixed header is 1 byte plus 1–4 bytes of Remaining Length (MQTT 3.1.1
 * §2.2.3, MQTT 5 §2.1.4). Strictly increasing, so a limit on one is exactly
 * a limit on the other.
 */
export function wireSize(remaining: number): number {
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

/** True if the client ended with DISCONNECT rather than by dropping the connection. */
export function sentDisconnect(client: Client): boolean {
  return (client as unknown as ClientInternals)._disconnected === true;
}
