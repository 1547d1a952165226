/**
 * Closing a connection without waiting on a dead peer: a clean DISCONNECT
 * (MQTT 3.1.1 §3.14) when the server is there to take it, a forced close
 * after `ms` when it is not — mqtt.js's end() otherwise waits for in-flight
 * packets that a killed server will never acknowledge.
 */
import type { MqttClient } from 'mqtt';

export async function closeWithin(client: MqttClient, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.endAsync().catch(() => {}),
    new Promise<void>((r) => {
      timer = setTimeout(() => {
        client.end(true);
        r();
      }, ms);
    }),
  ]);
  clearTimeout(timer);
}
