// A simulated disk for tests and the deterministic simulator. It models what a real file system
// promises and no more: data is durable only after datasync/sync, a directory entry only after the
// directory is synced, and a crash keeps the durable state plus a random prefix of what came after
// (possibly ending in a torn write). Every decision comes from an injected Prng, every completion
// from an injected Scheduler, so one seed replays one history exactly.

import type { Prng } from "../util/index.js";
import { assert } from "../util/index.js";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "./file-system.js";
import { dirOf } from "./file-system.js";

/** Runs callbacks later; the simulator's event queue, or {@link immediateScheduler} in unit tests. */
export interface Scheduler {
  /** Runs `run` once `delayMs` of (simulated) time has passed. */
  after(delayMs: number, run: () => void): void;
}

/** A scheduler that runs every callback at once, synchronously: zero latency, for unit tests. */
export const immediateScheduler: Scheduler = {
  after(_delayMs: number, run: () => void): void {
    run();
  },
};

/** A probability as integers, `numerator / denominator`, so no float enters a decision. */
export interface Chance {
  readonly numerator: number;
  readonly denominator: number;
}

const never: Chance = { numerator: 0, denominator: 1 };

/** The faults a {@link SimFileSystem} injects; all may be changed while it runs. */
export interface SimFaults {
  /** Each operation completes after a latency drawn uniformly from [latencyMsMin, latencyMsMax]. */
  readonly latencyMsMin: number;
  readonly latencyMsMax: number;
  /** A read returns its bytes with one bit flipped (the stored bytes stay intact). */
  readonly readBitFlip: Chance;
  /** A read returns fewer bytes than are there (possibly 0, which looks like end of file). */
  readonly readTruncate: Chance;
  /** A datasync/sync fails with EIO (and what it should have made durable stays volatile). */
  readonly syncEio: Chance;
  /** The byte quota over all linked files; a write past it writes what fits and fails with ENOSPC. */
  readonly bytesMax: number;
}

/** No faults, no latency, no quota. */
export const noFaults: SimFaults = {
  latencyMsMin: 0,
  latencyMsMax: 0,
  readBitFlip: never,
  readTruncate: never,
  syncEio: never,
  bytesMax: Number.POSITIVE_INFINITY,
};

/** An error shaped like Node's file system errors: a message and a POSIX `code`. */
export class SimFsError extends Error {
  override readonly name = "SimFsError";
  readonly code: string;

  /** Creates an error with POSIX `code` about `path`. */
  constructor(code: string, what: string, path: string) {
    super(`${code}: ${what} '${path}'`);
    this.code = code;
  }
}

/** One not-yet-durable change to a file's bytes, with what it replaced so a crash can undo it. */
interface DataOp {
  readonly oldSize: number;
  readonly position: number;
  readonly oldBytes: Uint8Array;
  /** The bytes written, or undefined for a truncate to `newSize`. */
  readonly written: Uint8Array | undefined;
  readonly newSize: number;
}

class Inode {
  bytes = new Uint8Array(64);
  size = 0;
  /** Changes since the last sync, oldest first. */
  pending: DataOp[] = [];

  view(): Uint8Array {
    return this.bytes.subarray(0, this.size);
  }

  resize(size: number): void {
    if (size > this.bytes.length) {
      const grown = new Uint8Array(Math.max(size, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.size));
      this.bytes = grown;
    } else if (size < this.size) {
      // Zero the cut so a later extension reads zeros, as a real file would.
      this.bytes.fill(0, size, this.size);
    }
    this.size = size;
  }

  apply(position: number, written: Uint8Array | undefined, newSize: number): void {
    if (written === undefined) {
      this.resize(newSize);
      return;
    }
    if (position + written.length > this.size) this.resize(position + written.length);
    this.bytes.set(written, position);
  }

  /** Records and applies a change. */
  change(position: number, written: Uint8Array | undefined, newSize: number): void {
    const end = written === undefined ? this.size : Math.min(this.size, position + written.length);
    const from = written === undefined ? Math.min(newSize, this.size) : position;
    this.pending.push({
      oldSize: this.size,
      position: from,
      oldBytes: this.bytes.slice(from, Math.max(from, end)),
      written: written === undefined ? undefined : written.slice(),
      newSize,
    });
    this.apply(position, written, newSize);
  }

  /** Undoes every pending change (back to the durable state), then replays a random prefix. */
  crash(prng: Prng): void {
    const ops = this.pending;
    this.pending = [];
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i] as DataOp;
      this.resize(op.oldSize);
      this.bytes.set(op.oldBytes, op.position);
    }
    const kept = prng.below(ops.length + 1);
    for (let i = 0; i < kept; i++) {
      const op = ops[i] as DataOp;
      this.apply(op.position, op.written, op.newSize);
    }
    // The first lost write may still have reached the disk in part: a torn write.
    const next = ops[kept];
    if (next?.written !== undefined && next.written.length > 0 && prng.chance(1, 2)) {
      this.apply(next.position, next.written.subarray(0, prng.below(next.written.length)), 0);
    }
  }
}

/** A not-yet-durable change to a directory. */
type DirOp =
  | { readonly kind: "mkdir"; readonly path: string }
  | { readonly kind: "link"; readonly path: string; readonly inode: Inode }
  | { readonly kind: "unlink"; readonly path: string }
  | { readonly kind: "rename"; readonly from: string; readonly to: string; readonly inode: Inode };

/** The disk itself, shared by every process view of it. */
interface SimDiskState {
  faults: SimFaults;
  readonly prng: Prng;
  readonly scheduler: Scheduler;
  /** Bumped by every crash: operations begun in an older epoch never complete. */
  epoch: number;
  /** The directories a reader sees now. */
  readonly dirs: Set<string>;
  /** The directories that survive a crash: created, and their entry synced in the parent. */
  readonly durableDirs: Set<string>;
  /** The directory entries a reader sees now. */
  readonly live: Map<string, Inode>;
  /** The directory entries that survive a crash. */
  readonly durable: Map<string, Inode>;
  /** Directory changes since each directory's last sync. */
  readonly pendingDirOps: Map<string, DirOp[]>;
  syncCount: number;
}

/**
 * A simulated {@link FileSystem}: volatile until synced, torn by crashes, faulty on demand. Not
 * thread-safe by design (there are no threads); every completion goes through the {@link Scheduler}.
 */
export class SimFileSystem implements FileSystem {
  readonly #s: SimDiskState;
  /** The process this view belongs to (set for views made by {@link SimFileSystem.process}). */
  readonly #boundEpoch: number | undefined;

  /**
   * Creates an empty disk; `prng` decides faults and crash outcomes, `scheduler` completes operations.
   * `shared` is internal: {@link SimFileSystem.process} uses it to make a view of the same disk.
   */
  constructor(
    prng: Prng,
    scheduler: Scheduler = immediateScheduler,
    faults: Partial<SimFaults> = {},
    shared?: { readonly state: SimDiskState; readonly epoch: number },
  ) {
    this.#s = shared?.state ?? {
      faults: { ...noFaults, ...faults },
      prng,
      scheduler,
      epoch: 0,
      dirs: new Set<string>(["/", "."]),
      durableDirs: new Set<string>(["/", "."]),
      live: new Map(),
      durable: new Map(),
      pendingDirOps: new Map(),
      syncCount: 0,
    };
    this.#boundEpoch = shared?.epoch;
  }

  /**
   * A view of this disk for one process: after the next crash every operation through it (or a
   * handle it opened) never completes, even one started after the crash by code of the dead process
   * that was still running. Give each simulated process its own view; the root object always acts
   * as the live process.
   */
  process(): SimFileSystem {
    return new SimFileSystem(this.#s.prng, this.#s.scheduler, {}, { state: this.#s, epoch: this.#s.epoch });
  }

  /** The faults in force. */
  get faults(): SimFaults {
    return this.#s.faults;
  }

  /** Changes some faults from now on (for example frees space by raising `bytesMax`). */
  setFaults(faults: Partial<SimFaults>): void {
    this.#s.faults = { ...this.#s.faults, ...faults };
  }

  /** Bytes held by all linked files, counted against `bytesMax`. */
  usedBytes(): number {
    let used = 0;
    for (const inode of new Set(this.#s.live.values())) used += inode.size;
    return used;
  }

  /** How many datasync/sync calls completed successfully: a cost figure for group-commit tests. */
  get syncCount(): number {
    return this.#s.syncCount;
  }

  /**
   * The machine loses power: every file keeps its synced bytes plus a random prefix of later writes
   * (the last one possibly torn), every directory its synced entries plus a random prefix of later
   * changes. Operations in flight never complete and handles opened before now stop working.
   */
  crash(): void {
    this.#s.epoch++;
    const inodes = new Set([...this.#s.live.values(), ...this.#s.durable.values()]);
    for (const [, ops] of [...this.#s.pendingDirOps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const kept = this.#s.prng.below(ops.length + 1);
      for (const op of ops.slice(0, kept)) this.#applyDirOp(op);
    }
    this.#s.pendingDirOps.clear();
    // A directory whose own entry was lost takes everything under it along, synced or not.
    const reachable = (dir: string): boolean => {
      for (let d = dir; d !== "/" && d !== "." && d !== ""; d = dirOf(d)) {
        if (!this.#s.durableDirs.has(d)) return false;
      }
      return true;
    };
    for (const d of [...this.#s.durableDirs]) if (!reachable(d)) this.#s.durableDirs.delete(d);
    for (const path of [...this.#s.durable.keys()]) if (!reachable(dirOf(path))) this.#s.durable.delete(path);
    this.#s.dirs.clear();
    for (const d of this.#s.durableDirs) this.#s.dirs.add(d);
    for (const inode of inodes) inode.crash(this.#s.prng);
    this.#s.live.clear();
    for (const [path, inode] of this.#s.durable) this.#s.live.set(path, inode);
  }

  /** Flips bits of stored bytes (`mask` xor the byte at `offset`), as media corruption would; test helper. */
  corrupt(path: string, offset: number, mask = 0x01): void {
    const inode = this.#s.live.get(path);
    assert(inode !== undefined && offset < inode.size, `corrupt: no byte ${offset} in ${path}`);
    inode.bytes[offset] = (inode.bytes[offset] ?? 0) ^ mask;
  }

  /** The current bytes of `path` (a copy), or undefined; test helper. */
  contents(path: string): Uint8Array | undefined {
    return this.#s.live.get(path)?.view().slice();
  }

  open(path: string, mode: OpenMode): Promise<FileHandle> {
    return this.#run(() => {
      this.#requireDir(dirOf(path), path);
      let inode = this.#s.live.get(path);
      if (inode === undefined) {
        if (mode !== "create-or-truncate") throw new SimFsError("ENOENT", "open", path);
        inode = new Inode();
        this.#s.live.set(path, inode);
        this.#dirOp({ kind: "link", path, inode });
      } else if (mode === "create-or-truncate" && inode.size > 0) {
        inode.change(0, undefined, 0);
      }
      return new SimFileHandle(
        this,
        inode,
        path,
        this.#currentEpoch(),
        mode !== "read",
        mode === "read-write-durable",
      );
    });
  }

  readdir(dir: string): Promise<string[]> {
    return this.#run(() => {
      this.#requireDir(dir, dir);
      const prefix = dir.endsWith("/") ? dir : `${dir}/`;
      const names: string[] = [];
      for (const path of this.#s.live.keys()) {
        if (path.startsWith(prefix) && !path.slice(prefix.length).includes("/")) {
          names.push(path.slice(prefix.length));
        }
      }
      for (const d of this.#s.dirs) {
        if (d.startsWith(prefix) && d.length > prefix.length && !d.slice(prefix.length).includes("/")) {
          names.push(d.slice(prefix.length));
        }
      }
      return names.sort();
    });
  }

  mkdir(dir: string): Promise<void> {
    // A new directory is an entry in its parent: it survives a crash only once the parent is synced.
    return this.#run(() => {
      const created: string[] = [];
      for (let d = dir; d !== "/" && d !== "." && d !== "" && !this.#s.dirs.has(d); d = dirOf(d)) {
        created.push(d);
      }
      for (const d of created.reverse()) {
        this.#s.dirs.add(d);
        this.#dirOp({ kind: "mkdir", path: d });
      }
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run(() => {
      const inode = this.#s.live.get(from);
      if (inode === undefined) throw new SimFsError("ENOENT", "rename", from);
      this.#requireDir(dirOf(to), to);
      this.#s.live.delete(from);
      this.#s.live.set(to, inode);
      if (dirOf(from) === dirOf(to)) {
        this.#dirOp({ kind: "rename", from, to, inode });
      } else {
        this.#dirOp({ kind: "link", path: to, inode });
        this.#dirOp({ kind: "unlink", path: from });
      }
    });
  }

  unlink(path: string): Promise<void> {
    return this.#run(() => {
      if (!this.#s.live.delete(path)) throw new SimFsError("ENOENT", "unlink", path);
      this.#dirOp({ kind: "unlink", path });
    });
  }

  syncDir(dir: string): Promise<void> {
    return this.#run(() => {
      this.#requireDir(dir, dir);
      for (const op of this.#s.pendingDirOps.get(dir) ?? []) this.#applyDirOp(op);
      this.#s.pendingDirOps.delete(dir);
    });
  }

  stat(path: string): Promise<FileStat | undefined> {
    return this.#run(() => {
      if (this.#s.dirs.has(path)) return { size: 0, isDirectory: true };
      const inode = this.#s.live.get(path);
      return inode === undefined ? undefined : { size: inode.size, isDirectory: false };
    });
  }

  /** Completes `op` after a simulated latency, unless a crash happens first (then never). */
  run<T>(epoch: number, op: () => T): Promise<T> {
    const { latencyMsMin, latencyMsMax } = this.#s.faults;
    const delayMs =
      latencyMsMax > latencyMsMin ? this.#s.prng.range(latencyMsMin, latencyMsMax) : latencyMsMin;
    return new Promise<T>((resolve, reject) => {
      this.#s.scheduler.after(delayMs, () => {
        // A crashed process observes nothing more: its pending operations never settle.
        if (epoch !== this.#s.epoch) return;
        try {
          resolve(op());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** The current epoch; a handle remembers the one it was opened in. */
  get epoch(): number {
    return this.#s.epoch;
  }

  /** Decides a read fault: returns the bytes a read actually delivers. */
  readFault(bytes: Uint8Array): Uint8Array {
    let out = bytes;
    if (
      out.length > 0 &&
      this.#s.prng.chance(this.#s.faults.readTruncate.numerator, this.#s.faults.readTruncate.denominator)
    ) {
      out = out.subarray(0, this.#s.prng.below(out.length));
    }
    if (
      out.length > 0 &&
      this.#s.prng.chance(this.#s.faults.readBitFlip.numerator, this.#s.faults.readBitFlip.denominator)
    ) {
      out = out.slice();
      const at = this.#s.prng.below(out.length);
      out[at] = (out[at] ?? 0) ^ (1 << this.#s.prng.below(8));
    }
    return out;
  }

  /** Decides whether a sync fails with EIO; counts the successes. */
  syncFault(path: string): void {
    const { numerator, denominator } = this.#s.faults.syncEio;
    if (this.#s.prng.chance(numerator, denominator)) throw new SimFsError("EIO", "fdatasync", path);
    this.#s.syncCount++;
  }

  /** How many more bytes fit under the quota. */
  freeBytes(): number {
    return this.#s.faults.bytesMax - this.usedBytes();
  }

  #currentEpoch(): number {
    return this.#boundEpoch ?? this.#s.epoch;
  }

  #run<T>(op: () => T): Promise<T> {
    return this.run(this.#currentEpoch(), op);
  }

  #requireDir(dir: string, path: string): void {
    if (!this.#s.dirs.has(dir)) throw new SimFsError("ENOENT", "no such directory for", path);
  }

  #dirOp(op: DirOp): void {
    const dir = dirOf(op.kind === "rename" ? op.to : op.path);
    let ops = this.#s.pendingDirOps.get(dir);
    if (ops === undefined) {
      ops = [];
      this.#s.pendingDirOps.set(dir, ops);
    }
    ops.push(op);
  }

  /** Makes one directory change durable. */
  #applyDirOp(op: DirOp): void {
    const entries = this.#s.durable;
    switch (op.kind) {
      case "mkdir":
        this.#s.durableDirs.add(op.path);
        return;
      case "link":
        entries.set(op.path, op.inode);
        return;
      case "unlink":
        entries.delete(op.path);
        return;
      case "rename":
        entries.delete(op.from);
        entries.set(op.to, op.inode);
        return;
    }
  }
}

class SimFileHandle implements FileHandle {
  readonly #fs: SimFileSystem;
  readonly #inode: Inode;
  readonly #path: string;
  readonly #epoch: number;
  readonly #writable: boolean;
  readonly #dsync: boolean;
  #closed = false;

  constructor(
    fs: SimFileSystem,
    inode: Inode,
    path: string,
    epoch: number,
    writable: boolean,
    durable: boolean,
  ) {
    this.#fs = fs;
    this.#inode = inode;
    this.#path = path;
    this.#epoch = epoch;
    this.#writable = writable;
    this.#dsync = durable;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.#run(false, () => {
      const available = this.#inode.view().subarray(position, position + length);
      const delivered = this.#fs.readFault(available);
      buffer.set(delivered, offset);
      return delivered.length;
    });
  }

  write(data: Uint8Array, position: number): Promise<void> {
    if (this.#dsync) return this.#writeDurable(data, position);
    return this.#run(true, () => this.#applyWrite(data, position));
  }

  /**
   * An O_DSYNC write: the bytes reach the file (volatile) when the call is made, and become durable
   * when it completes; a crash in between keeps none, some (torn) or all of them.
   */
  #writeDurable(data: Uint8Array, position: number): Promise<void> {
    let failure: unknown;
    if (!this.#closed && this.#fs.epoch === this.#epoch) {
      try {
        this.#applyWrite(data, position);
      } catch (error) {
        failure = error;
      }
    }
    return this.#run(true, () => {
      if (failure !== undefined) throw failure;
      this.#fs.syncFault(this.#path);
      this.#inode.pending = [];
    });
  }

  #applyWrite(data: Uint8Array, position: number): void {
    const growth = Math.max(0, position + data.length - this.#inode.size);
    const free = this.#fs.freeBytes();
    if (growth > free) {
      // A full disk takes what fits and refuses the rest, as write(2) does.
      const fits = Math.max(0, position <= this.#inode.size ? this.#inode.size - position + free : 0);
      if (fits > 0) this.#inode.change(position, data.subarray(0, Math.min(fits, data.length)), 0);
      throw new SimFsError("ENOSPC", "write", this.#path);
    }
    this.#inode.change(position, data, 0);
  }

  datasync(): Promise<void> {
    return this.#run(false, () => {
      this.#fs.syncFault(this.#path);
      this.#inode.pending = [];
    });
  }

  sync(): Promise<void> {
    return this.datasync();
  }

  truncate(size: number): Promise<void> {
    return this.#run(true, () => {
      if (size > this.#inode.size && size - this.#inode.size > this.#fs.freeBytes()) {
        throw new SimFsError("ENOSPC", "truncate", this.#path);
      }
      this.#inode.change(0, undefined, size);
    });
  }

  size(): Promise<number> {
    return this.#run(false, () => this.#inode.size);
  }

  close(): Promise<void> {
    return this.#run(false, () => {
      this.#closed = true;
    });
  }

  #run<T>(writes: boolean, op: () => T): Promise<T> {
    return this.#fs.run(this.#epoch, () => {
      if (this.#closed) throw new SimFsError("EBADF", "closed handle for", this.#path);
      if (writes && !this.#writable) throw new SimFsError("EBADF", "read-only handle for", this.#path);
      return op();
    });
  }
}
