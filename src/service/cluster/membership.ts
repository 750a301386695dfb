// Membership as operators use it: a new node joins through any member (registered, added as a
// learner, promoted to voter once it has caught up), members are removed, leadership is handed
// over. The leader also keeps the registry complete for the bootstrap members, and every node keeps
// its transport's peer set equal to the registry.

import type { NodeHost, RaftGroup } from "../../node/index.js";
import { NodeError } from "../../node/index.js";
import { type NodeId, nodeId } from "../../raft/index.js";
import type { PeerAddress } from "../../transport/index.js";
import { assert } from "../../util/index.js";
import { type AuthGuard, clusterAdminNeeds } from "../auth/index.js";
import { type ApplyOutcome, type EntryOutcome, encodeEnvelope, isResultOf } from "../command.js";
import { CairnError, isCairnError, refusalError } from "../errors.js";
import { toCairnError } from "../group-replication.js";
import type { LeaderLink } from "../leader-link.js";
import type { StateReader } from "../state.js";
import {
  listRegistry,
  type MemberCommand,
  type MemberRecord,
  nextMemberId,
  reachableMembers,
} from "./members.js";

/** What a joining node needs to start: its id, the cluster id and where everyone is. */
export interface JoinAnswer {
  readonly id: number;
  readonly clusterId: string;
  /** The voters the group was bootstrapped with: the base every later change applies to. */
  readonly initialVoters: readonly number[];
  readonly members: readonly MemberRecord[];
}

/** Settings of the membership service. */
export interface MembershipOptions {
  readonly clusterId: string;
  readonly group: RaftGroup<EntryOutcome>;
  readonly host: NodeHost;
  readonly state: StateReader;
  /** The members this node knew at start (bootstrap list or join answer), to dial until registered. */
  readonly knownMembers: readonly MemberRecord[];
  /** The voters the group was bootstrapped with. */
  readonly initialVoters: readonly number[];
  /** Whether this node bootstrapped the cluster: then, as leader, it registers the bootstrap members. */
  readonly bootstrapped: boolean;
  /** Replaces the transport's peer set. */
  readonly setPeers: (peers: ReadonlyMap<NodeId, PeerAddress>) => void;
  readonly nowMs: () => number;
  /** A learner within this many entries of the leader's log is promoted. Default 64. */
  readonly promoteLagMax?: number;
  /** Hands joins, removals and transfers to the leader when this node does not lead. */
  readonly link?: LeaderLink;
  /** Checks that the caller may change membership (admin on the cluster). */
  readonly guard?: AuthGuard;
}

/** How long a node that announced itself, but whose joining this node has not applied, stays a peer. */
const announcedPeerAgeMaxMs = 10_000;

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ADDRESS = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The transport address of a `host:port` peer address (an IPv6 host may be in brackets). */
export function peerAddressOf(address: string): PeerAddress {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(address.slice(at + 1)) };
}

/** Joins, removals, transfers and the leader's membership upkeep. */
export class Membership {
  readonly #o: MembershipOptions;
  #lastPeers = "";
  #maintaining = false;

  /** Creates the service. */
  constructor(options: MembershipOptions) {
    this.#o = options;
  }

  /**
   * Registered members (a removed one only until its removal commits), plus members known at
   * start that are in the configuration but not registered yet.
   */
  members(): MemberRecord[] {
    const conf = this.#o.group.status().conf;
    const inConf = new Set<number>([...conf.voters, ...conf.learners]);
    return reachableMembers(this.#o.state, inConf, this.#o.knownMembers);
  }

  /** Whether `id` was a member and was removed (this node applied its retirement). */
  isRetired(id: number): boolean {
    return listRegistry(this.#o.state).some((m) => m.id === id && m.retired);
  }

  /**
   * The peers to keep links to: the members, and any node this one has not applied the joining of
   * that announced itself lately and was not removed. Without the latter a node that was down while
   * another joined and came to lead could never answer that leader (nor learn of it from the log it
   * cannot get): the newcomer tells where it is, as etcd's peers add a remote for a sender they do
   * not know yet.
   */
  #peerAddresses(): Map<NodeId, PeerAddress> {
    const self = this.#o.host.self.id;
    const addresses = new Map<NodeId, string>();
    const announced = this.#o.host.announcedPeerAddresses(announcedPeerAgeMaxMs);
    const retired = new Set(listRegistry(this.#o.state).flatMap((m) => (m.retired ? [m.id] : [])));
    for (const m of this.members()) if (m.id !== self) addresses.set(nodeId(m.id), m.peerAddress);
    for (const [id, address] of announced) {
      if (id !== self && !addresses.has(id) && !retired.has(id)) addresses.set(id, address);
    }
    const peers = new Map<NodeId, PeerAddress>();
    for (const [id, address] of addresses) peers.set(id, peerAddressOf(address));
    return peers;
  }

  /** The link to the leader, when this node does not lead and has one. */
  get #toLeader(): LeaderLink | undefined {
    const link = this.#o.link;
    return link !== undefined && !link.leads ? link : undefined;
  }

  /** Adds a node as a learner (it is promoted once caught up). Carried out by the leader. */
  async join(name: string, peerAddress: string): Promise<JoinAnswer> {
    this.#o.guard?.check(clusterAdminNeeds);
    if (!NAME.test(name))
      throw new CairnError("ERR_BAD_REQUEST", "name must be lowercase letters, digits and dashes (1-63)");
    if (!ADDRESS.test(peerAddress)) throw new CairnError("ERR_BAD_REQUEST", "peerAddress must be host:port");
    const toLeader = this.#toLeader;
    if (toLeader !== undefined) return toLeader.join(name, peerAddress);
    const status = this.#o.group.status();
    const inConf = new Set<number>([...status.conf.voters, ...status.conf.learners]);
    // A retried join finds its record; a removed member's name gets a new id (and needs a new
    // certificate), never its old one.
    const existing = listRegistry(this.#o.state).find((m) => m.name === name && !m.retired);
    let id: number;
    if (existing !== undefined) {
      if (existing.peerAddress !== peerAddress) {
        throw new CairnError(
          "ERR_CONFLICT",
          `member ${name} exists with peer address ${existing.peerAddress}`,
        );
      }
      id = existing.id; // A retried join: answer as the first time did.
    } else {
      id = nextMemberId(this.#o.state, inConf);
      await this.#propose({ type: "register", member: { id, name, peerAddress } });
    }
    if (!inConf.has(id)) await this.#confChange({ type: "add-learner", node: nodeId(id) });
    return {
      id,
      clusterId: this.#o.clusterId,
      initialVoters: this.#o.initialVoters,
      members: this.members(),
    };
  }

  /** Removes a member from the group, then from the registry. Carried out by the leader. */
  async remove(id: number): Promise<void> {
    this.#o.guard?.check(clusterAdminNeeds);
    const toLeader = this.#toLeader;
    if (toLeader !== undefined) return toLeader.remove(id);
    const status = this.#o.group.status();
    if (!status.conf.voters.includes(nodeId(id)) && !status.conf.learners.includes(nodeId(id))) {
      throw new CairnError("ERR_NOT_FOUND", `no member ${id}`);
    }
    if (status.conf.voters.length === 1 && status.conf.voters[0] === id) {
      throw new CairnError("ERR_BAD_REQUEST", "cannot remove the last voter");
    }
    // Retire the id first: once the removal commits, a leader removing itself steps down and could
    // not retire it any more, and an id left active could be joined under again. Until then the
    // member stays reachable (see reachableMembers).
    await this.#propose({ type: "unregister", id });
    await this.#confChange({ type: "remove", node: nodeId(id) });
  }

  /** Hands leadership to a voter. Carried out by the leader. */
  async transferLeader(to: number): Promise<void> {
    this.#o.guard?.check(clusterAdminNeeds);
    const toLeader = this.#toLeader;
    if (toLeader !== undefined) return toLeader.transfer(to);
    try {
      this.#o.group.transferLeadership(nodeId(to));
    } catch (error) {
      throw toCairnError(error);
    }
  }

  /**
   * Periodic upkeep: on every node, keep the transport's peers equal to the members; on the
   * leader, register bootstrap members missing from the registry and promote caught-up learners.
   */
  async maintain(): Promise<void> {
    const peers = this.#peerAddresses();
    const key = JSON.stringify([...peers]);
    if (key !== this.#lastPeers) {
      this.#lastPeers = key;
      this.#o.setPeers(peers);
      this.#o.host.setMembers(peers.keys());
    }
    if (this.#maintaining || this.#o.group.softState.role !== "leader") return;
    this.#maintaining = true;
    try {
      const status = this.#o.group.status();
      if (this.#o.bootstrapped) {
        const registered = new Set(listRegistry(this.#o.state).map((m) => m.id));
        const inConf = new Set<number>([...status.conf.voters, ...status.conf.learners]);
        for (const m of this.#o.knownMembers) {
          if (!registered.has(m.id) && inConf.has(m.id)) await this.#propose({ type: "register", member: m });
        }
      }
      for (const learner of status.conf.learners) {
        const progress = status.peers.find((p) => p.id === learner);
        if (
          progress?.recentActive &&
          progress.matchIndex + (this.#o.promoteLagMax ?? 64) >= status.lastIndex
        ) {
          await this.#confChange({ type: "promote", node: learner });
          break;
        }
      }
    } catch (error) {
      // Upkeep retries next period; leadership changes and pending changes are expected here.
      if (!(isCairnError(error) || error instanceof NodeError)) throw error;
    } finally {
      this.#maintaining = false;
    }
  }

  async #propose(command: MemberCommand): Promise<void> {
    const proposed = { service: "members", command } as const;
    let outcome: ApplyOutcome | undefined;
    try {
      // An entry of this one command: its outcomes hold one.
      [outcome] =
        (await this.#o.group.propose(encodeEnvelope({ tsMs: this.#o.nowMs(), command: proposed }))) ?? [];
    } catch (error) {
      throw toCairnError(error);
    }
    if (outcome === undefined || !outcome.ok)
      throw new CairnError("ERR_INTERNAL", "registry command had no outcome");
    // Invariant: the runtime resolves a proposal with the outcome of the entry that carried it.
    assert(isResultOf(proposed, outcome.result), `a registry command answered by ${outcome.result.kind}`);
    if (!outcome.result.ok) throw refusalError(outcome.result);
  }

  async #confChange(change: Parameters<RaftGroup<EntryOutcome>["proposeConfChange"]>[0]): Promise<void> {
    try {
      await this.#o.group.proposeConfChange(change);
    } catch (error) {
      throw toCairnError(error);
    }
  }
}
