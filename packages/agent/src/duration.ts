/**
 * Durations as operators write them on a command line: `28d`, `12h`, `90s`,
 * `500ms`, `2w`, `1y` (365 days), optionally signed (`-3d`, `+2h`) where a
 * direction means something (a clock skew). A bare number is rejected: "30"
 * could be seconds or days, and a renewal threshold off by 86,400× is not a
 * mistake to allow.
 */
import { AgentError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 };

/** Milliseconds, signed when the text is. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^([+-]?)(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/.exec(text.trim());
  if (!m) throw new AgentError('bad-input', `${what} wants a duration like 28d, 12h, 90s or 500ms, got ${JSON.stringify(text)}`);
  const ms = Number(m[2]) * UNIT_MS[m[3]!]!;
  return m[1] === '-' ? -ms : ms;
}

/** A duration that must be positive. */
export function parsePositiveDuration(text: string, what = 'duration'): number {
  const ms = parseDuration(text, what);
  if (!(ms > 0) || text.trim().startsWith('-')) throw new AgentError('bad-input', `${what} must be positive, got ${text}`);
  return ms;
}
