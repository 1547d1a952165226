/** For lifecycle tests: stands where the broker does and records what the platform would publish (topic, payload, retained). */
export class Published {
  readonly sent: Array<{ topic: string; payload: string; retain: boolean }> = [];
  async publish(topic: string, payload: Buffer | string, opts?: { retain?: boolean }): Promise<void> {
    this.sent.push({ topic, payload: payload.toString(), retain: opts?.retain ?? false });
  }
  /** The retained message a subscriber would get now, per topic (an empty one clears it, MQTT 3.3.1.3). */
  retained(topic: string): string | undefined {
    const last = this.sent.filter((m) => m.topic === topic && m.retain).at(-1);
    return last?.payload || undefined;
  }
}
