// One fault proxy per ordered pair of nodes (the one for i -> j carries the connections node i dials
// to node j), and the cuts the nemesis makes with them: shared by the Cairn and etcd clusters, which
// differ in how their nodes are pointed at the proxies and in which connections carry a message.
import { FaultProxy, type PeerAddress } from "../../src/transport/index.js";
import type { Link } from "./schedule.js";

/**
 * Which connections carry node A's messages to node B. `dialed`: only those A dials to B (Cairn:
 * each node sends only on its own dials). `both-ways`: A's requests on its dials to B and A's
 * answers on B's dials to A (etcd: a member reads its peer's messages from streams it opened).
 */
export type MessageFlow = "dialed" | "both-ways";

/** The proxies of a cluster of `size` nodes; the one for node i's dials to node j sits at `i * size + j`. */
export class ProxyMesh {
  readonly #size: number;
  readonly #proxies: (FaultProxy | undefined)[];
  readonly #flow: MessageFlow;

  private constructor(size: number, proxies: (FaultProxy | undefined)[], flow: MessageFlow) {
    this.#size = size;
    this.#proxies = proxies;
    this.#flow = flow;
  }

  /** Starts a proxy for every ordered pair: `route(from, to)` says where it listens and whom it relays to. */
  static async start(
    size: number,
    flow: MessageFlow,
    route: (from: number, to: number) => { readonly listen: PeerAddress; readonly target: PeerAddress },
  ): Promise<ProxyMesh> {
    const proxies: (FaultProxy | undefined)[] = [];
    for (let from = 0; from < size; from++) {
      for (let to = 0; to < size; to++) {
        if (from === to) {
          proxies.push(undefined);
          continue;
        }
        const proxy = new FaultProxy(route(from, to));
        await proxy.start();
        proxies.push(proxy);
      }
    }
    return new ProxyMesh(size, proxies, flow);
  }

  /** Where the proxy for messages from `from` to `to` listens. */
  address(from: number, to: number): PeerAddress | undefined {
    return this.#proxy(from, to)?.address;
  }

  /**
   * Cuts the links (messages from `from` to `to` stop): refused and severed, or (`blackhole`)
   * swallowed on open connections. With `both-ways` flow a link cut one way only cannot refuse
   * connections (they carry the other way too), so its bytes are swallowed in that direction.
   */
  cut(links: readonly Link[], blackhole: boolean): void {
    const cut = new Set(links.map((l) => `${l.from}->${l.to}`));
    for (const { from, to } of links) {
      const dialed = this.#proxy(from, to);
      if (this.#flow === "dialed") {
        if (blackhole) dialed?.blackhole("both");
        else dialed?.drop();
        continue;
      }
      const answering = this.#proxy(to, from);
      if (cut.has(`${to}->${from}`)) {
        // Both ways: nothing may pass between the two.
        for (const proxy of [dialed, answering]) {
          if (blackhole) proxy?.blackhole("both");
          else proxy?.drop();
        }
        continue;
      }
      dialed?.blackhole("forward");
      answering?.blackhole("backward");
    }
  }

  #proxy(from: number, to: number): FaultProxy | undefined {
    return this.#proxies[from * this.#size + to];
  }

  /** Restores every link. */
  heal(): void {
    for (const proxy of this.#proxies) proxy?.heal();
  }

  /** Stops every proxy. */
  async close(): Promise<void> {
    for (const proxy of this.#proxies) await proxy?.close();
  }
}

/** The node that claims to lead with the highest term, if any claims it. */
export function highestClaim(
  claims: readonly ({ readonly index: number; readonly term: number } | undefined)[],
): number | undefined {
  let best: { readonly index: number; readonly term: number } | undefined;
  for (const claim of claims)
    if (claim !== undefined && (best === undefined || claim.term > best.term)) best = claim;
  return best?.index;
}
