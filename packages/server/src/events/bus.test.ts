import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus } from './bus.js';

describe('EventBus', () => {
  it('delivers synchronously, in order, with a frozen copy of the payload', () => {
    const bus = new EventBus();
    const seen: string[] = [];
    bus.on('policy.changed', (e) => void seen.push(`a:${e.policyName}`));
    bus.on('policy.changed', (e) => {
      seen.push(`b:${e.policyName}`);
      assert.ok(Object.isFrozen(e));
    });
    bus.emit('policy.changed', { policyName: 'p' });
    assert.deepEqual(seen, ['a:p', 'b:p']);
  });

  it('a failing listener neither stops the others nor fails the producer', async () => {
    const errors: unknown[] = [];
    const bus = new EventBus({ onListenerError: (err, name) => void errors.push([name, (err as Error).message]) });
    let reached = false;
    bus.on('ca.status-changed', () => {
      throw new Error('sync');
    });
    bus.on('ca.status-changed', async () => {
      throw new Error('async');
    });
    bus.on('ca.status-changed', () => void (reached = true));
    bus.emit('ca.status-changed', { caId: 'x', to: 'revoked' });
    await new Promise((r) => setImmediate(r));
    assert.ok(reached);
    assert.deepEqual(errors, [['ca.status-changed', 'sync'], ['ca.status-changed', 'async']]);
  });

  it('unsubscribes', () => {
    const bus = new EventBus();
    let n = 0;
    const off = bus.on('thing.changed', () => void n++);
    bus.emit('thing.changed', { thingName: 't' });
    off();
    bus.emit('thing.changed', { thingName: 't' });
    assert.equal(n, 1);
    assert.equal(bus.listenerCount('thing.changed'), 0);
  });
});
