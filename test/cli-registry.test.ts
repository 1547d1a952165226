/**
 * The registry through the CLI, against a real server process: things,
 * nested thing groups, versioned policies attached to groups and
 * certificates, certificate status changes and history, CA settings, and the
 * audit log that records all of it (tampering with the log is tested in
 * store/audit.test.ts, the only code allowed to write SQL).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, certfleet, serve, tempDir, type CliResult, type ServerProcess } from './helpers/cli.js';

let data: string;
let server: ServerProcess;

before(async () => {
  data = tempDir();
  const init = await certfleet(['init', '--data', data]);
  assert.equal(init.code, 0, init.stderr);
  server = await serve(data);
});

after(async () => {
  await server?.stop();
  rmSync(data, { recursive: true, force: true });
});

const run = (...args: string[]): Promise<CliResult> => certfleet([...args, '--data', data]);

async function ok(...args: string[]): Promise<string> {
  const r = await run(...args);
  assert.equal(r.code, 0, `certfleet ${args.join(' ')}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function json<T>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, '--json')) as T;
}

/** Exit 1 with `error: … (code …)` on stderr. */
async function refused(code: RegExp, ...args: string[]): Promise<CliResult> {
  const r = await run(...args);
  assert.equal(r.code, 1, `certfleet ${args.join(' ')} should fail:\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^error: /m);
  assert.match(r.stderr, code);
  return r;
}

function file(name: string, content: unknown): string {
  const path = join(data, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const doc = (topic: string) => ({ statements: [{ effect: 'allow', actions: ['connect', 'publish'], resources: [topic] }] });

interface Entry {
  seq: number;
  actor: string;
  action: string;
  target: string;
}
interface Detail {
  status: string;
  thing: string | null;
  policies: string[];
  history: { status: string; reason: string | null }[];
}

describe('certfleet registry commands, one flow', () => {
  let certId = '';
  let adminActor = '';
  const groups = ['g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];

  it('thing create, update (replaces the attributes)', async () => {
    await ok('thing', 'create', 'pump-1', '--attr', 'site=north', '--attr', 'old=yes');
    await ok('thing', 'create', 'pump-2');
    const t = await json<{ attributes: Record<string, string> }>('thing', 'update', 'pump-1', '--attr', 'site=south', '--attr', 'line=3');
    assert.deepEqual(t.attributes, { site: 'south', line: '3' });
    assert.match(await ok('thing', 'update', 'pump-2', '--attr', 'x=1'), /updated thing pump-2: x=1/);
    const bad = await run('thing', 'update', 'pump-2', '--attr', 'novalue');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /key=value/);
  });

  it('groups nested 7 deep; a thing in the deepest sees all its ancestors', async () => {
    let parent: string | undefined;
    for (const g of groups) {
      await ok('group', 'create', g, ...(parent ? ['--parent', parent] : []), '--description', `level ${g}`, '--attr', `level=${g.slice(1)}`);
      parent = g;
    }
    const g7 = await json<{ parent: string; attributes: Record<string, string> }>('group', 'get', 'g7');
    assert.equal(g7.parent, 'g6');
    assert.deepEqual(g7.attributes, { level: '7' });
    assert.match(await ok('group', 'get', 'g1'), /parent\s+\(root\)/);

    await ok('group', 'add-thing', 'g7', 'pump-1');
    await ok('group', 'add-thing', 'g7', 'pump-2');
    assert.match(await ok('group', 'remove-thing', 'g7', 'pump-2'), /removed thing pump-2 from group g7/);
    const members = await json<{ items: { name: string }[] }>('group', 'members', 'g7');
    assert.deepEqual(
      members.items.map((t) => t.name),
      ['pump-1'],
    );

    const thing = await json<{ groups: { name: string; depth: number }[] }>('thing', 'get', 'pump-1');
    assert.deepEqual(
      thing.groups.map((g) => [g.name, g.depth]),
      groups.map((g, i) => [g, 6 - i]).reverse(),
    );
    const human = await ok('thing', 'get', 'pump-1');
    assert.match(human, /^groups\s+g7$/m);
    assert.match(human, /via groups\s+g6 \(1 up\), .*g1 \(6 up\)/);
    assert.match(human, /certificates:\n\(none\)/);
  });

  it('group move (--parent, --root), list, delete', async () => {
    await ok('group', 'create', 'loose');
    assert.equal((await json<{ parent: string | null }>('group', 'move', 'loose', '--parent', 'g3')).parent, 'g3');
    assert.match(await ok('group', 'move', 'loose', '--root'), /moved group loose to the root/);
    await refused(/exactly one of --parent GROUP or --root/, 'group', 'move', 'loose');
    await refused(/exactly one/, 'group', 'move', 'loose', '--root', '--parent', 'g1');
    await refused(/not-found/, 'group', 'move', 'loose', '--parent', 'nowhere');
    await refused(/cycle.*invalid-state/, 'group', 'move', 'g1', '--parent', 'g7');
    const list = await json<{ items: { name: string }[] }>('group', 'list');
    assert.deepEqual(list.items.map((g) => g.name).sort(), [...groups, 'loose'].sort());
    assert.match(await ok('group', 'list'), /^NAME\s+PARENT/);
    await ok('group', 'delete', 'loose');
    await refused(/not-found/, 'group', 'get', 'loose');
    await refused(/has child groups.*invalid-state/, 'group', 'delete', 'g6');
  });

  it('policy create from a file (and stdin), attach to a group and a certificate', async () => {
    const created = await json<{ name: string; defaultVersion: number }>('policy', 'create', 'p1', '--file', file('p1.json', doc('things/${thing.name}/#')));
    assert.deepEqual([created.name, created.defaultVersion], ['p1', 1]);

    const stdin = spawnSync(process.execPath, [BIN, 'policy', 'create', 'p-stdin', '--file', '-', '--data', data], { input: JSON.stringify(doc('stdin/#')), encoding: 'utf8' });
    assert.equal(stdin.status, 0, stdin.stderr);
    assert.match(stdin.stdout, /created policy p-stdin/);
    const list = await json<{ items: { name: string }[] }>('policy', 'list');
    assert.deepEqual(list.items.map((p) => p.name).sort(), ['p-stdin', 'p1']);
    await ok('policy', 'delete', 'p-stdin');

    const issued = await json<{ id: string }>('cert', 'issue', '--thing', 'pump-1', '--out', join(data, 'pump-1'));
    certId = issued.id;

    assert.match(await ok('policy', 'attach', 'p1', '--group', 'g6'), /attached policy p1 to group g6/);
    const a = await json<{ targetType: string; target: string }>('policy', 'attach', 'p1', '--cert', certId);
    assert.deepEqual([a.targetType, a.target], ['certificate', certId]);

    const att = await json<{ items: { targetType: string; target: string }[] }>('policy', 'attachments', 'p1');
    assert.deepEqual(att.items.map((x) => `${x.targetType}:${x.target}`).sort(), [`certificate:${certId}`, 'group:g6']);
    assert.match(await ok('policy', 'attachments', 'p1'), /^TARGETTYPE\s+TARGET/);

    await refused(/exactly one of --cert ID or --group GROUP/, 'policy', 'attach', 'p1');
    await refused(/exactly one/, 'policy', 'attach', 'p1', '--cert', certId, '--group', 'g6');
    await refused(/still attached.*invalid-state/, 'policy', 'delete', 'p1');
    // detach and attach again
    await ok('policy', 'detach', 'p1', '--group', 'g6');
    assert.equal((await json<{ items: unknown[] }>('policy', 'attachments', 'p1')).items.length, 1);
    await ok('policy', 'attach', 'p1', '--group', 'g6');
  });

  it('policy versions: 4 more with --set-default, the 6th refused by the limit', async () => {
    for (let v = 2; v <= 5; v++) {
      const created = await json<{ version: number; isDefault: boolean }>('policy', 'version', 'create', 'p1', '--file', file(`p1-v${v}.json`, doc(`v${v}/#`)), '--set-default');
      assert.deepEqual([created.version, created.isDefault], [v, true]);
    }
    const sixth = await refused(/invalid-state/, 'policy', 'version', 'create', 'p1', '--file', file('p1-v6.json', doc('v6/#')));
    assert.match(sixth.stderr, /5 versions/);

    const p = await json<{ defaultVersion: number; versions: { version: number }[]; document: unknown }>('policy', 'get', 'p1');
    assert.equal(p.defaultVersion, 5);
    assert.deepEqual(
      p.versions.map((v) => v.version),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(p.document, doc('v5/#'));
    const human = await ok('policy', 'get', 'p1');
    assert.match(human, /versions\s+1, 2, 3, 4, 5\*/);
    assert.match(human, /"v5\/#"/);

    const v3 = await json<{ version: number; isDefault: boolean; document: unknown }>('policy', 'get', 'p1', '--version', '3');
    assert.deepEqual([v3.version, v3.isDefault, v3.document], [3, false, doc('v3/#')]);
    await refused(/not-found/, 'policy', 'get', 'p1', '--version', '9');

    assert.match(await ok('policy', 'set-default', 'p1', '1'), /version 1 is the default/);
    await refused(/is the default.*invalid-state/, 'policy', 'version', 'delete', 'p1', '1');
    await ok('policy', 'version', 'delete', 'p1', '5');
    const v6 = await json<{ version: number; isDefault: boolean }>('policy', 'version', 'create', 'p1', '--file', join(data, 'p1-v6.json'));
    assert.deepEqual([v6.version, v6.isDefault], [6, false], 'a version number is never reused');
    const bad = await run('policy', 'set-default', 'p1', 'two');
    assert.equal(bad.code, 1);
  });

  it('cert get shows policies and history; deactivate and activate add to the history', async () => {
    const human = await ok('cert', 'get', certId);
    for (const re of [/^subject\s+CN=pump-1/m, /^issuer\s+.*CN=/m, /^serial\s+[0-9a-f]+/m, /^sha-256\s+\S+/m, /^valid\s+\S+ to \S+/m, /^key\s+ec-p256/m, /^status\s+active/m, /^thing\s+pump-1/m, /^policies\s+p1$/m, /history:\nAT\s+STATUS\s+REASON\s+ACTOR/]) {
      assert.match(human, re);
    }
    assert.match(await ok('cert', 'get', certId, '--pem'), /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    const before = await json<Detail>('cert', 'get', certId);

    assert.equal((await json<{ status: string }>('cert', 'deactivate', certId, '--reason', 'maintenance')).status, 'inactive');
    await refused(/invalid-state/, 'cert', 'deactivate', certId); // already inactive
    assert.match(await ok('cert', 'activate', certId), /is active/);

    const afterwards = await json<Detail>('cert', 'get', certId);
    assert.equal(afterwards.history.length, before.history.length + 2);
    assert.deepEqual(
      afterwards.history.slice(-2).map((h) => [h.status, h.reason]),
      [
        ['inactive', 'maintenance'],
        ['active', null],
      ],
    );
    assert.equal(afterwards.status, 'active');
    await refused(/not-found/, 'cert', 'get', 'f'.repeat(64));
  });

  it('thing delete is refused while a certificate is attached; cert detach / attach move it', async () => {
    await refused(/invalid-state/, 'thing', 'delete', 'pump-1');
    await ok('thing', 'create', 'pump-3');
    assert.equal((await json<{ thing: string | null }>('cert', 'detach', certId)).thing, null);
    assert.match(await ok('cert', 'attach', certId, '--thing', 'pump-3'), /attached certificate .* to thing pump-3/);
    assert.equal((await json<Detail>('cert', 'get', certId)).thing, 'pump-3');
    assert.match(await ok('thing', 'get', 'pump-3'), new RegExp(`certificates:\\nID\\s+STATUS.*\\n${certId}\\s+active`));
    assert.match(await ok('thing', 'delete', 'pump-1'), /deleted thing pump-1/);
    await refused(/not-found/, 'thing', 'get', 'pump-1');
    await refused(/not-found/, 'cert', 'attach', certId, '--thing', 'pump-1');
  });

  it('ca get, update, deactivate, activate', async () => {
    await ok('ca', 'create', 'line-ca', '--parent', 'root');
    const ca = await json<{ name: string; status: string; autoRegistration: boolean; provisioningTemplate: string | null }>('ca', 'get', 'line-ca');
    assert.deepEqual([ca.name, ca.status, ca.autoRegistration, ca.provisioningTemplate], ['line-ca', 'active', false, null]);
    const on = await json<{ autoRegistration: boolean; provisioningTemplate: string | null }>('ca', 'update', 'line-ca', '--auto-registration', 'on', '--template', 'line-template');
    assert.deepEqual([on.autoRegistration, on.provisioningTemplate], [true, 'line-template']);
    const off = await json<{ autoRegistration: boolean; provisioningTemplate: string | null }>('ca', 'update', 'line-ca', '--auto-registration', 'off', '--no-template');
    assert.deepEqual([off.autoRegistration, off.provisioningTemplate], [false, null]);
    await refused(/nothing to change/, 'ca', 'update', 'line-ca');
    const wrong = await run('ca', 'update', 'line-ca', '--auto-registration', 'maybe');
    assert.equal(wrong.code, 1);
    assert.equal((await json<{ status: string }>('ca', 'deactivate', 'line-ca')).status, 'inactive');
    assert.match(await ok('ca', 'activate', 'line-ca'), /CA line-ca is active/);
    assert.match(await ok('ca', 'get', 'line-ca'), /^status\s+active/m);
  });

  it("audit-log list shows every action with the admin token's actor", async () => {
    const tokens = await json<{ items: { id: string; scopes: string[] }[] }>('token', 'list');
    const admin = tokens.items.find((t) => t.scopes.includes('admin'));
    assert.ok(admin);
    adminActor = `token:${admin.id}`;

    const { items } = await json<{ items: Entry[] }>('audit-log', 'list', '--limit', '1000');
    const mine = items.filter((e) => e.actor === adminActor);
    const actions = new Set(mine.map((e) => e.action));
    for (const a of [
      'thing.create',
      'thing.update',
      'thing.delete',
      'group.create',
      'group.move',
      'group.delete',
      'group.add-thing',
      'group.remove-thing',
      'policy.create',
      'policy.delete',
      'policy.attach',
      'policy.detach',
      'policy.version.create',
      'policy.version.set-default',
      'policy.version.delete',
      'certificate.issue',
      'certificate.activate',
      'certificate.attach',
      'certificate.detach',
      'ca.update',
      'ca.deactivate',
      'ca.activate',
    ]) {
      assert.ok(actions.has(a), `audit log has ${a} by ${adminActor}: ${[...actions].join(', ')}`);
    }
    for (let i = 1; i < items.length; i++) assert.ok(items[i - 1]!.seq > items[i]!.seq, 'newest first');

    const pump = await json<{ items: Entry[] }>('audit-log', 'list', '--target', 'thing:pump-1');
    assert.deepEqual(
      pump.items.map((e) => e.action),
      ['thing.delete', 'thing.update', 'thing.create'],
    );
    assert.ok(pump.items.every((e) => e.actor === adminActor && e.target === 'thing:pump-1'));
    const byActor = await json<{ items: Entry[] }>('audit-log', 'list', '--actor', adminActor, '--limit', '3');
    assert.equal(byActor.items.length, 3);
    assert.deepEqual(byActor.items, items.filter((e) => e.actor === adminActor).slice(0, 3));
    const human = await ok('audit-log', 'list', '--limit', '5');
    assert.match(human, /^SEQ\s+AT\s+ACTOR\s+ACTION\s+TARGET$/m);
    assert.equal(human.trim().split('\n').length, 6);
  });

  it('audit-log verify: OK with the head', async () => {
    const r = await run('audit-log', 'verify');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^audit log OK: \d+ entries, head \d+ [0-9a-f]{64}$/m);
    const v = await json<{ ok: boolean; entries: number; head: { seq: number } }>('audit-log', 'verify');
    assert.equal(v.ok, true);
    assert.equal(v.head.seq, v.entries);
  });

  it('bad input: clear errors, exit 1, nothing changed', async () => {
    const policies = await json<{ items: unknown[] }>('policy', 'list');
    const entries = (await json<{ entries: number }>('audit-log', 'verify')).entries;

    const notJson = await refused(/not JSON/, 'policy', 'create', 'bad', '--file', file('notjson.txt', 'statements: allow everything'));
    assert.match(notJson.stderr, /notjson\.txt/);
    await refused(/must hold a JSON object/, 'policy', 'create', 'bad', '--file', file('array.json', '[]'));
    await refused(/cannot read/, 'policy', 'create', 'bad', '--file', join(data, 'missing.json'));
    assert.equal((await json<{ entries: number }>('audit-log', 'verify')).entries, entries, 'nothing was sent');

    const read = await refused(/bad-request/, 'policy', 'create', 'bad', '--file', file('read.json', { statements: [{ effect: 'allow', actions: ['read'], resources: ['x'] }] }));
    assert.match(read.stderr, /statements\[0\]\.actions\[0\]: unknown action "read"/);
    await refused(/bad-request/, 'policy', 'version', 'create', 'p1', '--file', join(data, 'read.json'));
    assert.deepEqual(await json<{ items: unknown[] }>('policy', 'list'), policies);

    await refused(/bad-request/, 'group', 'create', 'bad\u0007name');
    await refused(/bad-request/, 'thing', 'create', 'tab\tname');
    await refused(/not-found/, 'policy', 'attach', 'p1', '--cert', '0'.repeat(64));
    await refused(/not-found/, 'policy', 'attach', 'p1', '--group', 'nowhere');
    await refused(/not-found/, 'policy', 'attach', 'nopolicy', '--group', 'g1');
    await refused(/not-found/, 'group', 'add-thing', 'g1', 'nothing-here');

    assert.equal((await json<{ entries: number }>('audit-log', 'verify')).entries, entries, 'refused requests leave no audit entry');
    const r = await run('audit-log', 'verify');
    assert.equal(r.code, 0, r.stderr);
  });
});
