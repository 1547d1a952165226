/**
 * Power-cut injection for the crash-safety tests. A step that writes state
 * calls crashPoint('<step>'); when CERTFLEET_AGENT_CRASH_AT names that step the
 * process kills itself with SIGKILL at once: no exit handlers, no flush, the
 * closest a test can get to pulling the plug (the page cache survives, so
 * this checks ordering and recovery, not the disk's fsync semantics).
 *
 * Read once at start-up: a device never sets it, and a lookup per step would
 * cost nothing worth keeping configurable.
 */
const CRASH_AT = process.env.CERTFLEET_AGENT_CRASH_AT;

export function crashPoint(step: string): void {
  if (CRASH_AT !== undefined && CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
