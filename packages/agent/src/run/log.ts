/**
 * The long-running agent's log: one JSON object per line and per lifecycle
 * step (`{"time", "step", …}`), so a supervisor (journald, a fleet log
 * shipper, a test) can follow a device without parsing prose.
 */
export type LogFields = Readonly<Record<string, unknown>>;
export type StepLog = (step: string, fields?: LogFields) => void;

/** An error as log fields: the agent's code when it has one, and the message. */
export function errorFields(err: unknown): LogFields {
  const e = err as { code?: unknown; message?: unknown; rejection?: unknown };
  return {
    error: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(e?.rejection ? { rejection: e.rejection } : {}),
  };
}

export function jsonLineLog(write: (line: string) => void = (l) => process.stdout.write(l)): StepLog {
  return (step, fields = {}) => write(`${JSON.stringify({ time: new Date().toISOString(), step, ...fields })}\n`);
}
