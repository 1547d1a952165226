/** The body of a DevicePool worker thread (workers.ts): runs each task it is sent and answers with its id. */
import { parentPort } from 'node:worker_threads';
import { runTask, type Task } from './workers.js';

parentPort?.on('message', (m: { id: number; task: Task }) => {
  try {
    parentPort?.postMessage({ id: m.id, result: runTask(m.task) });
  } catch (err) {
    parentPort?.postMessage({ id: m.id, error: (err as Error).message });
  }
});
