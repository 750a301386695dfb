// A hash of a group's replicated state, for the cross-replica check (docs/faults.md,
// "Corruption"): replicas that applied the same log prefix must hold the same state, so their
// hashes at the same applied index must be equal (as etcd's corruption check compares members'
// hashes at one revision). Computed by every replica when it applies an entry whose index is a
// multiple of the check interval, from the state as of that entry.
import { createHash } from "node:crypto";
import { appliedIndexKey, restoringKey } from "../storage/index.js";
import { bytesEqual } from "../util/index.js";
import { keyAfter, type StateReader, spaceCodes, spaces } from "./state.js";

/** The state hash a replica computed at an applied index. */
export interface StateHash {
  readonly index: number;
  /** SHA-256 of the state, hex. */
  readonly hash: string;
}

const pageMax = 1000;
/** The state store's own bookkeeping in "meta": it differs between replicas and is not hashed. */
const storeKeys = [appliedIndexKey, restoringKey];

/**
 * SHA-256 over every (space, key, value) of `state`, in space then key order, but the store's own
 * bookkeeping keys.
 */
export function hashState(state: StateReader): string {
  const pages = hashPages(state);
  let step = pages.next();
  while (step.done !== true) step = pages.next();
  return step.value;
}

/**
 * {@link hashState}, calling `pause` after every page of pairs so that a large state does not
 * hold the event loop: for a reader whose view later writes do not change (a pinned view).
 */
export async function hashStateInPages(state: StateReader, pause: () => Promise<void>): Promise<string> {
  const pages = hashPages(state);
  let step = pages.next();
  while (step.done !== true) {
    await pause();
    step = pages.next();
  }
  return step.value;
}

/** Feeds the hash one page of pairs per step; returns the hex digest. */
function* hashPages(state: StateReader): Generator<void, string> {
  const hash = createHash("sha256");
  const lengths = new DataView(new ArrayBuffer(9));
  for (const space of spaces) {
    let start: Uint8Array = new Uint8Array(0);
    for (;;) {
      let count = 0;
      let last: Uint8Array | undefined;
      for (const [key, value] of state.range(space, start, undefined, pageMax)) {
        last = key;
        count++;
        if (space === "meta" && storeKeys.some((k) => bytesEqual(k, key))) continue;
        lengths.setUint8(0, spaceCodes[space]);
        lengths.setUint32(1, key.length);
        lengths.setUint32(5, value.length);
        hash.update(new Uint8Array(lengths.buffer));
        hash.update(key);
        hash.update(value);
      }
      if (count < pageMax || last === undefined) break;
      start = keyAfter(last);
      yield;
    }
  }
  return hash.digest("hex");
}
