// The two ends of "talk to any node": on a follower, a client's write (or a membership change) is
// handed to the leader over the peer link and its outcome awaited; on the leader, such calls are
// carried out as if a client had sent them there. No protocol adapter forwards anything itself.
import type { Env, NodeHost, RaftGroup } from "../node/index.js";
import { NodeError } from "../node/index.js";
import { nodeId } from "../raft/index.js";
import { DecodeError } from "../util/index.js";
import type { ApplyNotifier } from "./apply-notifier.js";
import { type AuthGuard, currentPrincipal, type Principal, runAs } from "./auth/index.js";
import type { JoinAnswer, Membership } from "./cluster/membership.js";
import {
  type ApplyOutcome,
  commandNeeds,
  decodeEnvelope,
  type EntryOutcome,
  restampEnvelope,
} from "./command.js";
import type { CommandBatcher } from "./command-batcher.js";
import { CairnError, type LeaderAddresses } from "./errors.js";
import { allVotersTimeoutMsDefault, proposeOnLeader, toCairnError } from "./group-replication.js";
import {
  answerError,
  decodeLeaderAnswer,
  decodeLeaderCall,
  encodeLeaderAnswer,
  encodeLeaderCall,
  errorAnswer,
  type LeaderAnswer,
  type LeaderCall,
  type LeaderOp,
  proposalOutcome,
} from "./leader-calls.js";
import type { WriteConcern } from "./replication.js";
import type { StateBackend } from "./state-machine.js";

/** Settings of a {@link LeaderLink}. */
export interface LeaderLinkOptions {
  readonly group: RaftGroup<EntryOutcome>;
  /** Gathers the writes followers hand over into entries, with this node's own. */
  readonly batcher: CommandBatcher;
  readonly host: NodeHost;
  readonly env: Env;
  /** The state the services read: its applied index is what a follower waits on. */
  readonly backend: Pick<StateBackend, "appliedIndex">;
  /** Wakes when entries are applied to `backend`: a follower waits to apply what the leader answered. */
  readonly applied: ApplyNotifier;
  /**
   * How long a follower waits for the leader's answer before reporting an unknown outcome. Longer
   * than the leader's own proposal timeout, so the leader's verdict usually arrives. Default 10,000.
   */
  readonly callTimeoutMs?: number;
  /**
   * Checks the principal a follower sends with each call against this node's auth state: a token
   * revoked here is refused even where the follower has not applied the revocation yet.
   */
  readonly guard?: AuthGuard;
  /** How long the leader waits for every voter on a write concern "all" call. Default 4,000. */
  readonly allVotersTimeoutMs?: number;
}

/** Hands this node's writes to the leader when it does not lead, and serves the calls of followers. */
export class LeaderLink {
  readonly #o: LeaderLinkOptions;
  #membership: Membership | undefined;

  /** Creates the link and starts answering calls from followers. */
  constructor(options: LeaderLinkOptions) {
    this.#o = options;
    options.host.onCall((_from, body) => this.#answer(body).then(encodeLeaderAnswer));
  }

  /** Lets followers' membership calls reach the membership service. */
  serveMembership(membership: Membership): void {
    this.#membership = membership;
  }

  /** Whether this node leads its group now (then writes are proposed here, not handed over). */
  get leads(): boolean {
    return this.#o.group.softState.role === "leader";
  }

  /**
   * Hands an encoded envelope to the leader; resolves with the outcome it applied, once durable as
   * `writeConcern` asks. `principal` travels with it.
   */
  async propose(
    envelope: Uint8Array,
    writeConcern: WriteConcern = "majority",
    principal: Principal = currentPrincipal(),
  ): Promise<ApplyOutcome> {
    return proposalOutcome(await this.#call({ op: "propose", envelope, writeConcern }, principal));
  }

  /** Asks the leader to add a node (see {@link Membership.join}). */
  async join(name: string, peerAddress: string): Promise<JoinAnswer> {
    // The leader's own Membership built the answer; both sides run the same code.
    return (await this.#call({ op: "join", name, peerAddress })) as JoinAnswer;
  }

  /** Asks the leader to remove a member. */
  async remove(id: number): Promise<void> {
    await this.#call({ op: "remove", id });
  }

  /** Asks the leader to hand leadership to `to`. */
  async transfer(to: number): Promise<void> {
    await this.#call({ op: "transfer", to });
  }

  /**
   * `error` with the leader's client addresses added when it is ERR_NOT_LEADER or ERR_UNAVAILABLE
   * and names a leader, so each protocol can point its client at the leader in its own terms.
   */
  withLeaderAddresses(error: CairnError): CairnError {
    if (error.is("ERR_NOT_LEADER"))
      return this.#notLeader(error.message, error.details.leaderId ?? null, { cause: error.cause });
    if (error.is("ERR_UNAVAILABLE") && error.details.leaderId !== undefined) {
      const { leaderId } = error.details;
      return new CairnError(
        "ERR_UNAVAILABLE",
        error.message,
        { leaderId, leader: this.addressesOf(leaderId) },
        { cause: error.cause },
      );
    }
    return error;
  }

  /** Where node `id` serves clients, from the peer info it announced (or this node's own). */
  addressesOf(id: number): LeaderAddresses {
    const { host } = this.#o;
    const info = id === host.self.id ? host.self : host.peers().get(nodeId(id));
    if (info === undefined) return {};
    return { http: info.httpUrl, ...info.endpoints };
  }

  #notLeader(message: string, leaderId: number | null, options?: ErrorOptions): CairnError<"ERR_NOT_LEADER"> {
    if (leaderId === null) return new CairnError("ERR_NOT_LEADER", message, {}, options);
    return new CairnError(
      "ERR_NOT_LEADER",
      message,
      { leaderId, leader: this.addressesOf(leaderId) },
      options,
    );
  }

  async #call(op: LeaderOp, principal: Principal = currentPrincipal()): Promise<unknown> {
    const call: LeaderCall = { ...op, principal };
    // No leader in reach (none known, silent for an election timeout, the link to it down): fail
    // now, naming the last one known, rather than send a call that waits out its timeout; or, on
    // the side of a partition that can elect one, after waiting (bounded) for the election.
    const unreachable = await this.#o.group.awaitLeader();
    if (unreachable !== undefined) throw this.withLeaderAddresses(toCairnError(unreachable));
    const leaderId = this.#o.group.softState.leaderId;
    if (leaderId === null || leaderId === this.#o.group.id) {
      throw new CairnError("ERR_UNAVAILABLE", "no leader is known right now; retry shortly");
    }
    let answer: LeaderAnswer;
    try {
      const reply = await this.#o.host.call(
        leaderId,
        encodeLeaderCall(call),
        this.#o.callTimeoutMs ?? 10_000,
      );
      answer = decodeLeaderAnswer(reply);
    } catch (error) {
      if (error instanceof DecodeError) {
        throw new CairnError(
          "ERR_TIMEOUT",
          `the leader's answer was unreadable (${error.message}); the outcome is unknown`,
        );
      }
      throw toCairnError(error);
    }
    if (!answer.ok) throw answerError(answer);
    await this.#applyAsFarAs(answer.appliedIndex);
    return answer.value;
  }

  /**
   * Waits (bounded) until this node has applied what the leader had when it answered, so a
   * client that wrote through this node reads its write here, and a consumer's fetch finds the
   * messages it was handed in local state. Gives up quietly at the deadline: the outcome stands.
   */
  async #applyAsFarAs(index: number): Promise<void> {
    const { backend, applied } = this.#o;
    const deadline = applied.monotonicMs() + (this.#o.callTimeoutMs ?? 10_000);
    // The notifier wakes after the backend's applied index moved (the runtime's own counter moves
    // later, once the batch's results are handed out): read the backend's.
    for (;;) {
      const version = applied.version;
      if (backend.appliedIndex() >= index) return;
      const remaining = deadline - applied.monotonicMs();
      if (remaining <= 0) return;
      try {
        await applied.wait(version, remaining);
      } catch {
        // ERR_BUSY: the node holds as many waiters as it allows. Retrying at once would spin until
        // the deadline; the outcome stands, so answer now.
        return;
      }
    }
  }

  async #answer(body: Uint8Array): Promise<LeaderAnswer> {
    let call: LeaderCall;
    try {
      call = decodeLeaderCall(body);
    } catch (error) {
      if (error instanceof DecodeError) return errorAnswer(new CairnError("ERR_BAD_REQUEST", error.message));
      throw error;
    }
    const { group, backend } = this.#o;
    if (!this.leads) {
      // One hop only: a stale view of the leader must not bounce a write between followers.
      return errorAnswer(
        this.#notLeader(
          "this node is not the leader (the request was already handed over once)",
          group.softState.leaderId,
        ),
      );
    }
    try {
      const value = await runAs(call.principal, () => this.#carryOut(call));
      return { ok: true, appliedIndex: backend.appliedIndex(), value };
    } catch (error) {
      if (error instanceof CairnError || error instanceof NodeError) return errorAnswer(toCairnError(error));
      throw error;
    }
  }

  async #carryOut(call: LeaderCall): Promise<unknown> {
    const { group, env } = this.#o;
    if (call.op === "propose") {
      this.#o.guard?.check(commandNeeds(decodeEnvelope(call.envelope).command), call.principal);
      // The leader's clock stamps every entry: TTLs and deadlines follow one clock.
      return proposeOnLeader(
        this.#o.batcher,
        group,
        restampEnvelope(call.envelope, env.nowMs()),
        call.writeConcern,
        this.#o.allVotersTimeoutMs ?? allVotersTimeoutMsDefault,
      );
    }
    const membership = this.#membership;
    if (membership === undefined)
      throw new CairnError("ERR_UNAVAILABLE", "this node does not manage membership");
    switch (call.op) {
      case "join":
        return membership.join(call.name, call.peerAddress);
      case "remove":
        await membership.remove(call.id);
        return null;
      case "transfer":
        await membership.transferLeader(call.to);
        return null;
    }
  }
}
