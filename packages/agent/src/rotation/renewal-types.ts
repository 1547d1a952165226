/** What the renewal flows share (renew-mqtt.ts, resume-next.ts, renew-expired.ts). */
import type { MqttClient } from 'mqtt';
import type { CertificateSlots, Identity } from '../slots.js';

/** What renewal needs of the slots: CertificateSlots on a device, memory in the simulator. */
export type RenewalSlots = Pick<CertificateSlots, 'current' | 'next' | 'nextState' | 'nextKey' | 'writeNext' | 'promote' | 'discardNext'>;

/** A renewal done: the new identity is current, and `client` is connected with it. */
export interface MqttRenewed {
  readonly identity: Identity;
  /** The connection made with the new identity; the caller carries on with it. */
  readonly client: MqttClient;
  readonly certificateId: string;
  readonly retiring: readonly string[];
}
