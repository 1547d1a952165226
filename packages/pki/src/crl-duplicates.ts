/**
 * Finding a serial listed twice in a CRL being built, on the bytes already
 * written. With a million entries the obvious tools are the slow part of the
 * build: a Set of hex strings cost 330–500 ms here and an open-addressing
 * table ~200 ms (every probe is a cache miss in a 16 MB table). Hashing each
 * serial and radix-sorting the hashes touches memory in order: ~50 ms. Only
 * entries whose 32-bit hashes collide (about a hundred in a million) have
 * their bytes compared.
 */

/** FNV-1a over buf[at, at + n). */
function fnv1a(buf: Uint8Array, at: number, n: number): number {
  let h = 0x811c9dc5;
  for (let k = at; k < at + n; k++) h = Math.imul(h ^ buf[k]!, 0x01000193);
  return h >>> 0;
}

/** Sorts `keys` ascending by two 16-bit LSD radix passes, carrying `values` along. */
function radixSort(keys: Uint32Array, values: Uint32Array): void {
  const n = keys.length;
  const k2 = new Uint32Array(n);
  const v2 = new Uint32Array(n);
  const counts = new Uint32Array(65_536);
  for (const shift of [0, 16]) {
    const [fromK, fromV, toK, toV] = shift === 0 ? [keys, values, k2, v2] : [k2, v2, keys, values];
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(fromK[i]! >>> shift) & 0xffff]!++;
    for (let i = 0, sum = 0; i < 65_536; i++) {
      const c = counts[i]!;
      counts[i] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = counts[(fromK[i]! >>> shift) & 0xffff]!++;
      toK[at] = fromK[i]!;
      toV[at] = fromV[i]!;
    }
  }
}

/**
 * The index of an entry whose serial equals an earlier one, or -1. `offsets[i]`
 * is where entry i's INTEGER contents start in `buf`; the octet before holds
 * their length (DER short form: serials are at most 21 octets).
 */
export function findDuplicateSerial(buf: Uint8Array, offsets: Uint32Array): number {
  const n = offsets.length;
  const hashes = new Uint32Array(n);
  const index = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    hashes[i] = fnv1a(buf, offsets[i]!, buf[offsets[i]! - 1]!);
    index[i] = i;
  }
  radixSort(hashes, index);
  const same = (a: number, b: number): boolean => {
    const oa = offsets[a]!;
    const ob = offsets[b]!;
    const len = buf[oa - 1]!;
    if (buf[ob - 1] !== len) return false;
    for (let k = 0; k < len; k++) if (buf[oa + k] !== buf[ob + k]) return false;
    return true;
  };
  for (let i = 1; i < n; i++) {
    // Runs of equal hashes are tiny: compare every pair in the run.
    for (let j = i - 1; j >= 0 && hashes[j] === hashes[i]; j--) {
      if (same(index[i]!, index[j]!)) return Math.max(index[i]!, index[j]!);
    }
  }
  return -1;
}
