import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeAtomic } from './files.js';
import { Journal, JOURNAL, manifestCsv, readJournal, writeManifest, type JournalEntry } from './journal.js';
import { thingNames } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'certfleet-batch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const entry = (thing: string): JournalEntry => ({
  thing,
  certificateId: `id-${thing}`,
  serial: `s-${thing}`,
  fingerprintSha256: `id-${thing}`,
  certPath: `/x/${thing}/cert.pem`,
  keyPath: `/x/${thing}/key.pem`,
  chainPath: `/x/${thing}/chain.pem`,
  caPath: `/x/${thing}/ca.pem`,
});

describe('batch journal', () => {
  it('reads back appended entries and ignores a torn last line, then appends cleanly after it', () => {
    const d = mkdtempSync(join(dir, 'j-'));
    const j = new Journal(d);
    j.append(entry('b'));
    j.append(entry('a'));
    j.close();
    writeFileSync(join(d, JOURNAL), `${readFileSync(join(d, JOURNAL), 'utf8')}{"thing":"c","certif`);
    assert.deepEqual([...readJournal(d).keys()], ['b', 'a']);
    const j2 = new Journal(d);
    j2.append(entry('c'));
    j2.close();
    assert.deepEqual([...readJournal(d).keys()], ['b', 'a', 'c']);
    const m = writeManifest(d);
    assert.deepEqual(m.map((e) => e.thing), ['a', 'b', 'c']);
    const csv = readFileSync(join(d, 'manifest.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 4);
    assert.equal(csv[1], 'a,id-a,s-a,id-a,/x/a/cert.pem,/x/a/key.pem,/x/a/chain.pem');
  });

  it('quotes CSV fields that need it', () => {
    const csv = manifestCsv([{ ...entry('x'), certPath: '/a,b/"c"', keyPath: null }]);
    assert.equal(csv.split('\n')[1], 'x,id-x,s-x,id-x,"/a,b/""c""",,/x/x/chain.pem');
  });

  it('writeAtomic creates keys owner-only', () => {
    const p = join(dir, 'k', 'key.pem');
    writeAtomic(p, 'secret', 0o600);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.equal(readFileSync(p, 'utf8'), 'secret');
  });

  it('thing names are zero-padded to a fixed width', () => {
    assert.deepEqual(thingNames('device', 1, 3), ['device-0001', 'device-0002', 'device-0003']);
    assert.deepEqual(thingNames('d', 99999, 2), ['d-099999', 'd-100000']);
  });
});
