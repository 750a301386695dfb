// Hard state (Raft Figure 2: currentTerm, votedFor; plus commitIndex) of each group, one small file
// per group, replaced atomically. Raft §5.1/§5.2: term and vote must be durable before the node
// answers a message that depends on them; commitIndex may lag (it is re-learned from the leader).
import { type GroupId, groupId, type HardState, logIndex, nodeId, term } from "../raft/index.js";
import { crc32 } from "../util/index.js";
import { makeDirDurable, removeTempFiles, writeFileAtomic } from "./atomic-file.js";
import { getU64, setU64, viewOf } from "./bytes.js";
import { FailStop } from "./fail-stop.js";
import { errnoOf, type FileSystem, joinPath } from "./file-system.js";
import { readWhole } from "./read-whole.js";
import { StorageError } from "./storage-error.js";

const magic = [0x43, 0x41, 0x49, 0x52, 0x4e, 0x48, 0x53, 0x31]; // "CAIRNHS1"
const fileBytes = 48;
const fileName = (group: GroupId): string => `hardstate-${String(group).padStart(10, "0")}.bin`;
const filePattern = /^hardstate-(\d{10})\.bin$/;

/** Encodes a group's hard state: magic 8, version u32, group u64, term u64, vote u64, commit u64, crc u32. */
export function encodeHardState(group: GroupId, hs: HardState): Uint8Array {
  const out = new Uint8Array(fileBytes);
  const view = viewOf(out);
  out.set(magic, 0);
  view.setUint32(8, 1, true);
  setU64(view, 12, group);
  setU64(view, 20, hs.term);
  setU64(view, 28, hs.votedFor ?? 0);
  setU64(view, 36, hs.commitIndex);
  view.setUint32(44, crc32(out.subarray(0, 44)), true);
  return out;
}

/** Decodes a hard state file, or undefined when it fails its checksum or framing. */
export function decodeHardState(bytes: Uint8Array): { group: GroupId; hardState: HardState } | undefined {
  if (bytes.length !== fileBytes) return undefined;
  const view = viewOf(bytes);
  if (view.getUint32(44, true) !== crc32(bytes.subarray(0, 44))) return undefined;
  if (magic.some((b, i) => bytes[i] !== b) || view.getUint32(8, true) !== 1) return undefined;
  const [g, t, vote, commit] = [12, 20, 28, 36].map((o) => getU64(view, o));
  if (g === undefined || t === undefined || vote === undefined || commit === undefined) return undefined;
  return {
    group: groupId(g),
    hardState: { term: term(t), votedFor: vote === 0 ? null : nodeId(vote), commitIndex: logIndex(commit) },
  };
}

/**
 * Durable hard state for every group of a node. Saves of one group run one after another; a save
 * that resolves is durable. Full disk: ERR_NO_SPACE (the old state stays); other I/O errors:
 * ERR_STORAGE_FAILED and the store stops.
 */
export class HardStateStore {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #stop: FailStop;
  readonly #chains = new Map<GroupId, Promise<void>>();

  private constructor(fs: FileSystem, dir: string, stop: FailStop) {
    this.#fs = fs;
    this.#dir = dir;
    this.#stop = stop;
  }

  /** Opens the store in `dir` (created if needed), removing temp files of interrupted saves. */
  static async open(
    fs: FileSystem,
    dir: string,
    options: { onFailure?: (error: StorageError) => void } = {},
  ): Promise<HardStateStore> {
    await makeDirDurable(fs, dir);
    await removeTempFiles(fs, dir);
    return new HardStateStore(fs, dir, new FailStop("hard state", options.onFailure));
  }

  /** Atomically replaces `group`'s hard state; resolves once it is durable. */
  save(group: GroupId, hardState: HardState): Promise<void> {
    const bytes = encodeHardState(group, hardState);
    const previous = this.#chains.get(group) ?? Promise.resolve();
    const run = previous.then(() =>
      this.#stop.run(() =>
        writeFileAtomic(this.#fs, joinPath(this.#dir, fileName(group)), (h) => h.write(bytes, 0)),
      ),
    );
    this.#chains.set(
      group,
      run.catch(() => undefined),
    );
    return run;
  }

  /** `group`'s hard state, or undefined if none was saved; ERR_HARD_STATE_CORRUPT if it fails its checksum. */
  async load(group: GroupId): Promise<HardState | undefined> {
    const name = fileName(group);
    let bytes: Uint8Array;
    try {
      bytes = await readWhole(this.#fs, joinPath(this.#dir, name));
    } catch (error) {
      if (errnoOf(error) === "ENOENT") return undefined;
      throw this.#stop.classify(error);
    }
    const decoded = decodeHardState(bytes);
    if (decoded === undefined || decoded.group !== group) {
      throw new StorageError("ERR_HARD_STATE_CORRUPT", `${name} fails its checksum or framing`, {
        site: { file: name, offset: 0 },
      });
    }
    return decoded.hardState;
  }

  /** The groups that have a saved hard state. */
  async groups(): Promise<GroupId[]> {
    const out: GroupId[] = [];
    for (const name of await this.#fs.readdir(this.#dir)) {
      const match = filePattern.exec(name);
      if (match?.[1] !== undefined) out.push(groupId(Number(match[1])));
    }
    return out;
  }
}
