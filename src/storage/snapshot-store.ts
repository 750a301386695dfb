// Snapshot files (Raft §7): written and read in bounded chunks so a snapshot of any size never sits
// in one buffer, every chunk checksummed, a trailer checksumming the whole, and the file renamed into
// place only when complete. A reader verifies as it goes; `verify` does a full pass before install.
import {
  type ConfState,
  type GroupId,
  groupId,
  logIndex,
  type NodeId,
  nodeId,
  type SnapshotMeta,
  term,
} from "../raft/index.js";
import { assert, crc32 } from "../util/index.js";
import { makeDirDurable, removeTempFiles, tempSuffix, writeFileAtomic } from "./atomic-file.js";
import { getU64, setU64, viewOf } from "./bytes.js";
import { FailStop } from "./fail-stop.js";
import { dirOf, errnoOf, type FileSystem, joinPath } from "./file-system.js";
import { readIfPresent } from "./read-whole.js";
import { StorageError } from "./storage-error.js";

const magic = [0x43, 0x41, 0x49, 0x52, 0x4e, 0x53, 0x4e, 0x50]; // "CAIRNSNP"
const version = 1;
const frameHeaderBytes = 8;
const snapshotPattern = /^snap-(\d{10})-(\d{20})\.snap$/;
const snapshotName = (group: GroupId, index: number): string =>
  `snap-${String(group).padStart(10, "0")}-${String(index).padStart(20, "0")}.snap`;
const baseName = (group: GroupId): string => `base-${String(group).padStart(10, "0")}.meta`;

/** Settings of a {@link SnapshotStore}. */
export interface SnapshotStoreOptions {
  /** The largest chunk a writer accepts and a reader trusts. */
  readonly chunkBytesMax: number;
  /** Snapshots kept per group; older ones are deleted after a newer one is committed. */
  readonly retainMax: number;
  /** Hears once that the store stopped after an I/O failure. */
  readonly onFailure?: (error: StorageError) => void;
}

/** Defaults: 1 MiB chunks, keep the newest 2 snapshots per group. */
export const defaultSnapshotStoreOptions: SnapshotStoreOptions = { chunkBytesMax: 1024 * 1024, retainMax: 2 };

function encodeHeader(group: GroupId, meta: SnapshotMeta): Uint8Array {
  const ids = meta.conf.voters.length + meta.conf.learners.length;
  const size = 8 + 4 + 4 + 24 + 8 + ids * 8 + 4;
  const out = new Uint8Array(size);
  const view = viewOf(out);
  out.set(magic, 0);
  view.setUint32(8, version, true);
  view.setUint32(12, size, true);
  setU64(view, 16, group);
  setU64(view, 24, meta.index);
  setU64(view, 32, meta.term);
  view.setUint32(40, meta.conf.voters.length, true);
  view.setUint32(44, meta.conf.learners.length, true);
  [...meta.conf.voters, ...meta.conf.learners].forEach((id, i) => {
    setU64(view, 48 + i * 8, id);
  });
  view.setUint32(size - 4, crc32(out.subarray(0, size - 4)), true);
  return out;
}

function decodeHeader(bytes: Uint8Array): { group: GroupId; meta: SnapshotMeta } | undefined {
  const view = viewOf(bytes);
  const size = bytes.length;
  if (size < 52 || view.getUint32(size - 4, true) !== crc32(bytes.subarray(0, size - 4))) return undefined;
  if (magic.some((b, i) => bytes[i] !== b) || view.getUint32(8, true) !== version) return undefined;
  const voters = view.getUint32(40, true);
  const learners = view.getUint32(44, true);
  if (size !== 52 + (voters + learners) * 8) return undefined;
  const [g, index, t] = [16, 24, 32].map((o) => getU64(view, o));
  const ids: NodeId[] = [];
  for (let i = 0; i < voters + learners; i++) {
    const id = getU64(view, 48 + i * 8);
    if (id === undefined || id === 0) return undefined;
    ids.push(nodeId(id));
  }
  if (g === undefined || index === undefined || t === undefined) return undefined;
  const conf: ConfState = { voters: ids.slice(0, voters), learners: ids.slice(voters) };
  return { group: groupId(g), meta: { index: logIndex(index), term: term(t), conf } };
}

/** A stored snapshot file as bytes: its size and a reader of its pieces in order. */
export interface SnapshotFile {
  readonly bytes: number;
  read(): AsyncGenerator<Uint8Array>;
}

/** Pieces a {@link SnapshotFile} is read in. */
const filePieceBytes = 64 * 1024;

/**
 * Opens a snapshot file at any path (a stored snapshot, or a backup made of one) and checks its
 * header: ERR_SNAPSHOT_CORRUPT naming `name` when the file is too short, not a Cairn snapshot
 * (magic or version), or its header fails its checksum. Its chunks are verified as they are read,
 * the trailer checksum last.
 */
export async function openSnapshotFile(
  fs: FileSystem,
  path: string,
  name: string,
  chunkBytesMax: number,
): Promise<{ group: GroupId; meta: SnapshotMeta; chunks: () => AsyncGenerator<Uint8Array> }> {
  let handle = await fs.open(path, "read");
  const corrupt = (offset: number, reason: string): StorageError =>
    new StorageError("ERR_SNAPSHOT_CORRUPT", `${name} at ${offset}: ${reason}`, {
      site: { file: name, offset },
    });
  const readExactly = async (length: number, position: number): Promise<Uint8Array> => {
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const n = await handle.read(out, at, length - at, position + at);
      if (n === 0) throw corrupt(position + at, "file ends early");
      at += n;
    }
    return out;
  };
  let header: { group: GroupId; meta: SnapshotMeta } | undefined;
  let headerBytes = 0;
  try {
    const prefix = await readExactly(16, 0);
    if (magic.some((b, i) => prefix[i] !== b)) throw corrupt(0, "not a Cairn snapshot (magic)");
    headerBytes = viewOf(prefix).getUint32(12, true);
    if (headerBytes > 16 + 65536 * 8) throw corrupt(0, "header size");
    header = decodeHeader(await readExactly(headerBytes, 0));
    if (header === undefined) throw corrupt(0, "header");
  } finally {
    await handle.close();
  }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    handle = await fs.open(path, "read");
    let position = headerBytes;
    let wholeCrc = 0;
    try {
      for (;;) {
        const frameHeader = viewOf(await readExactly(frameHeaderBytes, position));
        const length = frameHeader.getUint32(0, true);
        const crc = frameHeader.getUint32(4, true);
        if (length === 0) {
          if (crc !== wholeCrc) throw corrupt(position, "trailer checksum");
          if ((await handle.size()) !== position + frameHeaderBytes)
            throw corrupt(position + frameHeaderBytes, "bytes after the trailer");
          return;
        }
        if (length > chunkBytesMax) throw corrupt(position, "chunk length");
        const chunk = await readExactly(length, position + frameHeaderBytes);
        if (crc32(chunk) !== crc) throw corrupt(position, "chunk checksum");
        wholeCrc = crc32(chunk, wholeCrc);
        position += frameHeaderBytes + length;
        yield chunk;
      }
    } finally {
      await handle.close();
    }
  }
  return { ...header, chunks };
}

/** A snapshot being written; nothing is visible until {@link SnapshotWriter.commit} resolves. */
export interface SnapshotWriter {
  /** Appends one chunk (at most `chunkBytesMax` bytes). */
  write(chunk: Uint8Array): Promise<void>;
  /** Seals the file (trailer, fsync, rename, directory fsync) and deletes snapshots beyond `retainMax`. */
  commit(): Promise<void>;
  /** Drops the partial file. */
  abort(): Promise<void>;
}

/** A stored snapshot: its metadata and its data as verified chunks. */
export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  /** The data chunks in order, each verified before it is yielded; the last step checks the trailer. */
  chunks(): AsyncGenerator<Uint8Array>;
}

/** Snapshot files of every group of a node, in one directory. */
export class SnapshotStore {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #options: SnapshotStoreOptions;
  readonly #stop: FailStop;
  #writersStarted = 0;
  /** Readers in progress per snapshot name; retention never deletes a file while one reads it. */
  readonly #pins = new Map<string, number>();

  private constructor(fs: FileSystem, dir: string, options: SnapshotStoreOptions) {
    this.#fs = fs;
    this.#dir = dir;
    this.#options = options;
    this.#stop = new FailStop("snapshot store", options.onFailure);
  }

  /** Opens the store in `dir` (created if needed), removing partial snapshots a crash left behind. */
  static async open(
    fs: FileSystem,
    dir: string,
    options: Partial<SnapshotStoreOptions> = {},
  ): Promise<SnapshotStore> {
    await makeDirDurable(fs, dir);
    await removeTempFiles(fs, dir);
    return new SnapshotStore(fs, dir, { ...defaultSnapshotStoreOptions, ...options });
  }

  /** Starts writing `group`'s snapshot described by `meta`. */
  async create(group: GroupId, meta: SnapshotMeta): Promise<SnapshotWriter> {
    const path = joinPath(this.#dir, snapshotName(group, meta.index));
    // Each writer its own temp file: a follower may capture a snapshot while it stores one from its
    // leader, and a leader may stream one snapshot twice, so writers of one name can overlap.
    const temp = `${path}.${this.#writersStarted++}${tempSuffix}`;
    const stop = this.#stop;
    const header = encodeHeader(group, meta);
    const handle = await stop.run(async () => {
      const h = await this.#fs.open(temp, "create-or-truncate");
      await h.write(header, 0);
      return h;
    });
    let position = header.length;
    let wholeCrc = 0;
    let done = false;
    const frame = (payload: Uint8Array, crc: number): Uint8Array => {
      const out = new Uint8Array(frameHeaderBytes + payload.length);
      const view = viewOf(out);
      view.setUint32(0, payload.length, true);
      view.setUint32(4, crc, true);
      out.set(payload, frameHeaderBytes);
      return out;
    };
    const discard = async (): Promise<void> => {
      done = true;
      await handle.close().catch(() => undefined);
      await this.#fs.unlink(temp).catch(() => undefined);
    };
    return {
      write: async (chunk) => {
        assert(!done, "write after commit or abort");
        if (chunk.length === 0) return;
        if (chunk.length > this.#options.chunkBytesMax) {
          throw new StorageError(
            "ERR_TOO_LARGE",
            `snapshot chunk of ${chunk.length} bytes exceeds chunkBytesMax`,
          );
        }
        const bytes = frame(chunk, crc32(chunk));
        await stop
          .run(() => handle.write(bytes, position))
          .catch(async (error: unknown) => {
            await discard();
            throw error;
          });
        position += bytes.length;
        wholeCrc = crc32(chunk, wholeCrc);
      },
      commit: async () => {
        assert(!done, "commit after commit or abort");
        // Trailer: a zero-length frame whose checksum covers every data byte in order.
        const trailer = frame(new Uint8Array(0), wholeCrc);
        await stop
          .run(async () => {
            await handle.write(trailer, position);
            await handle.sync();
            await handle.close();
            done = true;
            await this.#fs.rename(temp, path);
            await this.#fs.syncDir(dirOf(path));
          })
          .catch(async (error: unknown) => {
            if (!done) await discard();
            throw error;
          });
        await this.#prune(group);
      },
      abort: discard,
    };
  }

  /**
   * Records durably (an atomically replaced file) that `group`'s log is compacted to `meta` with
   * no snapshot file: the state store, durable at or past `meta.index`, holds the data. A restart
   * starts the log from it when the log's compaction point is `meta.index` (or below it: a crash
   * came between this record and the log's compaction).
   */
  async saveBase(group: GroupId, meta: SnapshotMeta): Promise<void> {
    const bytes = encodeHeader(group, meta);
    await this.#stop.run(() =>
      writeFileAtomic(this.#fs, joinPath(this.#dir, baseName(group)), (h) => h.write(bytes, 0)),
    );
  }

  /** The meta {@link saveBase} last recorded for `group`, or undefined; ERR_SNAPSHOT_CORRUPT if damaged. */
  async base(group: GroupId): Promise<SnapshotMeta | undefined> {
    const name = baseName(group);
    const bytes = await readIfPresent(this.#fs, joinPath(this.#dir, name)).catch((error: unknown) => {
      throw this.#stop.classify(error);
    });
    if (bytes === undefined) return undefined;
    const decoded = decodeHeader(bytes);
    if (decoded === undefined || decoded.group !== group)
      throw new StorageError("ERR_SNAPSHOT_CORRUPT", `${name} fails its checksum or framing`, {
        site: { file: name, offset: 0 },
      });
    return decoded.meta;
  }

  /**
   * Keeps `group`'s snapshot at `index` from being pruned until the returned release is called:
   * an install verifies the file, then reads it again, and a newer snapshot committed in between
   * (a capture, or another one received) must not delete it under the reader.
   */
  pin(group: GroupId, index: number): () => void {
    const name = snapshotName(group, index);
    this.#pins.set(name, (this.#pins.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#pins.get(name) ?? 1) - 1;
      if (left === 0) this.#pins.delete(name);
      else this.#pins.set(name, left);
    };
  }

  /** The indexes of every stored snapshot of `group`, newest first. */
  async list(group: GroupId): Promise<number[]> {
    const indexes: number[] = [];
    for (const name of await this.#fs.readdir(this.#dir)) {
      const match = snapshotPattern.exec(name);
      if (match !== null && Number(match[1]) === group) indexes.push(Number(match[2]));
    }
    return indexes.sort((a, b) => b - a);
  }

  /** The newest snapshot of `group`, or undefined; ERR_SNAPSHOT_CORRUPT if its header is bad. */
  async latest(group: GroupId): Promise<SnapshotReader | undefined> {
    const [newest] = await this.list(group);
    return newest === undefined ? undefined : this.open(group, newest);
  }

  /** Opens `group`'s snapshot at `index`; ERR_SNAPSHOT_CORRUPT if its header is bad. */
  async open(group: GroupId, index: number): Promise<SnapshotReader> {
    const name = snapshotName(group, index);
    const opened = await openSnapshotFile(
      this.#fs,
      joinPath(this.#dir, name),
      name,
      this.#options.chunkBytesMax,
    );
    if (opened.group !== group || opened.meta.index !== index)
      throw new StorageError("ERR_SNAPSHOT_CORRUPT", `${name} at 0: header`, {
        site: { file: name, offset: 0 },
      });
    return { meta: opened.meta, chunks: opened.chunks };
  }

  /**
   * The bytes of `group`'s stored snapshot at `index` exactly as on disk (header, checksummed
   * chunks, trailer): what a backup carries (docs/operations.md). The caller pins and verifies it.
   */
  async file(group: GroupId, index: number): Promise<SnapshotFile> {
    const path = joinPath(this.#dir, snapshotName(group, index));
    const fs = this.#fs;
    const sizing = await fs.open(path, "read");
    const bytes = await sizing.size().finally(() => sizing.close());
    return {
      bytes,
      async *read(): AsyncGenerator<Uint8Array> {
        const handle = await fs.open(path, "read");
        try {
          for (let position = 0; position < bytes; ) {
            const piece = new Uint8Array(Math.min(filePieceBytes, bytes - position));
            const n = await handle.read(piece, 0, piece.length, position);
            if (n === 0)
              throw new StorageError("ERR_SNAPSHOT_CORRUPT", `${path} ends at ${position} of ${bytes}`);
            position += n;
            yield piece.subarray(0, n);
          }
        } finally {
          await handle.close();
        }
      },
    };
  }

  /**
   * Reads `group`'s snapshot at `index` through, chunk by chunk, and returns its metadata if every
   * checksum holds (else ERR_SNAPSHOT_CORRUPT). Install only what passed this.
   */
  async verify(group: GroupId, index: number): Promise<SnapshotMeta> {
    const reader = await this.open(group, index);
    for await (const _chunk of reader.chunks()) {
      // Each chunk is checked as it is read; nothing is kept.
    }
    return reader.meta;
  }

  async #prune(group: GroupId): Promise<void> {
    // A pinned snapshot outlives retention; the first prune after its release deletes it.
    const extra = (await this.list(group))
      .slice(this.#options.retainMax)
      .filter((index) => !this.#pins.has(snapshotName(group, index)));
    if (extra.length === 0) return;
    await this.#stop.run(async () => {
      for (const index of extra) {
        // Overlapping commits prune the same files; one that is gone already is no failure.
        await this.#fs.unlink(joinPath(this.#dir, snapshotName(group, index))).catch((error: unknown) => {
          if (errnoOf(error) !== "ENOENT") throw error;
        });
      }

      await this.#fs.syncDir(this.#dir);
    });
  }
}
