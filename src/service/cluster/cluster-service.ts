// The cluster as operators and tools see it: members with their names, roles and HTTP URLs, the
// leader, terms and indexes, and (on the leader) each peer's replication progress and lag.

import type { ClusterStatus, MemberStatus } from "../../api/index.js";
import type { NodeHost, RaftGroup, SnapshotBackup } from "../../node/index.js";
import type { NodeId } from "../../raft/index.js";
import { type AuthGuard, clusterAdminNeeds } from "../auth/index.js";
import type { EntryOutcome } from "../command.js";
import { toCairnError } from "../group-replication.js";
import type { StateCheckReport } from "../state-check.js";

// The status's shape is the public API's (src/api), defined once there.
export type { ClusterStatus, MemberStatus } from "../../api/index.js";
export type { SnapshotBackup } from "../../node/index.js";

/** What a ClusterService shows beside the group's own status. */
export interface ClusterServiceOptions {
  /** With a guard, the status is shown to holders of a valid token only. */
  readonly guard?: AuthGuard | undefined;
  /**
   * Why the node discarded its state, while it recovers (a member that withholds its vote for a
   * damaged log tail says so without it).
   */
  readonly recovering?: () => string | undefined;
  /** The cross-replica state check's latest report. */
  readonly stateCheck?: () => StateCheckReport;
}

/** Reads cluster state from the local group and the peer directory. */
export class ClusterService {
  readonly #clusterId: string;
  readonly #group: RaftGroup<EntryOutcome>;
  readonly #host: NodeHost;
  readonly #guard: AuthGuard | undefined;
  readonly #recovering: () => string | undefined;
  readonly #stateCheck: () => StateCheckReport;

  /** Creates the service over the local group and the peer directory. */
  constructor(
    clusterId: string,
    group: RaftGroup<EntryOutcome>,
    host: NodeHost,
    options: ClusterServiceOptions = {},
  ) {
    this.#clusterId = clusterId;
    this.#group = group;
    this.#host = host;
    this.#guard = options.guard;
    this.#recovering = options.recovering ?? (() => undefined);
    this.#stateCheck = options.stateCheck ?? (() => ({ index: null, agreeing: 0, differing: [] }));
  }

  /** Whether this node leads the group now. */
  isLeader(): boolean {
    return this.#group.softState.role === "leader";
  }

  /** The HTTP URL of the leader, if one is known and has announced itself. */
  leaderHttpUrl(): string | undefined {
    const leaderId = this.#group.softState.leaderId;
    if (leaderId === null) return undefined;
    return this.#urlOf(leaderId) ?? undefined;
  }

  #urlOf(id: NodeId): string | null {
    if (id === this.#host.self.id) return this.#host.self.httpUrl;
    return this.#host.peers().get(id)?.httpUrl ?? null;
  }

  #nameOf(id: NodeId): string | null {
    if (id === this.#host.self.id) return this.#host.self.name;
    return this.#host.peers().get(id)?.name ?? null;
  }

  /**
   * A backup of the replicated state (docs/operations.md): a snapshot captured once every write
   * acknowledged before the call is applied here, as the bytes of its snapshot file. Needs admin
   * on the cluster when authentication is on.
   */
  async backup(): Promise<SnapshotBackup> {
    this.#guard?.check(clusterAdminNeeds);
    try {
      return await this.#group.backup();
    } catch (error) {
      throw toCairnError(error);
    }
  }

  /** The full status. */
  status(): ClusterStatus {
    // Any valid token may see the cluster: clients find the leader and members through it.
    this.#guard?.check([]);
    const raft = this.#group.status();
    const progress = new Map(raft.peers.map((p) => [p.id, p]));
    const members = [
      ...raft.conf.voters.map((id) => ({ id, voter: true })),
      ...raft.conf.learners.map((id) => ({ id, voter: false })),
    ]
      .sort((a, b) => a.id - b.id)
      .map(({ id, voter }): MemberStatus => {
        const p = progress.get(id);
        return {
          id,
          name: this.#nameOf(id),
          voter,
          httpUrl: this.#urlOf(id),
          isLeader: raft.leaderId === id,
          ...(p !== undefined
            ? {
                progress: {
                  matchIndex: p.matchIndex,
                  nextIndex: p.nextIndex,
                  state: p.state,
                  inflight: p.inflight,
                  lag: Math.max(0, raft.lastIndex - p.matchIndex),
                  recentActive: p.recentActive,
                },
              }
            : {}),
        };
      });
    return {
      clusterId: this.#clusterId,
      self: {
        id: raft.id,
        name: this.#host.self.name,
        role: raft.role,
        recovering:
          this.#recovering() ??
          (raft.votesWithheld ? "a damaged log tail was cut: waiting for the leader to resend it" : null),
      },
      leader:
        raft.leaderId === null
          ? null
          : { id: raft.leaderId, name: this.#nameOf(raft.leaderId), httpUrl: this.#urlOf(raft.leaderId) },
      term: raft.term,
      commitIndex: raft.commitIndex,
      appliedIndex: this.#group.appliedIndex,
      lastIndex: raft.lastIndex,
      snapshotIndex: raft.snapshotIndex,
      stateCheck: this.#stateCheck(),
      members,
    };
  }
}
