// The cross-replica state check (docs/faults.md, "Corruption"): this node's latest state hashes,
// each taken at an applied index every replica hashes at too (state-hash.ts), compared with the
// hashes its peers announce. At an index where a majority of the voters agree, a node whose hash
// differs holds damaged or divergent state: the check names it (status, metrics, log).
import type { StateHash } from "./state-hash.js";

/** What one node said about its state. */
export interface ReportedHashes {
  readonly name: string;
  readonly hashes: readonly StateHash[];
}

/** The outcome of the latest comparison. */
export interface StateCheckReport {
  /** The latest index at which a majority of the voters agreed on a hash (null: none yet). */
  readonly index: number | null;
  /** How many nodes reported the majority's hash at `index`. */
  readonly agreeing: number;
  /** Nodes whose hash differed from the majority's at the latest index each was compared at. */
  readonly differing: readonly { readonly name: string; readonly index: number }[];
}

/** Keeps this node's recent state hashes and compares them with its peers'. */
export class StateCheck {
  readonly #recentMax: number;
  #recent: StateHash[] = [];

  /** Creates the check, keeping the latest `recentMax` hashes of this node. */
  constructor(recentMax = 8) {
    this.#recentMax = recentMax;
  }

  /** Records a hash this node computed. */
  record(hash: StateHash): void {
    this.#recent.push(hash);
    if (this.#recent.length > this.#recentMax) this.#recent = this.#recent.slice(-this.#recentMax);
  }

  /** This node's latest hashes, oldest first (announced to peers). */
  recent(): readonly StateHash[] {
    return this.#recent;
  }

  /**
   * Compares the hashes of `nodes` (this node among them) index by index, oldest first. At an
   * index where more than half of `voterCount` nodes report the same hash, every node reporting
   * another hash differs; a node's latest verdict is the one that counts, so a node that was
   * repaired stops being named once it agrees again.
   */
  compare(nodes: readonly ReportedHashes[], voterCount: number): StateCheckReport {
    const indexes = new Set<number>();
    for (const node of nodes) for (const h of node.hashes) indexes.add(h.index);
    const verdicts = new Map<string, { index: number; differs: boolean }>();
    let agreedIndex: number | null = null;
    let agreeing = 0;
    for (const index of [...indexes].sort((a, b) => a - b)) {
      const byHash = new Map<string, string[]>();
      for (const node of nodes) {
        const hash = node.hashes.find((h) => h.index === index)?.hash;
        if (hash === undefined) continue;
        byHash.set(hash, [...(byHash.get(hash) ?? []), node.name]);
      }
      const majority = [...byHash.entries()].find(([, names]) => names.length * 2 > voterCount);
      if (majority === undefined) continue;
      agreedIndex = index;
      agreeing = majority[1].length;
      for (const [hash, names] of byHash)
        for (const name of names) verdicts.set(name, { index, differs: hash !== majority[0] });
    }
    const differing = [...verdicts.entries()]
      .filter(([, v]) => v.differs)
      .map(([name, v]) => ({ name, index: v.index }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return { index: agreedIndex, agreeing, differing };
  }
}
