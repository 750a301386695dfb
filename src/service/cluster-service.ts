// The cluster as operators and tools see it: members with their names, roles and HTTP URLs, the
// leader, terms and indexes, and (on the leader) each peer's replication progress and lag.
import type { NodeHost } from "../node/node-host.js";
import type { RaftGroup } from "../node/raft-group.js";
import type { NodeId } from "../raft/index.js";
import type { ApplyOutcome } from "./command.js";

/** One member in the cluster status. */
export interface MemberStatus {
  readonly id: number;
  readonly name: string | null;
  readonly voter: boolean;
  readonly httpUrl: string | null;
  readonly isLeader: boolean;
  /** Leader's view of the member's log, when this node leads. */
  readonly progress?: {
    readonly matchIndex: number;
    readonly nextIndex: number;
    readonly state: string;
    readonly inflight: number;
    readonly lag: number;
    readonly recentActive: boolean;
  };
}

/** The answer of GET /v1/cluster. */
export interface ClusterStatus {
  readonly clusterId: string;
  readonly self: { readonly id: number; readonly name: string; readonly role: string };
  readonly leader: {
    readonly id: number;
    readonly name: string | null;
    readonly httpUrl: string | null;
  } | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The log is compacted up to here: a snapshot replaces the entries before. */
  readonly snapshotIndex: number;
  readonly members: readonly MemberStatus[];
}

/** Reads cluster state from the local group and the peer directory. */
export class ClusterService {
  readonly #clusterId: string;
  readonly #group: RaftGroup<ApplyOutcome>;
  readonly #host: NodeHost;

  /** Creates the service. */
  constructor(clusterId: string, group: RaftGroup<ApplyOutcome>, host: NodeHost) {
    this.#clusterId = clusterId;
    this.#group = group;
    this.#host = host;
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

  /** The full status. */
  status(): ClusterStatus {
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
      self: { id: raft.id, name: this.#host.self.name, role: raft.role },
      leader:
        raft.leaderId === null
          ? null
          : { id: raft.leaderId, name: this.#nameOf(raft.leaderId), httpUrl: this.#urlOf(raft.leaderId) },
      term: raft.term,
      commitIndex: raft.commitIndex,
      appliedIndex: this.#group.appliedIndex,
      lastIndex: raft.lastIndex,
      snapshotIndex: raft.snapshotIndex,

      members,
    };
  }
}
